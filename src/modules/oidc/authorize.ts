import { Elysia } from "elysia";
import type { ClientInfo } from "../../http/client-ip";
import { madeWithPasskey, passkeyRequested } from "../../lib/amr";
import { safeEqual } from "../../lib/crypto";
import { PASSKEY_STEP_PATH } from "../../http/routes";
import { sameOriginPost } from "../pages/csrf";
import { htmlPage, seeOther, type PageSet } from "../pages/respond";
import { consentItems, SCOPES } from "./claims";
import { userMayUse, type OidcClient } from "./clients";
import { verifyIdTokenHint, type IdTokenHint } from "./id-token-hint";
import { accountChoicePage, consentPage, messagePage } from "./pages";
import { OIDC_PREFIX, requestParams, withParams, type Params, type RequestParams } from "./params";
import type { ProviderPageDeps } from "./index";

export const PROMPTS = ["none", "login", "consent", "select_account"];
/** Parameters too long for any honest request are refused rather than stored (state and nonce are echoed). */
const MAX_PARAM = 2048;
const PAGE_DETAIL = { hide: true };

interface AuthorizationRequest {
  client: OidcClient;
  redirectUri: string;
  scope: string;
  state: string | undefined;
  nonce: string | null;
  codeChallenge: string | null;
  prompt: Set<string>;
  maxAge: number | undefined;
  hint: IdTokenHint | undefined;
  /** The sign-in must be made with a passkey: the client requires it, or asked for acr `phr`. */
  passkey: boolean;
}

type Parsed =
  | { kind: "page"; status: number; title: string; message: string }
  | { kind: "redirect"; location: string }
  | { kind: "ok"; request: AuthorizationRequest };

/** 302: a redirect in answer to a GET (the authorization request) or to the sign-in page. */
const redirect = (set: PageSet, location: string, status = 302) => seeOther(set, location, status);

/** The authorization endpoint (OpenID Connect Core §3.1.2) and its consent form. */
export function authorizeRoutes(deps: ProviderPageDeps) {
  const { issuer, appName, clients, oidc, keyRing, browser, mac, origins, audit, withRequester } = deps;

  /**
   * Checks an authorization request (OpenID Connect Core §3.1.2.1). Until client_id and redirect_uri are known
   * good, errors are a page and never a redirect (RFC 6749 §4.1.2.1: no open redirector); after, they go back
   * to the client with `state`.
   */
  async function parseAuthorization({ params, problems }: RequestParams): Promise<Parsed> {
    const unsafe = problems.find((problem) => problem.name === "client_id" || problem.name === "redirect_uri");
    if (unsafe) return { kind: "page", status: 400, title: "Invalid request", message: `invalid_request: ${unsafe.message}` };
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
    // RFC 6749 §3.1: a repeated parameter is invalid_request (a repeated state is not echoed: neither is attributable).
    if (problems[0]) return fail("invalid_request", problems[0].message);
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
    if ([...prompt].some((value) => !PROMPTS.includes(value)) || (prompt.has("none") && prompt.size > 1))
      return fail("invalid_request", "prompt must be none, or any of login, consent and select_account.");
    let maxAge: number | undefined;
    if (params.max_age !== undefined) {
      if (!/^\d{1,9}$/.test(params.max_age)) return fail("invalid_request", "max_age must be a number of seconds.");
      maxAge = Number(params.max_age);
    }
    // The hint decides something only with prompt=none (who may get a code without the user seeing a page):
    // there, one this issuer cannot verify is refused rather than ignored (fail closed); elsewhere it is a hint.
    const hint = params.id_token_hint === undefined ? undefined : verifyIdTokenHint(params.id_token_hint, keyRing, issuer);
    if (params.id_token_hint !== undefined && !hint && prompt.has("none")) return fail("invalid_request", "The id_token_hint was not issued by this server.");
    const passkey = passkeyRequested(client.requirePasskey, params.acr_values);
    return { kind: "ok", request: { client, redirectUri, scope, state, nonce: params.nonce ?? null, codeChallenge, prompt, maxAge, hint, passkey } };
  }

  /** A stamp `time.mac` saying "sign-in was asked for at `time`", carried through the sign-in page's rd. */
  const reauthStamp = (now: number) => `${now}.${mac("reauth", String(now))}`;
  function reauthAfter(stamp: string | undefined): number | undefined {
    const match = stamp ? /^(\d{13})\.([\w-]+)$/.exec(stamp) : null;
    return match && safeEqual(match[2]!, mac("reauth", match[1]!)) ? Number(match[1]) : undefined;
  }

  /** This authorization request again, with `changes` (undefined removes a parameter). */
  const again = (params: Params, changes: Params) => {
    const next = new URLSearchParams();
    for (const [name, value] of Object.entries({ ...params, ...changes })) if (value !== undefined) next.set(name, value);
    return `${OIDC_PREFIX}/authorize?${next}`;
  };

  /** The authorization endpoint's answer once the request is valid; shared by GET/POST and the consent form. */
  async function authorize(request: Request, set: PageSet, params: Params, parsed: AuthorizationRequest, from: ClientInfo, consented: boolean) {
    const { client, redirectUri, state, prompt, hint } = parsed;
    const back = (query: Record<string, string | undefined>) => redirect(set, withParams(redirectUri, { ...query, state, iss: issuer }));
    const user = await browser.current(request);
    const now = Date.now();
    const authentication = user ? await oidc.authenticationOf(user.sessionId) : undefined;
    const authTime = authentication?.authTime;
    const freshSince = reauthAfter(params.lk_reauth);
    const fresh = authTime !== undefined && freshSince !== undefined && authTime >= freshSince;
    const tooOld = parsed.maxAge !== undefined && authTime !== undefined && now - authTime > parsed.maxAge * 1000;
    if (!user || authTime === undefined || ((prompt.has("login") || tooOld) && !fresh)) {
      if (prompt.has("none")) return back({ error: "login_required", error_description: "The user is not signed in." });
      // prompt=login or an older sign-in than max_age: the browser signs in again (the sign-in page would
      // otherwise send a signed-in browser straight back).
      if (user) await browser.signOut(request, set.headers);
      return redirect(set, `/login?rd=${encodeURIComponent(again(params, { lk_reauth: reauthStamp(now) }))}`);
    }
    // OpenID Connect Core §3.1.2.1: the hint names who the client expects; without a prompt, only that user will do.
    if (prompt.has("none") && hint && hint.sub !== user.userId)
      return back({ error: "login_required", error_description: "Another user is signed in than the id_token_hint names." });
    if (prompt.has("select_account") && !fresh) {
      const promptWithout = [...prompt].filter((value) => value !== "select_account").join(" ") || undefined;
      return htmlPage(
        set,
        200,
        accountChoicePage({
          appName,
          clientId: client.clientId,
          username: user.username,
          continueUrl: again(params, { prompt: promptWithout }),
          otherUrl: again(params, { prompt: [promptWithout, "login"].filter(Boolean).join(" ") }),
        }),
      );
    }
    if (!userMayUse(client, user)) {
      await audit.record({ event: "oidc_access_denied", userId: user.userId, ...from, detail: { client_id: client.clientId } });
      return htmlPage(set, 403, messagePage(appName, "Access denied", `Your account is not allowed to use ${client.clientId}. Ask your administrator for access.`));
    }
    // A passkey required (the client's rule, or acr_values=phr) and this session was not made with one: the passkey
    // step, then this request again; without a page to show (prompt=none) the RFC's answer.
    if (parsed.passkey && !madeWithPasskey(authentication!.amr)) {
      if (prompt.has("none")) return back({ error: "login_required", error_description: "This application requires a sign-in with a passkey." });
      return redirect(set, `${PASSKEY_STEP_PATH}?rd=${encodeURIComponent(again(params, {}))}`);
    }
    if (!consented && (!client.trusted || prompt.has("consent")) && (prompt.has("consent") || !(await oidc.hasConsent(user.userId, client.clientId, parsed.scope)))) {
      if (prompt.has("none")) return back({ error: "consent_required", error_description: "The user has not consented to this application." });
      const serialized = new URLSearchParams(params as Record<string, string>).toString();
      return htmlPage(set, 200, consentPage({ appName, clientId: client.clientId, items: consentItems(user, parsed.scope), username: user.username, request: serialized, csrf: mac("consent", `${user.sessionId}|${serialized}`) }));
    }
    const code = await oidc.issueCode({
      client,
      userId: user.userId,
      browserSessionId: user.sessionId,
      redirectUri,
      codeChallenge: parsed.codeChallenge,
      nonce: parsed.nonce,
      scope: parsed.scope,
      authTime,
      amr: authentication!.amr,
    });
    return back({ code });
  }

  type Context = { request: Request; set: PageSet; body: unknown; requester: ClientInfo };

  async function authorizeEndpoint({ request, set, body, requester }: Context) {
    const read = requestParams(request.url, request.method === "POST" ? body : undefined);
    const parsed = await parseAuthorization(read);
    if (parsed.kind === "page") return htmlPage(set, parsed.status, messagePage(appName, parsed.title, parsed.message));
    if (parsed.kind === "redirect") return redirect(set, parsed.location);
    return authorize(request, set, read.params, parsed.request, requester, false);
  }

  return new Elysia({ prefix: OIDC_PREFIX })
    .use(withRequester)
    .get("/authorize", authorizeEndpoint, { detail: PAGE_DETAIL })
    .post("/authorize", authorizeEndpoint, { parse: ["urlencoded"], detail: PAGE_DETAIL })
    .post(
      "/authorize/consent",
      async ({ request, set, body, requester }) => {
        const form = requestParams(request.url, body).params;
        const serialized = form.request ?? "";
        const read = requestParams(`${issuer}/?${serialized}`);
        const parsed = await parseAuthorization(read);
        if (parsed.kind === "page") return htmlPage(set, parsed.status, messagePage(appName, parsed.title, parsed.message));
        if (parsed.kind === "redirect") return redirect(set, parsed.location, 303);
        const user = await browser.current(request);
        if (!user || !sameOriginPost(request, origins) || !form.csrf || !safeEqual(form.csrf, mac("consent", `${user.sessionId}|${serialized}`)))
          return htmlPage(set, 403, messagePage(appName, "Expired form", "This consent form is no longer valid. Go back to the application and sign in again."));
        const { redirectUri, state, client } = parsed.request;
        if (form.decision !== "allow")
          return redirect(set, withParams(redirectUri, { error: "access_denied", error_description: "The user denied the request.", state, iss: issuer }), 303);
        await oidc.grantConsent(user.userId, client.clientId, parsed.request.scope, requester);
        const answer = await authorize(request, set, read.params, parsed.request, requester, true);
        if (set.status === 302) set.status = 303;
        return answer;
      },
      { parse: ["urlencoded"], detail: PAGE_DETAIL },
    );
}
