import { Elysia } from "elysia";
import type { ClientInfo } from "../../http/client-ip";
import { safeEqual } from "../../lib/crypto";
import { sameOriginPost } from "../pages/csrf";
import { htmlPage, seeOther, type PageSet } from "../pages/respond";
import type { LogoutNotices } from "./backchannel";
import { verifyIdTokenHint } from "./id-token-hint";
import { logoutConfirmPage, messagePage } from "./pages";
import { OIDC_PREFIX, requestParams, withParams } from "./params";
import type { ProviderPageDeps } from "./index";

const PAGE_DETAIL = { hide: true };

/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). Without an ID token naming the signed-in user a
 * third-party page could sign the browser out, so the user confirms on a page first. The browser is sent back
 * only to a post_logout_redirect_uri registered for the client the request names (§3: never to one the OP cannot
 * check; a request with only the URI, as OmniAuth sends, signs out and stays on Latchkey's page).
 */
export function logoutRoutes(deps: ProviderPageDeps & { notices: LogoutNotices }) {
  const { issuer, appName, clients, oidc, keyRing, browser, notices, mac, origins, audit, withRequester } = deps;
  const invalid = (set: PageSet, message: string) => htmlPage(set, 400, messagePage(appName, "Invalid request", message));

  async function logoutEndpoint({ request, set, body, requester }: { request: Request; set: PageSet; body: unknown; requester: ClientInfo }) {
    const { params, problems } = requestParams(request.url, request.method === "POST" ? body : undefined);
    if (problems[0]) return invalid(set, `invalid_request: ${problems[0].message}`);
    const hint = params.id_token_hint ? verifyIdTokenHint(params.id_token_hint, keyRing, issuer) : undefined;
    if (params.id_token_hint && !hint) return invalid(set, "The id_token_hint was not issued by this server.");
    const clientId = hint?.aud ?? params.client_id;
    const client = clientId ? await clients.find(clientId) : undefined;
    const target = params.post_logout_redirect_uri;
    if (target && client && !client.postLogoutRedirectUris.includes(target))
      return invalid(set, "The post_logout_redirect_uri is not registered for this application, so Latchkey will not send you there.");
    const user = await browser.current(request);
    const confirming = request.method === "POST" && params.confirm === "yes" && user !== null;
    const confirmed = confirming && user !== null && sameOriginPost(request, origins) && params.csrf !== undefined && safeEqual(params.csrf, mac("logout", user.sessionId));
    // A confirmation that is not this browser's own form (no or another token, another site) is refused, as every page form is.
    if (confirming && !confirmed) return htmlPage(set, 403, messagePage(appName, "Sign-out refused", "This form expired or came from another site."));
    if (user && !confirmed && (!hint || hint.sub !== user.userId)) {
      const { csrf: _csrf, confirm: _confirm, ...fields } = params;
      return htmlPage(set, 200, logoutConfirmPage({ appName, fields: fields as Record<string, string>, csrf: mac("logout", user.sessionId), username: user.username }));
    }
    const userId = hint?.sub ?? user?.userId;
    const users = [...new Set([userId, user?.userId].filter((id) => id !== undefined))];
    // The clients this user signed in to from this browser, and the grants ended here, hear of it (back-channel).
    const ended = await notices.around(users, async () => {
      const count = userId && client ? await oidc.endGrants(userId, client.clientId, hint?.sid) : 0;
      if (user) await browser.signOut(request, set.headers);
      return count;
    });
    if (userId) await audit.record({ event: "oidc_logout", userId, ...requester, detail: { client_id: client?.clientId ?? null, grants_ended: ended, browser_signed_out: user !== null } });
    if (target && client) return seeOther(set, withParams(target, { state: params.state }), 303);
    return htmlPage(set, 200, messagePage(appName, "Signed out", "You are signed out of Latchkey."));
  }

  return new Elysia({ prefix: OIDC_PREFIX })
    .use(withRequester)
    .get("/logout", logoutEndpoint, { detail: PAGE_DETAIL })
    .post("/logout", logoutEndpoint, { parse: ["urlencoded"], detail: PAGE_DETAIL });
}
