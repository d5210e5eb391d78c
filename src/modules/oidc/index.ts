import type { Pending } from "../../lib/pending";
import { Elysia, t } from "elysia";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import { hmacBase64url, safeEqual } from "../../lib/crypto";
import type { KeyRing } from "../../tokens/keys";
import { ASYMMETRIC_ALGS, type JwtAlg } from "../../tokens/verifier";
import type { AuditLog } from "../audit/service";
import type { UserIdentity } from "../users/service";
import { userMayUse, type OidcClient, type OidcClients } from "./clients";
import { htmlPage, seeOther, type PageSet } from "../pages/respond";
import { consentPage, logoutConfirmPage, messagePage } from "./pages";
import type { OidcService } from "./service";
import type { OidcGrants } from "./grants";
import { consentItems, SCOPES } from "./claims";
import { clientAuthentication } from "./client-auth";
import { paramsOf, type Params } from "./params";
import { revocationRoutes } from "./revocation";
import { tokenRoutes } from "./token";
import { userinfoRoutes } from "./userinfo";

export const OIDC_PREFIX = "/oidc";
export const DISCOVERY_PATH = "/.well-known/openid-configuration";
/**
 * The browser-facing endpoints answer with pages and redirects, not JSON: they are left out of /docs/json (the
 * discovery document and the README describe them).
 */
export const OIDC_PAGE_PATHS: ReadonlySet<string> = new Set(["/oidc/authorize", "/oidc/authorize/consent", "/oidc/logout"]);
const PAGE_DETAIL = { hide: true };
/** Routes that take HTML forms (RFC 6749 §4.1.3, OpenID Connect Core §3.1.2.1 POST, RP-initiated logout). */
export const OIDC_FORM_PATHS: ReadonlySet<string> = new Set(["/oidc/token", "/oidc/authorize", "/oidc/authorize/consent", "/oidc/userinfo", "/oidc/logout", "/oidc/revoke", "/oidc/introspect"]);

const PROMPTS = new Set(["none", "login", "consent"]);
/** Parameters too long for any honest request are refused rather than stored (state and nonce are echoed). */
const MAX_PARAM = 2048;

/** Who the browser of a request is: the sign-in pages' session cookie (issue 12), or null. */
export interface BrowserUser extends UserIdentity {
  sessionId: string;
}

export interface BrowserSessionPort {
  current(request: Request): Pending<BrowserUser | null>;
  /** Signs the browser out (ends its session and clears the cookie): prompt=login, max_age, RP-initiated logout. */
  signOut(request: Request, headers: Record<string, unknown>): Pending<void>;
}

interface AuthorizationRequest {
  client: OidcClient;
  redirectUri: string;
  scope: string;
  state: string | undefined;
  nonce: string | null;
  codeChallenge: string | null;
  prompt: Set<string>;
  maxAge: number | undefined;
}

type Parsed =
  | { kind: "page"; status: number; title: string; message: string }
  | { kind: "redirect"; location: string }
  | { kind: "ok"; request: AuthorizationRequest };

/** `uri` with `params` added to its query (kept as registered otherwise: custom schemes included). */
function withParams(uri: string, params: Record<string, string | undefined>): string {
  const url = new URL(uri);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
  return url.href;
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
  audit: AuditLog;
  withRequester: RequesterPlugin;
}) {
  const { issuer, appName, clients, oidc, grants, keyRing, browser, pageKey, audit, withRequester } = deps;
  const authenticateClient = clientAuthentication(clients);
  const endpoint = (path: string) => `${issuer}${OIDC_PREFIX}${path}`;
  const mac = (purpose: string, value: string) => hmacBase64url(pageKey, `${purpose}|${value}`);

  /** 302 by default: a redirect in answer to a GET (the authorization request) or to the sign-in page. */
  const redirect = (set: PageSet, location: string, status = 302) => seeOther(set, location, status);

  /**
   * Checks an authorization request (OpenID Connect Core §3.1.2.1). Until client_id and redirect_uri are known
   * good, errors are a page and never a redirect (RFC 6749 §4.1.2.1: no open redirector); after, they go back
   * to the client with `state`.
   */
  async function parseAuthorization(params: Params | undefined): Promise<Parsed> {
    if (!params) return { kind: "page", status: 400, title: "Invalid request", message: "A parameter was given twice or is not text." };
    const client = params.client_id ? await clients.find(params.client_id) : undefined;
    if (!client) return { kind: "page", status: 400, title: "Unknown application", message: "This application (client_id) is not registered with Latchkey." };
    const redirectUri = params.redirect_uri;
    if (!redirectUri || !client.redirectUris.includes(redirectUri))
      return { kind: "page", status: 400, title: "Invalid redirect URI", message: "The redirect_uri is not one registered for this application, so Latchkey will not send you there." };
    const state = params.state;
    const fail = (error: string, description: string): Parsed => ({
      kind: "redirect",
      location: withParams(redirectUri, { error, error_description: description, state, iss: issuer }),
    });
    for (const [name, value] of Object.entries(params))
      if (value !== undefined && value.length > MAX_PARAM) return fail("invalid_request", `${name} is too long.`);
    if (params.request || params.request_uri) return fail(params.request ? "request_not_supported" : "request_uri_not_supported", "Request objects are not supported.");
    if (params.response_type !== "code") return fail("unsupported_response_type", "Only response_type=code is supported.");
    if (params.response_mode && params.response_mode !== "query") return fail("invalid_request", "Only response_mode=query is supported.");
    const requested = (params.scope ?? "").split(" ").filter(Boolean);
    if (!requested.includes("openid")) return fail("invalid_scope", "The scope must include openid.");
    const scope = SCOPES.filter((item) => requested.includes(item)).join(" ");
    const method = params.code_challenge_method;
    const codeChallenge = params.code_challenge ?? null;
    if (codeChallenge !== null) {
      if (method !== "S256") return fail("invalid_request", "code_challenge_method must be S256 (plain is refused).");
      if (!/^[A-Za-z0-9_-]{43}$/.test(codeChallenge)) return fail("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters).");
    } else if (method) return fail("invalid_request", "code_challenge_method without code_challenge.");
    else if (client.public) return fail("invalid_request", "PKCE (code_challenge with S256) is required for this client.");
    const prompt = new Set((params.prompt ?? "").split(" ").filter(Boolean));
    if ([...prompt].some((value) => !PROMPTS.has(value)) || (prompt.has("none") && prompt.size > 1))
      return fail("invalid_request", "prompt must be none, or any of login and consent.");
    let maxAge: number | undefined;
    if (params.max_age !== undefined) {
      if (!/^\d{1,9}$/.test(params.max_age)) return fail("invalid_request", "max_age must be a number of seconds.");
      maxAge = Number(params.max_age);
    }
    return { kind: "ok", request: { client, redirectUri, scope, state, nonce: params.nonce ?? null, codeChallenge, prompt, maxAge } };
  }

  /** A stamp `time.mac` saying "sign-in was asked for at `time`", carried through the sign-in page's rd. */
  const reauthStamp = (now: number) => `${now}.${mac("reauth", String(now))}`;
  function reauthAfter(stamp: string | undefined): number | undefined {
    const match = stamp ? /^(\d{13})\.([\w-]+)$/.exec(stamp) : null;
    return match && safeEqual(match[2]!, mac("reauth", match[1]!)) ? Number(match[1]) : undefined;
  }

  /** The authorization endpoint's answer once the request is valid; shared by GET/POST and the consent form. */
  async function authorize(request: Request, set: PageSet, params: Params, parsed: AuthorizationRequest, from: ClientInfo, consented: boolean) {
    const { client, redirectUri, state } = parsed;
    const back = (query: Record<string, string | undefined>) => redirect(set, withParams(redirectUri, { ...query, state, iss: issuer }));
    const user = await browser.current(request);
    const now = Date.now();
    const authentication = user ? await oidc.authenticationOf(user.sessionId) : undefined;
    const authTime = authentication?.authTime;
    const freshSince = reauthAfter(params.lk_reauth);
    const fresh = authTime !== undefined && freshSince !== undefined && authTime >= freshSince;
    const tooOld = parsed.maxAge !== undefined && authTime !== undefined && now - authTime > parsed.maxAge * 1000;
    if (!user || authTime === undefined || ((parsed.prompt.has("login") || tooOld) && !fresh)) {
      if (parsed.prompt.has("none")) return back({ error: "login_required", error_description: "The user is not signed in." });
      // prompt=login or an older sign-in than max_age: the browser signs in again (the sign-in page would
      // otherwise send a signed-in browser straight back).
      if (user) await browser.signOut(request, set.headers);
      const { lk_reauth: _stamp, ...rest } = params;
      const again = `${OIDC_PREFIX}/authorize?${new URLSearchParams({ ...(rest as Record<string, string>), lk_reauth: reauthStamp(now) })}`;
      return redirect(set, `/login?rd=${encodeURIComponent(again)}`);
    }
    if (!userMayUse(client, user)) {
      await audit.record({ event: "oidc_access_denied", userId: user.userId, ...from, detail: { client_id: client.clientId } });
      return htmlPage(set, 403, messagePage(appName, "Access denied", `Your account is not allowed to use ${client.clientId}. Ask your administrator for access.`));
    }
    if (!consented && (!client.trusted || parsed.prompt.has("consent")) && (parsed.prompt.has("consent") || !(await oidc.hasConsent(user.userId, client.clientId, parsed.scope)))) {
      if (parsed.prompt.has("none")) return back({ error: "consent_required", error_description: "The user has not consented to this application." });
      const serialized = new URLSearchParams(params as Record<string, string>).toString();
      return htmlPage(set, 200, consentPage({ appName, clientId: client.clientId, items: consentItems(user, parsed.scope), username: user.username, request: serialized, csrf: mac("consent", `${user.sessionId}|${serialized}`) }));
    }
    const code = await oidc.issueCode({
      client,
      userId: user.userId,
      redirectUri,
      codeChallenge: parsed.codeChallenge,
      nonce: parsed.nonce,
      scope: parsed.scope,
      authTime,
      amr: authentication!.amr,
    });
    return back({ code });
  }

  /** The ID token a logout request names, if Latchkey signed it (expired ones too: OpenID RP-Initiated Logout §2). */
  function idTokenHint(token: string): { sub: string; aud: string; sid?: string } | undefined {
    const [header, payload, signature] = token.split(".");
    if (!header || !payload || signature === undefined) return undefined;
    try {
      const { alg, kid } = JSON.parse(Buffer.from(header, "base64url").toString()) as { alg?: string; kid?: string };
      const key = typeof kid === "string" ? keyRing.verificationKey(kid) : undefined;
      if (!key || key.alg === "HS256" || key.alg !== alg || !key.verify(`${header}.${payload}`, Buffer.from(signature, "base64url"))) return undefined;
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
      if (claims.iss !== issuer || typeof claims.sub !== "string" || typeof claims.aud !== "string") return undefined;
      return { sub: claims.sub, aud: claims.aud, sid: typeof claims.sid === "string" ? claims.sid : undefined };
    } catch {
      return undefined;
    }
  }

  const discovery = {
    issuer,
    authorization_endpoint: endpoint("/authorize"),
    token_endpoint: endpoint("/token"),
    userinfo_endpoint: endpoint("/userinfo"),
    revocation_endpoint: endpoint("/revoke"),
    introspection_endpoint: endpoint("/introspect"),
    end_session_endpoint: endpoint("/logout"),
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    scopes_supported: SCOPES,
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: ["authorization_code", "refresh_token", "client_credentials"],
    subject_types_supported: ["public"],
    // The instance's default first; a client may be registered with another (--id-token-alg).
    id_token_signing_alg_values_supported: [deps.idTokenAlg, ...ASYMMETRIC_ALGS.filter((alg) => alg !== deps.idTokenAlg)],
    token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
    revocation_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
    introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
    code_challenge_methods_supported: ["S256"],
    prompt_values_supported: ["none", "login", "consent"],
    claims_supported: ["sub", "iss", "aud", "exp", "iat", "auth_time", "amr", "nonce", "sid", "preferred_username", "name", "email", "email_verified", "groups"],
    authorization_response_iss_parameter_supported: true,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    claims_parameter_supported: false,
  };

  type Context = { request: Request; set: PageSet; query: unknown; body: unknown; requester: ClientInfo };

  async function authorizeEndpoint({ request, set, query, body, requester }: Context) {
    const params = paramsOf(query, request.method === "POST" ? body : undefined);
    const parsed = await parseAuthorization(params);
    if (parsed.kind === "page") return htmlPage(set, parsed.status, messagePage(appName, parsed.title, parsed.message));
    if (parsed.kind === "redirect") return redirect(set, parsed.location);
    return authorize(request, set, params!, parsed.request, requester, false);
  }

  async function logoutEndpoint({ request, set, query, body, requester }: Context) {
    const params = paramsOf(query, request.method === "POST" ? body : undefined);
    if (!params) return htmlPage(set, 400, messagePage(appName, "Invalid request", "A parameter was given twice or is not text."));
    const hint = params.id_token_hint ? idTokenHint(params.id_token_hint) : undefined;
    if (params.id_token_hint && !hint) return htmlPage(set, 400, messagePage(appName, "Invalid request", "The id_token_hint was not issued by this server."));
    const clientId = hint?.aud ?? params.client_id;
    const client = clientId ? await clients.find(clientId) : undefined;
    const target = params.post_logout_redirect_uri;
    if (target && !client?.postLogoutRedirectUris.includes(target))
      return htmlPage(set, 400, messagePage(appName, "Invalid request", "The post_logout_redirect_uri is not registered for this application, so Latchkey will not send you there."));
    const user = await browser.current(request);
    // Without an ID token naming the user, a third-party page could sign the browser out: ask first.
    const confirmed = request.method === "POST" && params.confirm === "yes" && user !== null && params.csrf !== undefined && safeEqual(params.csrf, mac("logout", user.sessionId));
    if (user && !confirmed && (!hint || hint.sub !== user.userId)) {
      const { csrf: _csrf, confirm: _confirm, ...fields } = params;
      return htmlPage(set, 200, logoutConfirmPage({ appName, fields: fields as Record<string, string>, csrf: mac("logout", user.sessionId), username: user.username }));
    }
    const userId = hint?.sub ?? user?.userId;
    const ended = userId && client ? await oidc.endGrants(userId, client.clientId, hint?.sid) : 0;
    if (user) await browser.signOut(request, set.headers);
    if (userId) await audit.record({ event: "oidc_logout", userId, ...requester, detail: { client_id: client?.clientId ?? null, grants_ended: ended, browser_signed_out: user !== null } });
    if (target) return redirect(set, withParams(target, { state: params.state }), 303);
    return htmlPage(set, 200, messagePage(appName, "Signed out", "You are signed out of Latchkey."));
  }


  return new Elysia({ tags: ["openid connect"] })
    .use(withRequester)
    .get(
      DISCOVERY_PATH,
      ({ set }) => {
        set.headers["cache-control"] = "public, max-age=300";
        return discovery;
      },
      {
        response: {
          200: t.Object(
            { issuer: t.String(), authorization_endpoint: t.String(), token_endpoint: t.String(), jwks_uri: t.String() },
            { additionalProperties: true, description: "OpenID Connect Discovery 1.0 §3" },
          ),
        },
        detail: { summary: "OpenID Provider metadata (issuer = PUBLIC_URL = the iss of every token)" },
      },
    )
    .use(tokenRoutes({ prefix: OIDC_PREFIX, grants, authenticateClient, withRequester }))
    .use(userinfoRoutes({ prefix: OIDC_PREFIX, grants }))
    .use(revocationRoutes({ prefix: OIDC_PREFIX, issuer, grants, authenticateClient, withRequester }))
    .group(OIDC_PREFIX, (app) =>
      app
        .get("/authorize", authorizeEndpoint, { detail: PAGE_DETAIL })
        .post("/authorize", authorizeEndpoint, { parse: ["urlencoded"], detail: PAGE_DETAIL })
        .post(
          "/authorize/consent",
          async ({ request, set, body, requester }) => {
            const form = paramsOf(body);
            const serialized = form?.request ?? "";
            const params = paramsOf(Object.fromEntries(new URLSearchParams(serialized)));
            const parsed = await parseAuthorization(params);
            if (parsed.kind === "page") return htmlPage(set, parsed.status, messagePage(appName, parsed.title, parsed.message));
            if (parsed.kind === "redirect") return redirect(set, parsed.location, 303);
            const user = await browser.current(request);
            if (!user || !form?.csrf || !safeEqual(form.csrf, mac("consent", `${user.sessionId}|${serialized}`)))
              return htmlPage(set, 403, messagePage(appName, "Expired form", "This consent form is no longer valid. Go back to the application and sign in again."));
            const { redirectUri, state, client } = parsed.request;
            if (form.decision !== "allow")
              return redirect(set, withParams(redirectUri, { error: "access_denied", error_description: "The user denied the request.", state, iss: issuer }), 303);
            await oidc.grantConsent(user.userId, client.clientId, parsed.request.scope, requester);
            const answer = await authorize(request, set, params!, parsed.request, requester, true);
            if (set.status === 302) set.status = 303;
            return answer;
          },
          { parse: ["urlencoded"], detail: PAGE_DETAIL },
        )
        .get("/logout", logoutEndpoint, { detail: PAGE_DETAIL })
        .post("/logout", logoutEndpoint, { parse: ["urlencoded"], detail: PAGE_DETAIL }),
    );
}
