import { Elysia, type DocumentDecoration } from "elysia";
import { normalizeUsername } from "../../lib/names";
import { AUTH_PREFIX } from "../../http/routes";
import type { Config } from "../../config";
import { ApiError } from "../../errors";
import type { ResponseHeadersOf } from "../../http/security";
import { synchronous } from "../../http/synchronous";
import { clientIp, isTrustedPeer } from "../../lib/ip";
import type { AccessTokens } from "../../tokens/access";
import { API_KEY_PREFIX, isWellFormedApiKey } from "../keys/format";
import type { ApiKeyService } from "../keys/service";
import { MessagePage, PAGE_CSP } from "../pages/layout";
import { signInHostFor } from "../pages/hosts";
import type { BrowserSessions } from "../pages/session";
import type { SessionService } from "../sessions/service";
import type { UserIdentity } from "../users/service";
import { normalisePath, policyFor, type AccessRules, type Policy } from "./rules";
import { NO_STORE } from "../../http/cache";
import { whenReady, type Pending } from "../../lib/pending";

export const FORWARD_PATH = `${AUTH_PREFIX}/forward`;

/** The request the proxy asks about. `url` is undefined when no trusted proxy said what it was. */
interface Original {
  url: string | undefined;
  method: string;
  host: string;
  path: string | undefined;
  /** nginx auth_request (X-Original-URL): it cannot pass a redirect on, so "sign in" is a 401 with a Location. */
  nginx: boolean;
}

/**
 * The proxied request, from X-Original-URL/-Method (nginx) or X-Forwarded-Proto/-Host/-Uri/-Method (Traefik,
 * Caddy), only when the peer is a proxy TRUST_PROXY allows: otherwise anyone could claim to be asking about a
 * bypassed path.
 */
function originalRequest(headers: Headers, trusted: boolean): Original {
  if (!trusted) return { url: undefined, method: "GET", host: "", path: undefined, nginx: false };
  const originalUrl = headers.get("x-original-url");
  if (originalUrl) {
    try {
      const url = new URL(originalUrl);
      const method = (headers.get("x-original-method") ?? "GET").toUpperCase();
      return { url: url.href, method, host: url.hostname, path: normalisePath(url.pathname), nginx: true };
    } catch {
      return { url: undefined, method: "GET", host: "", path: undefined, nginx: true };
    }
  }
  const forwardedHost = headers.get("x-forwarded-host");
  const method = (headers.get("x-forwarded-method") ?? "GET").toUpperCase();
  // A host name (or [IPv6]) with an optional port: anything else is no host at all. Parsed by hand, not with URL:
  // this runs on every proxied request.
  if (!forwardedHost || !/^([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/i.test(forwardedHost))
    return { url: undefined, method, host: "", path: undefined, nginx: false };
  const proto = headers.get("x-forwarded-proto") === "https" ? "https" : "http";
  const rawUri = headers.get("x-forwarded-uri") || "/";
  const uri = rawUri.startsWith("/") ? rawUri : `/${rawUri}`;
  const host = forwardedHost.toLowerCase();
  const hostname = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d+$/, "");
  return { url: `${proto}://${host}${uri}`, method, host: hostname, path: normalisePath(uri), nginx: false };
}

/** A browser navigating (not a script): it should be sent to the sign-in page rather than get a bare 401. */
function isNavigation(headers: Headers): boolean {
  return (headers.get("accept") ?? "").includes("text/html") && headers.get("x-requested-with") !== "XMLHttpRequest";
}

/** `?roles=a,b&users=c` on the forward URL itself: any match allows. */
function queryRule(url: string): { roles: string[]; users: string[] } | undefined {
  const start = url.indexOf("?");
  if (start === -1) return undefined;
  const query = new URLSearchParams(url.slice(start + 1));
  const list = (name: string) => (query.get(name) ?? "").split(",").map((item) => item.trim()).filter(Boolean);
  const roles = list("roles");
  const users = list("users").map(normalizeUsername);
  return roles.length || users.length ? { roles, users } : undefined;
}

function allowedBy(rule: { roles: Iterable<string>; users: { has(user: string): boolean } | string[] }, who: UserIdentity): boolean {
  const users = rule.users;
  if (Array.isArray(users) ? users.includes(who.username) : users.has(who.username)) return true;
  for (const role of rule.roles) if (who.roles.includes(role)) return true;
  return false;
}

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
  /** Metrics hook (issue 22): told every answer and when its decision started (by its clock); returns the answer. */
  metrics: { clock(): number; forwardAnswered(response: Response, startedAt: number): Response };
}

/**
 * Forward auth for reverse proxies (nginx auth_request, Caddy forward_auth, Traefik forwardAuth): 200 with
 * Remote-User/-Email/-Name/-Groups (Authelia's names) when allowed; otherwise a redirect to sign in, a 401, or a
 * 403. Runs on every request of every protected app, so it does no hashing beyond one SHA-256 and at most one
 * cached lookup (a session) or two indexed ones (an API key).
 */
export function forwardAuthRoutes({ config, browser, accessTokens, sessions, apiKeys, rules, headers, peerAddress, waits, metrics }: ForwardDeps) {
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
  const forbiddenPage = String(
    <MessagePage appName={appName} title="Access denied" message="You are signed in, but this account may not open this page." />,
  );
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
        return whenReady(sessions.principal(claims.sid), (principal) => (principal && principal.userId === claims.sub && principal.clientId === null ? principal : undefined));
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

  function permits(policy: Policy, who: UserIdentity, url: string): boolean {
    if (policy.kind === "restricted" && !allowedBy(policy, who)) return false;
    const fromQuery = queryRule(url);
    return !fromQuery || allowedBy(fromQuery, who);
  }

  function signInUrl(original: Original): string {
    const host = (original.host && signInHostFor(browser.hosts, original.host)) || browser.primary;
    return original.url ? `${host.origin}/login?rd=${encodeURIComponent(original.url)}` : `${host.origin}/login`;
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
      "remote-email": who.email && headerSafe(who.email) ? who.email : "",
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

  function decide(request: Request): Pending<Response> {
    const requestHeaders = request.headers;
    // Without TRUST_PROXY nothing depends on the peer's address (no proxy header is believed, so no rule is
    // matched either): it is not asked for, which costs on every request.
    const peer = trust.kind === "none" ? null : peerAddress(request);
    const original = originalRequest(requestHeaders, trustedPeer(peer));
    const policy: Policy =
      rules === undefined
        ? { kind: "signed_in" }
        : original.path === undefined
          ? rules.defaultPolicy.kind === "bypass" ? { kind: "signed_in" } : rules.defaultPolicy
          : policyFor(rules, { host: original.host, path: original.path, method: original.method, ip: clientIp(requestHeaders, peer, trust, config.trustProxyHeader) });
    // Empty Remote-* headers on a bypass too: a proxy that copies them then overwrites any the client sent itself.
    if (policy.kind === "bypass") return new Response(null, { headers: bypassHeaders.for(request) });

    if (policy.kind === "deny") return forbidden(request);
    return whenReady(identify(requestHeaders), (who) => {
      if (!who) {
        if (isNavigation(requestHeaders)) {
          const location = signInUrl(original);
          if (original.nginx) return answer(request, 401, { location, ...NO_STORE, "www-authenticate": challenge });
          return answer(request, original.method === "GET" || original.method === "HEAD" ? 302 : 303, { location, ...NO_STORE });
        }
        return json(request, 401, "unauthorized", "Sign in, or send an access token or API key.", { "www-authenticate": challenge });
      }
      if (!permits(policy, who, request.url)) return forbidden(request);
      return allowed(request, who);
    });
  }

  // GET (what nginx, Caddy and Traefik send) gets a route of its own, served by Bun's router directly; `all`
  // answers every other method. Synchronous on SQLite, mounted before the body parser (see app.ts): no promise per
  // request. On PostgreSQL a cache miss answers later, so the route is composed `async` there.
  type Context = { request: Request; set: { headers: Record<string, string | number | string[] | undefined> } };
  // Metrics (issue 22): the one hook, around the one decision.
  const handle = waits
    ? async ({ request, set }: Context) => {
        const startedAt = metrics.clock();
        return headers.hand(set, metrics.forwardAnswered(await decide(request), startedAt));
      }
    : synchronous(({ request, set }: Context) => {
        const startedAt = metrics.clock();
        return headers.hand(set, metrics.forwardAnswered(decide(request) as Response, startedAt));
      });
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

  function forbidden(request: Request): Response {
    if (isNavigation(request.headers))
      return answer(request, 403, { "content-type": "text/html; charset=utf-8", "content-security-policy": PAGE_CSP, ...NO_STORE }, forbiddenPage);
    return json(request, 403, "forbidden", "This account may not access this resource.");
  }
}
