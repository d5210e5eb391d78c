import { Elysia } from "elysia";
import type { Delivery } from "../../delivery";
import { apiErrors, invalidToken, unauthorized } from "../../errors";
import { synchronous } from "../../http/synchronous";
import type { AccessTokens } from "../../tokens/access";
import { API_KEY_PREFIX } from "../keys/format";
import type { ApiKeyPrincipal, ApiKeyService } from "../keys/service";
import type { SessionPrincipal, SessionService } from "../sessions/service";
import { noStore } from "../../http/cache";
import { whenReady, type Pending } from "../../lib/pending";

type ResponseHeaders = Record<string, string | number | string[] | undefined>;

export type SessionAuth = {
  kind: "session";
  principal: SessionPrincipal;
  /** `exp` of the access token that authenticated this request (unix seconds). */
  tokenExp: number;
};
export type ApiKeyAuth = { kind: "api_key"; principal: ApiKeyPrincipal };
export type Authenticated = SessionAuth | ApiKeyAuth;

export const forbidden = () => apiErrors.forbidden("This needs the admin role.");

export const sessionRequired = () =>
  apiErrors.session_required("This action needs a signed-in session; an API key cannot perform it.");

/**
 * `X-API-Key: lk_...`, or `Authorization: Bearer lk_...`: such a value never reaches the JWT verifier. Plain
 * string tests, not a regular expression: this runs on every authenticated request.
 */
function presentedApiKey(request: Request): string | undefined {
  const header = request.headers.get("x-api-key");
  if (header) return header.trim();
  const authorization = request.headers.get("authorization");
  if (authorization === null || authorization.length < 10 || authorization.slice(0, 6).toLowerCase() !== "bearer") return undefined;
  const value = authorization.slice(6).trim();
  return value.startsWith(API_KEY_PREFIX) && !/\s/.test(value) && authorization.charCodeAt(6) === 32 ? value : undefined;
}

/**
 * Who a request is: one check behind the guard macros below and the routes that answer whole (/validate). A
 * session costs one cached HS256 verification plus one cached, indexed lookup; an API key one checksum and one
 * cached lookup. A cache hit never waits; a miss waits only on PostgreSQL (`waits`), where the hooks and routes
 * built on this are composed `async` (header mode's sliding token is `slide`, apart).
 */
export function requestIdentity(deps: { delivery: Delivery; accessTokens: AccessTokens; sessions: SessionService; apiKeys: ApiKeyService; waits: boolean }) {
  const { delivery, accessTokens, sessions, apiKeys } = deps;

  /** `acceptsApiKey: false`: the route refuses keys, so a valid one is checked but not counted as used. */
  function identify(request: Request, acceptsApiKey: boolean): Pending<Authenticated> {
    const apiKey = presentedApiKey(request);
    if (apiKey !== undefined)
      return whenReady(apiKeys.authenticate(apiKey, { countUse: acceptsApiKey }), (principal): Authenticated => ({ kind: "api_key", principal }));

    const presented = delivery.readAccessToken(request);
    if (!presented) throw unauthorized();
    if (presented.viaCookie) delivery.assertSameOrigin(request);
    // A key in a `token` header or a cookie is not where keys are accepted, and still never reaches the verifier.
    if (presented.token.startsWith(API_KEY_PREFIX)) throw invalidToken();
    const claims = accessTokens.verify(presented.token);
    if (!claims) throw invalidToken();
    return whenReady(sessions.principal(claims.sid), (principal): Authenticated => {
      // A client's grant is never a first-party session, even under a token that verified (RFC 9700 §2.3).
      if (!principal || principal.userId !== claims.sub || principal.clientId !== null) throw invalidToken();
      return { kind: "session", principal, tokenExp: claims.exp };
    });
  }

  return {
    identify,
    /** The database may answer later (PostgreSQL): whoever identifies must be able to wait. */
    waits: deps.waits,
    /** Header mode: every answer to a session carries a fresh access token (sliding expiry). */
    slides: delivery.slide !== undefined,
    async slide(identity: Authenticated, headers: ResponseHeaders): Promise<void> {
      if (identity.kind !== "session" || !delivery.slide) return;
      const { principal } = identity;
      delivery.slide(headers, await accessTokens.issue(principal.userId, principal.sessionId, principal.sessionExpiresAt));
    },
  };
}

export type RequestIdentity = ReturnType<typeof requestIdentity>;

/**
 * Two macros over one check. `auth` needs a session (access JWT); `authOrApiKey` also takes an API key.
 * They authenticate in `transform`, which runs before body validation, so an unauthenticated request gets
 * 401 rather than a 422 about its body. Every authenticated answer is about one user: no cache may keep it
 * (RFC 9111 §5.2.2.5).
 */
export function authGuard(identity: RequestIdentity) {
  // transform cannot add typed context, so it hands its result to resolve through the request object.
  const authenticated = new WeakMap<Request, Authenticated>();

  const { identify } = identity;

  /**
   * The transform hook: identify, then `check` the result (kind, role). Synchronous unless header mode slides the
   * access token, which signs one (asynchronously) per answer, or the database may answer later (PostgreSQL).
   */
  function authenticating(acceptsApiKey: boolean, check: (result: Authenticated) => void) {
    type Context = { request: Request; set: { headers: ResponseHeaders } };
    const remember = (request: Request, set: Context["set"], result: Authenticated) => {
      noStore(set.headers);
      authenticated.set(request, result);
      return result;
    };
    if (identity.slides || identity.waits)
      return async ({ request, set }: Context) => {
        const result = remember(request, set, await identify(request, acceptsApiKey));
        await identity.slide(result, set.headers);
        check(result);
      };
    return synchronous(({ request, set }: Context) => check(remember(request, set, identify(request, acceptsApiKey) as Authenticated)));
  }

  /** Hooks for a route that needs a session (and, given `role`, that role). */
  const sessionHooks = (role?: string) => ({
    transform: authenticating(false, (result) => {
      if (result.kind !== "session") throw sessionRequired();
      if (role !== undefined && !result.principal.roles.includes(role)) throw forbidden();
    }),
    resolve: synchronous(({ request }: { request: Request }) => {
      const { principal, tokenExp } = authenticated.get(request) as SessionAuth;
      return { principal, tokenExp };
    }),
  });

  return new Elysia({ name: "latchkey/auth-guard" }).macro({
    auth: sessionHooks(),
    /** A session whose user has the `admin` role; checked before the body is validated. */
    admin: sessionHooks("admin"),
    authOrApiKey: {
      transform: authenticating(true, () => {}),
      resolve: synchronous(({ request }: { request: Request }) => ({ identity: authenticated.get(request)! })),
    },
  });
}
