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
    const authorization = headers.get("authorization");
    if (authorization) {
      const space = authorization.indexOf(" ");
      const scheme = authorization.slice(0, space).toLowerCase();
      const value = authorization.slice(space + 1).trim();
      if (scheme === "bearer") {
        if (value.startsWith(API_KEY_PREFIX)) return apiKey(value);
        const claims = accessTokens.verify(value);
        if (!claims) return undefined;
        return whenReady(sessions.principal(claims.sid), (principal) => (principal && principal.userId === claims.sub ? principal : undefined));
      }
      if (scheme === "basic") {
        // Only an API key as the password: an argon2id hash per proxied request would be a denial-of-service lever.
        let decoded: string;
        try {
          decoded = atob(value);
        } catch {
          return undefined;
        }
        const key = decoded.slice(decoded.indexOf(":") + 1);
        return isWellFormedApiKey(key) ? apiKey(key) : undefined;
      }
      return undefined;
    }
    const header = headers.get("x-api-key");
    if (header) return apiKey(header.trim());
    const token = browser.token({ headers } as Request);
    return token ? sessions.browserPrincipal(token) : undefined;
  };
}
