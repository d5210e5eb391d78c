import { Elysia, t } from "elysia";
import { JSON_BODY } from "../../http/body";
import type { RequesterPlugin } from "../../http/client-ip";
import { ADMIN_GUARD, BODY_ERRORS, CSRF_CHECK, errorResponses, SECRET_CHECK } from "../../http/error-catalogue";
import { ADMIN_PREFIX, AUTH_PREFIX } from "../../http/routes";
import type { Delivery } from "../../delivery";
import type { rateLimitPlugin } from "../../limits/plugin";
import { PendingVerificationResponse, RegisterBody, TokenResponse } from "../auth/model";
import type { AuthService } from "../auth/service";
import { registered } from "../auth";
import { NoContent, SESSION_SECURITY } from "../../http/schema";
import { strictBodies } from "../../http/strict-body";
import type { authGuard } from "../auth/guard";
import { CreatedInvitation, CreateInvitationBody, InvitationLink, InvitationList, InvitationParams, InvitationToken, toInvitationBody } from "./model";
import type { Invitations } from "./service";

/** The admin API of invitations (issue 24): create, list, revoke; for sessions with the `admin` role. */
export function invitationAdminRoutes(deps: { invitations: Invitations; guard: ReturnType<typeof authGuard>; withRequester: RequesterPlugin }) {
  const { invitations, guard, withRequester } = deps;
  return new Elysia({ prefix: ADMIN_PREFIX, tags: ["admin"] })
    .use(withRequester)
    .use(guard)
    .use(strictBodies)
    .get("/invitations", async () => ({ invitations: (await invitations.list()).map((row) => toInvitationBody(row)) }), {
      admin: true,
      response: { 200: InvitationList, ...errorResponses(ADMIN_GUARD) },
      detail: { summary: "List invitations, newest first, with their state (pending, used n of m, expired, revoked)", security: SESSION_SECURITY },
    })
    .post(
      "/invitations",
      async ({ principal, body, set, requester }) => {
        const { invitation, link } = await invitations.create(
          { email: body.email, roles: body.roles, expiresIn: body.expires_in, maxUses: body.max_uses },
          { ...requester, userId: principal.userId, username: principal.username, sessionId: principal.sessionId },
        );
        set.status = 201;
        return { invitation: toInvitationBody(invitation), link };
      },
      {
        admin: true,
        strictBody: CreateInvitationBody,
        body: CreateInvitationBody,
        parse: JSON_BODY,
        response: { 201: CreatedInvitation, ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS, { 409: ["email_taken"] }) },
        detail: {
          summary: "Create an invitation link (works while registration is closed)",
          description:
            "The link (`/invite/<token>`) opens a sign-up page that makes an account with the invitation's roles, up to `max_uses` times until `expires_in` has passed. " +
            "With `email`, the account gets that address, and the link is mailed to it when mail is on (`mailed: true`; the address then starts verified). " +
            "An address that already has an account is 409 email_taken. Audited as invitation_created.",
          security: SESSION_SECURITY,
        },
      },
    )
    .delete(
      "/invitations/:id",
      async ({ principal, params, set, requester }) => {
        await invitations.revoke(params.id, { ...requester, userId: principal.userId, username: principal.username, sessionId: principal.sessionId });
        set.status = 204;
      },
      {
        admin: true,
        params: InvitationParams,
        response: {
          204: NoContent("The invitation is revoked: its link opens the revoked page (410 invitation_revoked)"),
          ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["invitation_not_found"] }),
        },
        detail: {
          summary: "Revoke an invitation (accounts already made with it stay); revoking it again is a no-op",
          description: "Audited as invitation_revoked.",
          security: SESSION_SECURITY,
        },
      },
    );
}

/** A dead link's codes: unknown (404), or expired, spent or revoked (410). */
const LINK_ERRORS = { 404: ["invitation_not_found"], 410: ["invitation_expired", "invitation_spent", "invitation_revoked"] } as const;

/**
 * An invitation link for API clients (an app's own sign-up screen): what the link offers, and the registration
 * it opens while ALLOW_REGISTRATION=false. The token is a secret: both routes are behind the per-address limit.
 */
export function invitationRoutes(deps: {
  invitations: Invitations;
  auth: AuthService;
  delivery: Delivery;
  rateLimit: ReturnType<typeof rateLimitPlugin>;
  withRequester: RequesterPlugin;
}) {
  const { invitations, auth, delivery, rateLimit, withRequester } = deps;
  return new Elysia({ prefix: AUTH_PREFIX, tags: ["auth"] })
    .use(withRequester)
    .use(strictBodies)
    .use(rateLimit)
    .get(
      "/invitations/:token",
      async ({ params }) => {
        const invitation = await invitations.usable(params.token);
        return { email: invitation.email, roles: invitation.roles, expires_at: invitation.expiresAt.toISOString(), uses_left: invitation.maxUses - invitation.uses };
      },
      {
        secretCheck: true,
        params: InvitationToken,
        response: { 200: InvitationLink, ...errorResponses(SECRET_CHECK, LINK_ERRORS) },
        detail: { summary: "What an invitation link offers, while it is usable (404 unknown; 410 expired, spent or revoked)" },
      },
    )
    .post(
      "/invitations/:token/register",
      async ({ params, body, set, cookie, requester }) => {
        const invitation = await invitations.usable(params.token);
        return registered(delivery, { set, cookie }, await auth.register(body, requester, invitations.invited(invitation)));
      },
      {
        secretCheck: "sign-in",
        params: InvitationToken,
        strictBody: RegisterBody,
        body: RegisterBody,
        parse: JSON_BODY,
        response: {
          201: t.Union([TokenResponse, PendingVerificationResponse]),
          ...errorResponses(BODY_ERRORS, SECRET_CHECK, CSRF_CHECK, LINK_ERRORS, { 409: ["username_taken", "email_taken"], 422: ["weak_password"] }),
        },
        detail: {
          summary: "Create an account with an invitation link, and sign in (works while registration is closed)",
          description:
            "The same rules as POST /register; the account gets the invitation's roles, and its address when the invitation names one (`email` is then ignored; verified when the link was mailed to it). " +
            "Each account counts one use, atomically: two sign-ups on the last use, one gets it, the other 410 invitation_spent. Audited as user_registered and invitation_used.",
        },
      },
    );
}
