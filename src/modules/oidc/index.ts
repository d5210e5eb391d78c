import type { Pending } from "../../lib/pending";
import { Elysia, t } from "elysia";
import { OAuthError } from "../../errors";
import type { RequesterPlugin } from "../../http/client-ip";
import type { KeyRing } from "../../tokens/keys";
import type { JwtAlg } from "../../tokens/verifier";
import type { AuditLog } from "../audit/service";
import type { authGuard } from "../auth/guard";
import { CONTROL_CHARACTER, SESSION_SECURITY } from "../../http/schema";
import { BODY_ERRORS, CSRF_CHECK, errorResponses, SESSION_GUARD } from "../../http/error-catalogue";
import type { UserIdentity } from "../users/service";
import type { OidcClient, OidcClients } from "./clients";
import { authorizeRoutes } from "./authorize";
import type { LogoutNotices } from "./backchannel";
import { discoveryRoutes } from "./discovery";
import { logoutRoutes } from "./logout";
import { OIDC_PREFIX, pageMac } from "./params";
import { profileClaims, type OidcService } from "./service";
import { noStore } from "../../http/cache";

/**
 * The browser-facing endpoints answer with pages and redirects, not JSON: they are left out of /docs/json (the
 * discovery document and the README describe them).
 */
export const OIDC_PAGE_PATHS: ReadonlySet<string> = new Set(["/oidc/authorize", "/oidc/authorize/consent", "/oidc/logout"]);
/** Routes that take HTML forms (RFC 6749 §4.1.3, OpenID Connect Core §3.1.2.1 POST, RP-initiated logout). */
export const OIDC_FORM_PATHS: ReadonlySet<string> = new Set(["/oidc/token", "/oidc/authorize", "/oidc/authorize/consent", "/oidc/userinfo", "/oidc/logout"]);

/** Who the browser of a request is: the sign-in pages' session cookie (issue 12), or null. */
export interface BrowserUser extends UserIdentity {
  sessionId: string;
}

export interface BrowserSessionPort {
  current(request: Request): Pending<BrowserUser | null>;
  /**
   * Signs the browser out (ends its session and clears the cookie): prompt=login, max_age, RP-initiated logout.
   * The clients it signed in to are not told here: a sign-in asked for again keeps them, and RP-initiated
   * logout tells them itself.
   */
  signOut(request: Request, headers: Record<string, unknown>): Pending<void>;
}

/** What the provider's browser-facing routes (authorize.ts, logout.ts) are built from. */
export interface ProviderPageDeps {
  issuer: string;
  /** APP_NAME, in the pages' titles. */
  appName: string;
  clients: OidcClients;
  oidc: OidcService;
  keyRing: KeyRing;
  browser: BrowserSessionPort;
  /** The pages' MAC (CSRF tokens, re-authentication stamps). */
  mac: (purpose: string, value: string) => string;
  /** The sign-in origins: the consent and sign-out confirmation forms must be posted from one (sameOriginPost). */
  origins: ReadonlySet<string>;
  audit: AuditLog;
  withRequester: RequesterPlugin;
}

type Params = Record<string, string | undefined>;

/**
 * Only string values of a form (a repeated parameter, which the form parser keeps as a list, is an error: OAuth 2.0
 * §3.1), without control characters (PostgreSQL refuses NUL in text: issue 22).
 */
function paramsOf(...sources: unknown[]): Params | undefined {
  const params: Params = {};
  for (const source of sources) {
    if (!source || typeof source !== "object") continue;
    for (const [name, value] of Object.entries(source)) {
      if (typeof value !== "string" || CONTROL_CHARACTER.test(value)) return undefined;
      params[name] = value;
    }
  }
  return params;
}

export function oidcRoutes(deps: {
  issuer: string;
  /** APP_NAME, in the pages' titles. */
  appName: string;
  idTokenAlg: JwtAlg;
  clients: OidcClients;
  oidc: OidcService;
  keyRing: KeyRing;
  browser: BrowserSessionPort;
  /** Signs the pages' CSRF tokens and re-authentication stamps. */
  pageKey: Uint8Array;
  origins: ReadonlySet<string>;
  /** Back-channel logout: the clients a sign-out ends are told. */
  notices: LogoutNotices;
  guard: ReturnType<typeof authGuard>;
  audit: AuditLog;
  withRequester: RequesterPlugin;
}) {
  const { clients, oidc, guard } = deps;
  const mac = pageMac(deps.pageKey);
  /** Client authentication at the token endpoint (RFC 6749 §2.3.1): Basic, or client_id/client_secret in the body, or none for a public client. */
  async function authenticateClient(request: Request, body: Params): Promise<OidcClient> {
    const header = request.headers.get("authorization");
    let clientId = body.client_id;
    let secret = body.client_secret;
    const basic = header ? /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header.trim()) : null;
    const invalidClient = (message: string) =>
      new OAuthError("invalid_client", message, 401, basic ? { "WWW-Authenticate": 'Basic realm="latchkey"' } : undefined);
    if (basic) {
      if (secret !== undefined) throw new OAuthError("invalid_request", "Use one client authentication method, not two.");
      const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon === -1) throw invalidClient("Malformed Basic credentials.");
      try {
        const fromHeader = decodeURIComponent(decoded.slice(0, colon).replaceAll("+", " "));
        if (clientId !== undefined && clientId !== fromHeader) throw new OAuthError("invalid_request", "client_id differs from the Basic credentials.");
        clientId = fromHeader;
        secret = decodeURIComponent(decoded.slice(colon + 1).replaceAll("+", " "));
      } catch (error) {
        if (error instanceof OAuthError) throw error;
        throw invalidClient("Malformed Basic credentials.");
      }
    }
    const client = clientId ? await clients.find(clientId) : undefined;
    if (!client) throw invalidClient("Unknown client or wrong client secret.");
    if (client.public) {
      if (secret) throw invalidClient("A public client has no secret.");
      return client;
    }
    if (!secret || !clients.secretMatches(client, secret)) throw invalidClient("Unknown client or wrong client secret.");
    return client;
  }

  const userinfo = ({ principal }: { principal: UserIdentity }) => ({ sub: principal.userId, ...profileClaims(principal) });
  const UserInfo = t.Object(
    {
      sub: t.String(),
      preferred_username: t.String(),
      name: t.String(),
      email: t.Optional(t.String()),
      email_verified: t.Optional(t.Boolean()),
      groups: t.Array(t.String(), { description: "The user's roles" }),
    },
    { description: "The same profile claims as the ID token" },
  );
  const TokenBody = t.Object(
    {
      access_token: t.String(),
      token_type: t.Literal("Bearer"),
      expires_in: t.Number(),
      refresh_token: t.String(),
      id_token: t.String(),
      scope: t.String(),
    },
    { description: "RFC 6749 §5.1 + OpenID Connect Core §3.1.3.3" },
  );
  const oauthError = (lines: string) => t.Object({ error: t.String(), error_description: t.String(), message: t.String() }, { description: lines });
  const TokenErrors = {
    400: oauthError(
      "- `invalid_request`: a parameter is missing, repeated or malformed\n" +
        "- `invalid_grant`: the code is unknown, expired, used (which revokes what it issued), another client's, for another redirect_uri or PKCE verifier; or the refresh token is unknown, expired, revoked, reused or another client's\n" +
        "- `unsupported_grant_type`: grant_type is neither authorization_code nor refresh_token\n" +
        "- `payload_too_large`: the body is over 64 KiB",
    ),
    401: oauthError("- `invalid_client`: unknown client, missing or wrong secret, or a secret sent by a public client"),
    415: oauthError("- `unsupported_media_type`: the body is neither a form nor JSON"),
  };

  return new Elysia({ tags: ["openid connect"] })
    .use(deps.withRequester)
    .use(discoveryRoutes(deps))
    .use(authorizeRoutes({ ...deps, mac }))
    .use(logoutRoutes({ ...deps, mac }))
    .group(OIDC_PREFIX, (app) =>
      app
        .use(guard)
        .post(
          "/token",
          async ({ request, set, body, requester }) => {
            noStore(set.headers);
            set.headers.pragma = "no-cache";
            const params = paramsOf(body);
            if (!params) throw new OAuthError("invalid_request", "Every parameter must be given once, as text without control characters.");
            const client = await authenticateClient(request, params);
            if (params.grant_type === "authorization_code") {
              if (!params.code) throw new OAuthError("invalid_request", "code is required.");
              return oidc.exchangeCode(client, { code: params.code, redirectUri: params.redirect_uri, codeVerifier: params.code_verifier }, requester);
            }
            if (params.grant_type === "refresh_token") {
              if (!params.refresh_token) throw new OAuthError("invalid_request", "refresh_token is required.");
              return oidc.refresh(client, params.refresh_token, requester);
            }
            throw new OAuthError("unsupported_grant_type", "grant_type must be authorization_code or refresh_token.");
          },
          {
            parse: ["urlencoded", "json"],
            response: { 200: TokenBody, ...TokenErrors },
            detail: {
              summary: "OpenID Connect token endpoint: authorization_code (with PKCE) and refresh_token",
              description: "Client authentication: client_secret_basic, client_secret_post, or none for a public client. Errors are RFC 6749 §5.2: invalid_request, invalid_client (401), invalid_grant, unsupported_grant_type.",
            },
          },
        )
        .get("/userinfo", userinfo, { auth: true, response: { 200: UserInfo, ...errorResponses(SESSION_GUARD) }, detail: { summary: "OpenID Connect UserInfo (Bearer access token)", security: SESSION_SECURITY } })
        .post("/userinfo", userinfo, {
          auth: true,
          response: { 200: UserInfo, ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS) },
          detail: { summary: "OpenID Connect UserInfo (Bearer access token), by POST", security: SESSION_SECURITY },
        })

    );
}
