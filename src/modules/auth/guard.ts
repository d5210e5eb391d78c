import { Elysia } from "elysia";
import type { Delivery, DeliveryContext } from "../../delivery";
import { invalidToken, unauthorized } from "../../errors";
import type { AccessTokens } from "../../tokens/access";
import type { SessionPrincipal, SessionService } from "../sessions/service";

export type Authenticated = {
  principal: SessionPrincipal;
  /** `exp` of the access token that authenticated this request (unix seconds). */
  tokenExp: number;
};


/**
 * The `auth` macro. It authenticates in `transform`, which runs before body validation, so an unauthenticated
 * request gets 401 rather than a 422 about its body. The work is one HS256 verification plus one cached,
 * indexed session lookup; an ended session fails at once.
 */
export function authGuard(deps: { delivery: Delivery; accessTokens: AccessTokens; sessions: SessionService }) {
  const { delivery, accessTokens, sessions } = deps;
  // transform cannot add typed context, so it hands its result to resolve through the request object.
  const authenticated = new WeakMap<Request, Authenticated>();

  return new Elysia({ name: "latchkey/auth-guard" }).macro({
    auth: {
      // Destructured so Elysia's static analysis sees that cookies and headers are used.
      async transform({ request, set, cookie }) {
        const context = { request, set, cookie } as DeliveryContext;
        const presented = delivery.readAccessToken(context);
        if (!presented) throw unauthorized();
        if (presented.viaCookie) delivery.assertSameOrigin(request);
        const claims = await accessTokens.verify(presented.token);
        if (!claims) throw invalidToken();
        const principal = sessions.principal(claims.sid);
        if (!principal || principal.userId !== claims.sub) throw invalidToken();
        if (delivery.slidesAccessToken)
          delivery.attachAccessToken(context, await accessTokens.issue(principal.userId, principal.sessionId, principal.sessionExpiresAt));
        authenticated.set(request, { principal, tokenExp: claims.exp });
      },
      resolve({ request }) {
        return authenticated.get(request)!;
      },
    },
  });
}
