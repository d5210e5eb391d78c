import { ApiError } from "../../errors";
import { whenReady, type Pending } from "../../lib/pending";
import type { AccessTokens } from "../../tokens/access";
import { API_KEY_PREFIX, isWellFormedApiKey } from "../keys/format";
import type { ApiKeyService } from "../keys/service";
import type { BrowserSessions } from "../pages/session";
import type { SessionService } from "../sessions/service";
import type { UserIdentity } from "../users/service";

export interface IdentifyDeps {
  browser: BrowserSessions;
  accessTokens: AccessTokens;
  sessions: SessionService;
  apiKeys: ApiKeyService;
}

/**
 * Who a forward-auth request is, or undefined: `Authorization: Bearer` (access token or API key), `Basic` whose
 * password is an API key, `X-API-Key`, else the domain-wide browser session cookie. A credential presented but
 * wrong counts as none (401), never as an error. At most one SHA-256 and one cached lookup: no promise on a cache
 * hit (bench/README.md).
 */
export function forwardIdentity({ browser, accessTokens, sessions, apiKeys }: IdentifyDeps) {
  function apiKey(key: string): Pending<UserIdentity | undefined> {
    const refused = (error: unknown) => {
      if (error instanceof ApiError && error.status === 401) return undefined;
      throw error;
    };
    try {
      const found = apiKeys.authenticate(key);
      return found instanceof Promise ? found.catch(refused) : found;
    } catch (error) {
      return refused(error);
    }
  }

  return function identify(headers: Headers): Pending<UserIdentity | undefined> {
    const presented = presentedCredential(headers);
    if (presented === undefined) {
      const token = browser.token({ headers } as Request);
      return token ? sessions.browserPrincipal(token) : undefined;
    }
    if (presented.kind === "none") return undefined;
    if (presented.kind === "api_key") return apiKey(presented.value);
    const claims = accessTokens.verify(presented.value);
    if (!claims) return undefined;
    // An OpenID Connect client's grant is a session too: its tokens open no door of Latchkey's own (RFC 9068).
    return whenReady(sessions.principal(claims.sid), (principal) =>
      principal && principal.userId === claims.sub && principal.clientId === null ? principal : undefined,
    );
  };
}

/** A credential other than the browser cookie: an access token, or an API key; `none` for one that is neither. */
export type PresentedCredential = { kind: "token" | "api_key"; value: string } | { kind: "none" };
const NONE: PresentedCredential = { kind: "none" };

/**
 * What a forward-auth request presents besides the cookie: `Authorization: Bearer` (an access token or API key),
 * `Basic` whose password is an API key, `X-API-Key`; undefined when it presents none of these (the cookie is read
 * then). An `Authorization` header of another scheme, or Basic without a key, counts as a credential that is
 * none (never a fall back to the cookie: the header was meant for the app).
 */
export function presentedCredential(headers: Headers): PresentedCredential | undefined {
  const authorization = headers.get("authorization");
  if (authorization) {
    const space = authorization.indexOf(" ");
    const scheme = authorization.slice(0, space).toLowerCase();
    const value = authorization.slice(space + 1).trim();
    if (scheme === "bearer") return { kind: value.startsWith(API_KEY_PREFIX) ? "api_key" : "token", value };
    if (scheme === "basic") {
      // Only an API key as the password: an argon2id hash per proxied request would be a denial-of-service lever.
      let decoded: string;
      try {
        decoded = atob(value);
      } catch {
        return NONE;
      }
      const key = decoded.slice(decoded.indexOf(":") + 1);
      return isWellFormedApiKey(key) ? { kind: "api_key", value: key } : NONE;
    }
    return NONE;
  }
  const header = headers.get("x-api-key");
  return header ? { kind: "api_key", value: header.trim() } : undefined;
}
