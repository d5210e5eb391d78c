import { Elysia, type DocumentDecoration } from "elysia";
import { AUTH_PREFIX } from "../../http/routes";
import type { Config } from "../../config";
import type { ResponseHeadersOf } from "../../http/security";
import { synchronous } from "../../http/synchronous";
import type { DirectRoutes } from "../../http/direct";
import { clientIp, isTrustedPeer } from "../../lib/ip";
import type { AccessTokens } from "../../tokens/access";
import type { ApiKeyService } from "../keys/service";
import type { BrowserSessions } from "../pages/session";
import type { SessionService } from "../sessions/service";
import type { AccessRules } from "./rules";
import { decide, requestPolicies, urlRule, type UrlRule } from "./decide";
import { forwardedRequest, type ForwardedRequest } from "./request";
import { memoized } from "../../lib/memo";
import { whenReady, type Pending } from "../../lib/pending";
import { forwardAnswers } from "./answers";
import { forwardIdentity } from "./identify";

export const FORWARD_PATH = `${AUTH_PREFIX}/forward`;

/** Asked by a peer TRUST_PROXY does not allow: none of its forwarding headers is read. */
const UNTRUSTED: ForwardedRequest = { ok: false, family: undefined, reason: "the peer is not a proxy TRUST_PROXY allows" };

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
  /** Where GET is also served by Bun's router directly, outside Elysia (http/direct.ts). */
  direct: DirectRoutes;
}

/**
 * Forward auth for reverse proxies (nginx auth_request, Caddy forward_auth, Traefik forwardAuth): 200 with
 * Remote-User/-Email/-Name/-Groups (Authelia's names) when allowed; otherwise a redirect to sign in, a 401, or a
 * 403. Runs on every request of every protected app, so it does no hashing beyond one SHA-256 and at most one
 * cached lookup (a session) or two indexed ones (an API key).
 */
export function forwardAuthRoutes({ config, browser, accessTokens, sessions, apiKeys, rules, headers, peerAddress, waits, metrics, direct }: ForwardDeps) {
  const trust = config.trustProxy;
  // Whether a peer may speak for the client, remembered per address (a proxy is one or a few addresses; parsing
  // and masking an address costs more than the rest of the check). Bounded: reset past 1,000 addresses.
  const trustedAddress = memoized(1000, (peer) => isTrustedPeer(trust, peer));
  const trustedPeer = (peer: string | null) => peer !== null && trustedAddress(peer);
  const identify = forwardIdentity({ browser, accessTokens, sessions, apiKeys });
  const answers = forwardAnswers({ headers, appName: config.appName, browser, identify });

  // The forward URL's own `?roles=&users=&scopes=`: the same few URLs (one per protected app) on every request.
  const knownUrlRule = memoized(100, urlRule);
  const urlRuleOf = (url: string): UrlRule | undefined => (url.includes("?") ? knownUrlRule(url) : undefined);

  /** Turns the verdict into the answer; the caller is looked up only when the verdict depends on who it is. */
  function answerFor(request: Request): Pending<Response> {
    const requestHeaders = request.headers;
    // Without TRUST_PROXY nothing depends on the peer's address (no proxy header is believed, and the start refuses
    // rules without it): it is not asked for, which costs on every request.
    const peer = trust.kind === "none" ? null : peerAddress(request);
    const original = trustedPeer(peer) ? forwardedRequest(requestHeaders) : UNTRUSTED;
    // The client's address only when a rule with `networks` gets that far (reading it walks X-Forwarded-For).
    const policies = requestPolicies(rules, original, () => clientIp(requestHeaders, peer, trust, config.trustProxyHeader));
    const url = urlRuleOf(request.url);
    // First without the caller: a bypass or a refusal for everyone needs no lookup.
    const first = decide(policies, undefined, url);
    if (first === "bypass") return answers.bypass(request);
    if (first === "forbidden") return answers.refused(request, original);
    return whenReady(identify(requestHeaders), (who) => {
      if (!who) return answers.signIn(request, original);
      const verdict = decide(policies, who, url);
      if (verdict === "allow") return answers.allowed(request, who);
      return verdict === "passkey" ? answers.passkeyStep(request, original) : answers.forbidden(request, original, who);
    });
  }

  /** The answer, with the metrics hook (issue 22) around the one decision. */
  function answer(request: Request): Pending<Response> {
    const startedAt = metrics.clock();
    const response = answerFor(request);
    return response instanceof Promise ? response.then((done) => metrics.forwardAnswered(done, startedAt)) : metrics.forwardAnswered(response, startedAt);
  }

  // GET (what nginx, Caddy and Traefik send) gets a route of its own, which Bun's router also serves directly
  // (http/direct.ts); `all` answers every other method. Synchronous on SQLite, mounted before the body parser (see
  // app.ts): no promise per request. On PostgreSQL a cache miss answers later, so the route is composed `async` there.
  type Context = { request: Request; set: { headers: Record<string, string | number | string[] | undefined> } };
  const handle = waits
    ? async ({ request, set }: Context) => headers.hand(set, await answer(request))
    : synchronous(({ request, set }: Context) => headers.hand(set, answer(request) as Response));
  direct.get(FORWARD_PATH, answer);
  const route = {
    detail: {
      summary: "Forward auth for reverse proxies: may this request through? (nginx auth_request, Caddy forward_auth, Traefik forwardAuth)",
      description:
        "Answers every method. Identifies the browser session cookie, `Authorization: Bearer` (access token or API key), `X-API-Key`, " +
        "or `Authorization: Basic` whose password is an API key (never a password). Reads the proxied request from `X-Original-URL`/`-Method` " +
        "(nginx) or `X-Forwarded-Proto`/`-Host`/`-Uri`/`-Method` (Traefik, Caddy), only from proxies allowed by `TRUST_PROXY`; a request with " +
        "both families' headers is refused. Allowed: 200, empty, with `Remote-User`, `Remote-Email` (a verified address only), `Remote-Name`, " +
        "`Remote-Groups`. Not signed in: a browser navigation gets 302 (303 for other methods) to the sign-in page with `rd`, or behind nginx " +
        "a 401 carrying that `Location`; other requests a 401 with `WWW-Authenticate`. Refused: 403 (a page for browsers). `?roles=a,b` and " +
        "`?users=c,d` on this URL restrict it (any match allows); `?scopes=e,f` admits API keys limited to one of those scopes (other scoped " +
        "keys are refused). `ACCESS_RULES_FILE` adds central rules; with rules, a request that cannot be parsed or that no trusted proxy " +
        "described is refused. A rule with `require = \"passkey\"` admits only a session made with a passkey (amr `hwk`): a browser " +
        "whose session was not is sent (like a sign-in) to `/login/passkey-step` with `rd`, other callers get 401 `passkey_required`; " +
        "API keys never pass it.",
      responses: {
        200: { description: "Allowed: the Remote-* headers name the user." },
        302: { description: "Not signed in (a browser behind Traefik or Caddy): to the sign-in page." },
        401: { description: "Not signed in, or not with a passkey where a rule requires one.\n\n- `unauthorized`: no credential, or no valid session cookie\n- `invalid_token`: an access token that is malformed, expired, ended, or an OpenID Connect client's\n- `invalid_api_key`: an API key that is unknown, expired or deleted\n- `passkey_required`: a rule requires a session made with a passkey; this one was not (or it is an API key)", content: { "application/json": { schema: { type: "object", properties: { error: { type: "string" }, message: { type: "string" } }, required: ["error", "message"] } } } },
        403: { description: "Refused.\n\n- `forbidden`: the rules do not allow this user, deny this request to everyone, or it cannot be parsed or attributed", content: { "application/json": { schema: { type: "object", properties: { error: { type: "string" }, message: { type: "string" } }, required: ["error", "message"] } } } },
      },
    },
  } satisfies { detail: DocumentDecoration };
  return new Elysia({ tags: ["auth"] }).get(FORWARD_PATH, handle, route).all(FORWARD_PATH, handle, route);
}
