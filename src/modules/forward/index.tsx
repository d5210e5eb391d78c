import { Elysia, type DocumentDecoration } from "elysia";
import { AUTH_PREFIX } from "../../http/routes";
import type { Config } from "../../config";
import { ApiError } from "../../errors";
import type { ResponseHeadersOf } from "../../http/security";
import { synchronous } from "../../http/synchronous";
import { clientIp, isTrustedPeer } from "../../lib/ip";
import type { AccessTokens } from "../../tokens/access";
import { API_KEY_PREFIX, isWellFormedApiKey } from "../keys/format";
import type { ApiKeyService } from "../keys/service";
import { Layout, PAGE_CSP } from "../pages/layout";
import { signInHostFor } from "../pages/hosts";
import type { BrowserSessions } from "../pages/session";
import type { SessionService } from "../sessions/service";
import type { UserIdentity } from "../users/service";
import type { AccessRules } from "./rules";
import { decide, requestPolicies, urlRule, type UrlRule } from "./decide";
import { forwardedRequest, type ForwardedRequest } from "./request";
import { NO_STORE } from "../../http/cache";
import { whenReady, type Pending } from "../../lib/pending";

export const FORWARD_PATH = `${AUTH_PREFIX}/forward`;

/** A browser navigating (not a script): it should be sent to the sign-in page rather than get a bare 401. */
function isNavigation(headers: Headers): boolean {
  return (headers.get("accept") ?? "").includes("text/html") && headers.get("x-requested-with") !== "XMLHttpRequest";
}

/** Asked by a peer TRUST_PROXY does not allow: none of its forwarding headers is read. */
const UNTRUSTED: ForwardedRequest = { ok: false, family: undefined, reason: "the peer is not a proxy TRUST_PROXY allows" };

const ANONYMOUS = { ...NO_STORE, "remote-user": "", "remote-groups": "", "remote-email": "", "remote-name": "" };

/** Header values a proxy copies upstream: printable Latin-1 only, else left out (or the username, for the name). */
const headerSafe = (value: string) => /^[\u0020-\u007e\u00a0-\u00ff]{1,256}$/.test(value);

export interface ForwardDeps {
  config: Config;
  browser: BrowserSessions;
  accessTokens: AccessTokens;
  sessions: SessionService;
  apiKeys: ApiKeyService;
  rules: AccessRules | undefined;
  headers: ResponseHeadersOf;
  /** The address of the peer that sent the request (the server's view), or null (in-process requests). */
  peerAddress: (request: Request) => string | null;
  /** The database may answer later (PostgreSQL): the route must be able to wait. */
  waits: boolean;
}

/**
 * Forward auth for reverse proxies (nginx auth_request, Caddy forward_auth, Traefik forwardAuth): 200 with
 * Remote-User/-Email/-Name/-Groups (Authelia's names) when allowed; otherwise a redirect to sign in, a 401, or a
 * 403. Runs on every request of every protected app, so it does no hashing beyond one SHA-256 and at most one
 * cached lookup (a session) or two indexed ones (an API key).
 */
export function forwardAuthRoutes({ config, browser, accessTokens, sessions, apiKeys, rules, headers, peerAddress, waits }: ForwardDeps) {
  const trust = config.trustProxy;
  // Whether a peer may speak for the client, remembered per address (a proxy is one or a few addresses; parsing
  // and masking an address costs more than the rest of the check). Bounded: reset past 1,000 addresses.
  const trustedPeers = new Map<string, boolean>();
  function trustedPeer(peer: string | null): boolean {
    if (peer === null) return false;
    let trusted = trustedPeers.get(peer);
    if (trusted === undefined) {
      if (trustedPeers.size >= 1000) trustedPeers.clear();
      trusted = isTrustedPeer(trust, peer);
      trustedPeers.set(peer, trusted);
    }
    return trusted;
  }
  const appName = config.appName;
  const challenge = `Bearer realm="${appName.replace(/["\\]/g, "")}", Basic realm="${appName.replace(/["\\]/g, "")}", charset="UTF-8"`;

  /** Who the request is, or undefined. A credential presented but wrong counts as none (401), never as an error. */
  function identify(headers: Headers): Pending<UserIdentity | undefined> {
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
  }

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

  /** The sign-in host of the app's domain (PUBLIC_URL's when none covers it). */
  const signInHost = (original: ForwardedRequest) => (original.ok && signInHostFor(browser.hosts, original.host)) || browser.primary;
  const signInUrl = (original: ForwardedRequest) =>
    original.ok ? `${signInHost(original).origin}/login?rd=${encodeURIComponent(original.url)}` : `${signInHost(original).origin}/login`;

  // The forward URL's own `?roles=&users=&scopes=`: the same few URLs (one per protected app) on every request.
  const urlRules = new Map<string, UrlRule | undefined>();
  function urlRuleOf(url: string): UrlRule | undefined {
    if (!url.includes("?")) return undefined;
    let rule = urlRules.get(url);
    if (rule === undefined && !urlRules.has(url)) {
      if (urlRules.size >= 100) urlRules.clear();
      rule = urlRule(url);
      urlRules.set(url, rule);
    }
    return rule;
  }

  // Every answer is whole (http/security.ts `hand`): Elysia sends it untouched.
  const plainHeaders = headers.headersWith({});
  const bypassHeaders = headers.headersWith(ANONYMOUS);
  const allowHeaders = headers.headersWith(NO_STORE);
  const answer = (request: Request, status: number, extra: Record<string, string>, body: string | null = null) =>
    new Response(body, { status, headers: plainHeaders.with(request, extra) });
  const json = (request: Request, status: number, error: string, message: string, extra: Record<string, string> = {}) =>
    answer(request, status, { "content-type": "application/json", ...NO_STORE, ...extra }, JSON.stringify({ error, message }));

  /** The Remote-* headers that name a user to the proxy. */
  function remote(who: UserIdentity): Record<string, string> {
    const name = who.metadata.name;
    return {
      "remote-user": who.username,
      "remote-groups": who.roles.join(","),
      // Only a verified address: on an open instance anyone may claim someone else's, and apps match users by it.
      "remote-email": who.email && who.emailVerified && headerSafe(who.email) ? who.email : "",
      "remote-name": typeof name === "string" && headerSafe(name) ? name : who.username,
    };
  }
  // The allowed answer's headers, built once per principal object: principals are the session and key caches'
  // entries (renewed at least once a second), so this holds nothing longer than they do.
  const allowedFor = new WeakMap<UserIdentity, Headers>();
  function allowed(request: Request, who: UserIdentity): Response {
    if (!allowHeaders.plain(request)) return new Response(null, { headers: allowHeaders.with(request, remote(who)) });
    let prebuilt = allowedFor.get(who);
    if (prebuilt === undefined) {
      prebuilt = new Headers(allowHeaders.shared);
      for (const [name, value] of Object.entries(remote(who))) prebuilt.set(name, value);
      allowedFor.set(who, prebuilt);
    }
    return new Response(null, { headers: prebuilt });
  }

  /** Turns the verdict into the answer; the caller is looked up only when the verdict depends on who it is. */
  function answerFor(request: Request): Pending<Response> {
    const requestHeaders = request.headers;
    // Without TRUST_PROXY nothing depends on the peer's address (no proxy header is believed, and the start refuses
    // rules without it): it is not asked for, which costs on every request.
    const peer = trust.kind === "none" ? null : peerAddress(request);
    const original = trustedPeer(peer) ? forwardedRequest(requestHeaders) : UNTRUSTED;
    const ip = rules === undefined ? null : clientIp(requestHeaders, peer, trust, config.trustProxyHeader);
    const policies = requestPolicies(rules, original, ip);
    const url = urlRuleOf(request.url);
    const first = decide(policies, undefined, url);
    // Empty Remote-* headers on a bypass too: a proxy that copies them then overwrites any the client sent itself.
    if (first === "bypass") return new Response(null, { headers: bypassHeaders.for(request) });
    if (first === "forbidden") return refused(request, original);
    return whenReady(identify(requestHeaders), (who) => {
      if (!who) {
        if (isNavigation(requestHeaders)) {
          const location = signInUrl(original);
          if (original.family === "nginx") return answer(request, 401, { location, ...NO_STORE, "www-authenticate": challenge });
          const method = original.ok ? original.method : "GET";
          return answer(request, method === "GET" || method === "HEAD" ? 302 : 303, { location, ...NO_STORE });
        }
        return json(request, 401, "unauthorized", "Sign in, or send an access token or API key.", { "www-authenticate": challenge });
      }
      if (decide(policies, who, url) !== "allow") return forbidden(request, original, who);
      return allowed(request, who);
    });
  }

  // GET (what nginx, Caddy and Traefik send) gets a route of its own, served by Bun's router directly; `all`
  // answers every other method. Synchronous on SQLite, mounted before the body parser (see app.ts): no promise per
  // request. On PostgreSQL a cache miss answers later, so the route is composed `async` there.
  type Context = { request: Request; set: { headers: Record<string, string | number | string[] | undefined> } };
  const handle = waits
    ? async ({ request, set }: Context) => headers.hand(set, await answerFor(request))
    : synchronous(({ request, set }: Context) => headers.hand(set, answerFor(request) as Response));
  const route = {
    detail: {
      summary: "Forward auth for reverse proxies: may this request through? (nginx auth_request, Caddy forward_auth, Traefik forwardAuth)",
      description:
        "Answers every method. Identifies the browser session cookie, `Authorization: Bearer` (access token or API key), `X-API-Key`, " +
        "or `Authorization: Basic` whose password is an API key (never a password). Reads the proxied request from `X-Original-URL`/`-Method` " +
        "(nginx) or `X-Forwarded-Proto`/`-Host`/`-Uri`/`-Method` (Traefik, Caddy), only from proxies allowed by `TRUST_PROXY`. " +
        "Allowed: 200, empty, with `Remote-User`, `Remote-Email`, `Remote-Name`, `Remote-Groups`. Not signed in: a browser navigation gets " +
        "302 (303 for other methods) to the sign-in page with `rd`, or behind nginx a 401 carrying that `Location`; other requests a 401 with " +
        "`WWW-Authenticate`. Signed in but not allowed: 403. `?roles=a,b` and `?users=c,d` on this URL restrict it (any match allows); " +
        "`ACCESS_RULES_FILE` adds central rules.",
      responses: {
        200: { description: "Allowed: the Remote-* headers name the user." },
        302: { description: "Not signed in (a browser behind Traefik or Caddy): to the sign-in page." },
        401: { description: "Not signed in.\n\n- `unauthorized`: no valid session, token or API key", content: { "application/json": { schema: { type: "object", properties: { error: { type: "string" }, message: { type: "string" } }, required: ["error", "message"] } } } },
        403: { description: "Signed in, not allowed.\n\n- `forbidden`: the rules do not allow this user", content: { "application/json": { schema: { type: "object", properties: { error: { type: "string" }, message: { type: "string" } }, required: ["error", "message"] } } } },
      },
    },
  } satisfies { detail: DocumentDecoration };
  return new Elysia({ tags: ["auth"] }).get(FORWARD_PATH, handle, route).all(FORWARD_PATH, handle, route);

  /**
   * 403: JSON for scripts; for a browser, Latchkey's page saying who is signed in, with a sign-out and a
   * switch-account link on the sign-in host (the nginx example shows it through error_page 403 too).
   */
  function forbidden(request: Request, original: ForwardedRequest, who: UserIdentity | undefined): Response {
    if (!isNavigation(request.headers)) return json(request, 403, "forbidden", "This account may not access this resource.");
    return answer(
      request,
      403,
      { "content-type": "text/html; charset=utf-8", "content-security-policy": PAGE_CSP, ...NO_STORE },
      String(<ForbiddenPage appName={appName} username={who?.username} signIn={signInHost(original).origin} url={original.ok ? original.url : undefined} />),
    );
  }

  /** Refused whoever asks: the caller is looked up only for a browser's page. */
  function refused(request: Request, original: ForwardedRequest): Pending<Response> {
    if (!isNavigation(request.headers)) return forbidden(request, original, undefined);
    return whenReady(identify(request.headers), (who) => forbidden(request, original, who));
  }
}

/** The refusal page: who is signed in, and how to sign out or sign in as someone else (links to the sign-in host). */
function ForbiddenPage(props: { appName: string; username: string | undefined; signIn: string; url: string | undefined }) {
  const back = props.url === undefined ? "" : `?rd=${encodeURIComponent(props.url)}`;
  return (
    <Layout appName={props.appName} title="Access denied" narrow>
      <section>
        <h1>Access denied</h1>
        {props.username === undefined ? (
          <>
            <p>You are not signed in, and this page is not open to anyone.</p>
            <p>
              <a href={`${props.signIn}/login${back}`}>Sign in</a>
            </p>
          </>
        ) : (
          <>
            <p>
              Signed in as <strong safe>{props.username}</strong>. This account may not open this page.
            </p>
            <p>
              <a href={`${props.signIn}/logout${back}`}>Switch account</a> · <a href={`${props.signIn}/logout`}>Sign out</a>
            </p>
          </>
        )}
      </section>
    </Layout>
  );
}
