import type { Pending } from "../../lib/pending";
import { Elysia } from "elysia";
import type { RequesterPlugin } from "../../http/client-ip";
import type { KeyRing } from "../../tokens/keys";
import type { JwtAlg } from "../../lib/jwt-algs";
import type { AuditLog } from "../audit/service";
import type { UserIdentity } from "../users/service";
import type { OidcClients } from "./clients";
import { authorizeRoutes } from "./authorize";
import type { LogoutNotices } from "./backchannel";
import { clientAuthentication } from "./client-auth";
import { discoveryRoutes } from "./discovery";
import type { OidcGrants } from "./grants";
import { logoutRoutes } from "./logout";
import { OIDC_PREFIX, pageMac } from "./params";
import { revocationRoutes } from "./revocation";
import type { OidcService } from "./service";
import { tokenRoutes } from "./token";
import { userinfoRoutes } from "./userinfo";

/**
 * The browser-facing endpoints answer with pages and redirects, not JSON: they are left out of /docs/json (the
 * discovery document and the README describe them).
 */
export const OIDC_PAGE_PATHS: ReadonlySet<string> = new Set(["/oidc/authorize", "/oidc/authorize/consent", "/oidc/logout"]);
/** Routes that take HTML forms (RFC 6749 §4.1.3, OpenID Connect Core §3.1.2.1 POST, RP-initiated logout, RFC 7009, RFC 7662). */
export const OIDC_FORM_PATHS: ReadonlySet<string> = new Set(["/oidc/token", "/oidc/authorize", "/oidc/authorize/consent", "/oidc/userinfo", "/oidc/logout", "/oidc/revoke", "/oidc/introspect"]);

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

export function oidcRoutes(deps: {
  issuer: string;
  /** APP_NAME, in the pages' titles. */
  appName: string;
  idTokenAlg: JwtAlg;
  clients: OidcClients;
  oidc: OidcService;
  /** What grants issue (the token endpoint, userinfo, revocation and introspection). */
  grants: OidcGrants;
  keyRing: KeyRing;
  browser: BrowserSessionPort;
  /** Signs the pages' CSRF tokens and re-authentication stamps. */
  pageKey: Uint8Array;
  origins: ReadonlySet<string>;
  /** Back-channel logout: the clients a sign-out ends are told. */
  notices: LogoutNotices;
  audit: AuditLog;
  withRequester: RequesterPlugin;
}) {
  const { issuer, grants, withRequester } = deps;
  const mac = pageMac(deps.pageKey);
  const authenticateClient = clientAuthentication(deps.clients);

  return new Elysia({ tags: ["openid connect"] })
    .use(withRequester)
    .use(discoveryRoutes(deps))
    .use(authorizeRoutes({ ...deps, mac }))
    .use(logoutRoutes({ ...deps, mac }))
    .use(tokenRoutes({ prefix: OIDC_PREFIX, grants, authenticateClient, withRequester }))
    .use(userinfoRoutes({ prefix: OIDC_PREFIX, grants }))
    .use(revocationRoutes({ prefix: OIDC_PREFIX, issuer, grants, authenticateClient, withRequester }));
}
