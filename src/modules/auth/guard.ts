import { Elysia } from "elysia";
import type { Delivery } from "../../delivery";
import { apiErrors, invalidToken, unauthorized } from "../../errors";
import type { AccessTokens } from "../../tokens/access";
import { API_KEY_PREFIX } from "../keys/format";
import type { ApiKeyPrincipal, ApiKeyService } from "../keys/service";
import type { SessionPrincipal, SessionService } from "../sessions/service";

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

/** `X-API-Key: lk_...`, or `Authorization: Bearer lk_...`: such a value never reaches the JWT verifier. */
function presentedApiKey(request: Request): string | undefined {
  const header = request.headers.get("x-api-key");
  if (header) return header.trim();
  const match = /^Bearer +(lk_\S*) *$/i.exec(request.headers.get("authorization") ?? "");
  return match?.[1]?.startsWith(API_KEY_PREFIX) ? match[1] : undefined;
}

/**
 * Two macros over one check. `auth` needs a session (access JWT); `authOrApiKey` also takes an API key.
 * They authenticate in `transform`, which runs before body validation, so an unauthenticated request gets
 * 401 rather than a 422 about its body. A session costs one HS256 verification plus one cached, indexed
 * lookup; an API key one checksum and one indexed lookup.
 */
export function authGuard(deps: {
  delivery: Delivery;
  accessTokens: AccessTokens;
  sessions: SessionService;
  apiKeys: ApiKeyService;
}) {
  const { delivery, accessTokens, sessions, apiKeys } = deps;
  // transform cannot add typed context, so it hands its result to resolve through the request object.
  const authenticated = new WeakMap<Request, Authenticated>();

  /**
   * `acceptsApiKey: false`: the route refuses keys, so a valid one is checked but not counted as used. Every
   * authenticated answer is about one user: no cache may keep it (RFC 9111 §5.2.2.5).
   */
  async function authenticate(request: Request, headers: ResponseHeaders, acceptsApiKey: boolean): Promise<Authenticated> {
    const result = await identify(request, headers, acceptsApiKey);
    headers["cache-control"] = "no-store";
    return result;
  }

  async function identify(request: Request, headers: ResponseHeaders, acceptsApiKey: boolean): Promise<Authenticated> {
    const apiKey = presentedApiKey(request);
    if (apiKey !== undefined) return { kind: "api_key", principal: apiKeys.authenticate(apiKey, { countUse: acceptsApiKey }) };

    const presented = delivery.readAccessToken(request);
    if (!presented) throw unauthorized();
    if (presented.viaCookie) delivery.assertSameOrigin(request);
    // A key in a `token` header or a cookie is not where keys are accepted, and still never reaches the verifier.
    if (presented.token.startsWith(API_KEY_PREFIX)) throw invalidToken();
    const claims = accessTokens.verify(presented.token);
    if (!claims) throw invalidToken();
    const principal = sessions.principal(claims.sid);
    if (!principal || principal.userId !== claims.sub) throw invalidToken();
    if (delivery.slide) delivery.slide(headers, await accessTokens.issue(principal.userId, principal.sessionId, principal.sessionExpiresAt));
    return { kind: "session", principal, tokenExp: claims.exp };
  }

  /** Hooks for a route that needs a session (and, given `role`, that role). */
  const sessionHooks = (role?: string) => ({
    async transform({ request, set }: { request: Request; set: { headers: ResponseHeaders } }) {
      const result = await authenticate(request, set.headers, false);
      if (result.kind !== "session") throw sessionRequired();
      if (role !== undefined && !result.principal.roles.includes(role)) throw forbidden();
      authenticated.set(request, result);
    },
    resolve({ request }: { request: Request }) {
      const { principal, tokenExp } = authenticated.get(request) as SessionAuth;
      return { principal, tokenExp };
    },
  });

  return new Elysia({ name: "latchkey/auth-guard" }).macro({
    auth: sessionHooks(),
    /** A session whose user has the `admin` role; checked before the body is validated. */
    admin: sessionHooks("admin"),
    authOrApiKey: {
      async transform({ request, set }) {
        authenticated.set(request, await authenticate(request, set.headers, true));
      },
      resolve({ request }) {
        return { identity: authenticated.get(request)! };
      },
    },
  });
}
