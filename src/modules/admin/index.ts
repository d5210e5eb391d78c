import { Elysia } from "elysia";
import { ADMIN_PREFIX } from "../../http/routes";
import { strictBodies } from "../../http/strict-body";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import type { authGuard } from "../auth/guard";
import type { SessionPrincipal } from "../sessions/service";
import { MessageBody } from "../auth/model";
import { NoContent, SESSION_SECURITY } from "../../http/schema";
import { ADMIN_GUARD, BODY_ERRORS, CSRF_CHECK, errorResponses, INVALID_INPUT } from "../../http/error-catalogue";
import { AdminUser, CreatedUser, CreateUserBody, ListUsersQuery, PasskeyResetResponse, PatchUserBody, ResetPasswordBody, UserPage, UserParams } from "./model";
import type { PasskeyFallbacks } from "../auth/passkey-fallbacks";
import type { Actor, AdminService } from "./service";
import { JSON_BODY } from "../../http/body";

/** User administration for sessions whose user has the `admin` role (403 forbidden otherwise, before the body is read). */
export function adminRoutes(deps: { admin: AdminService; guard: ReturnType<typeof authGuard>; withRequester: RequesterPlugin; fallbacks: PasskeyFallbacks }) {
  const { admin, guard, withRequester, fallbacks } = deps;
  const setupOf = (setup: { link: string; expiresAt: Date }) => ({ link: setup.link, expires_at: setup.expiresAt.toISOString() });
  const actor = (principal: SessionPrincipal, requester: ClientInfo): Actor => ({
    userId: principal.userId,
    username: principal.username,
    sessionId: principal.sessionId,
    ...requester,
  });

  return new Elysia({ prefix: ADMIN_PREFIX, tags: ["admin"] })
    .use(withRequester)
    .use(guard)
    .use(strictBodies)
    .get("/users", ({ query }) => admin.list(query), {
      admin: true,
      query: ListUsersQuery,
      response: { 200: UserPage, ...errorResponses(ADMIN_GUARD, INVALID_INPUT) },
      detail: { summary: "List users, oldest first, optionally filtered by a username or email substring (paginated)", security: SESSION_SECURITY },
    })
    .get("/users/:id", ({ params }) => admin.get(params.id), {
      admin: true,
      params: UserParams,
      response: { 200: AdminUser, ...errorResponses(ADMIN_GUARD, { 404: ["user_not_found"] }) },
      detail: { summary: "One user (404 user_not_found)", security: SESSION_SECURITY },
    })
    .post(
      "/users",
      async ({ principal, body, set, requester }) => {
        const created = await admin.create(body, actor(principal, requester));
        set.status = 201;
        if (body.passkey_first !== true) return created;
        const setup = await fallbacks.issueSetupLink(created, "new_account", { actor_id: principal.userId, actor: principal.username }, requester);
        return { ...created, passkey_setup: setupOf(setup) };
      },
      {
        admin: true,
        strictBody: CreateUserBody,
        body: CreateUserBody,
        parse: JSON_BODY,
        response: {
          201: CreatedUser,
          ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS, { 409: ["username_taken", "email_taken"], 422: ["weak_password"] }),
        },
        detail: {
          summary: "Create a user (works while registration is closed)",
          description:
            "With `passkey_first: true` instead of `password` the account has none and sets up a passkey first: `passkey_setup.link` signs it in once (for 24 hours) and opens the page that adds a passkey. " +
            "Only the link's hash is kept; a new link (a reset) replaces it. Audited as `admin_user_created` and `passkey_setup_link_created`.",
          security: SESSION_SECURITY,
        },
      },
    )
    .post(
      "/users/:id/passkeys/reset",
      async ({ principal, params, requester }) => {
        const reset = await fallbacks.resetPasskeys(await admin.findUser(params.id), actor(principal, requester));
        return { passkey_setup: setupOf(reset), passkeys_deleted: reset.passkeysDeleted, sessions_ended: reset.sessionsEnded };
      },
      {
        admin: true,
        params: UserParams,
        response: { 200: PasskeyResetResponse, ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["user_not_found"] }) },
        detail: {
          summary: "Reset a user's passkeys (a lost device): every passkey deleted, every session ended, a setup link made",
          description:
            "The link signs the user in once (for 24 hours) and opens the page that adds a new passkey; hand it to them. A password, if the account has one, stays. Audited as `passkeys_reset` and `passkey_setup_link_created`.",
          security: SESSION_SECURITY,
        },
      },
    )
    .patch(
      "/users/:id",
      ({ principal, params, body, requester }) =>
        admin.update(
          params.id,
          { disabled: body.disabled, roles: body.roles, email: body.email, emailVerified: body.email_verified, metadata: body.metadata },
          actor(principal, requester),
        ),
      {
        admin: true,
        params: UserParams,
        strictBody: PatchUserBody,
        body: PatchUserBody,
        parse: JSON_BODY,
        response: {
          200: AdminUser,
          ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["user_not_found"], 409: ["last_admin", "email_taken"] }),
        },
        detail: {
          summary: "Change a user's disabled flag, roles, email, email_verified or metadata",
          description:
            "Only the fields present change. `disabled: true` ends every session of the user and deletes its API keys at once (enabling it again brings none back). " +
            "The last enabled admin cannot be disabled or lose the admin role (409 last_admin). A taken email is 409 email_taken.",
          security: SESSION_SECURITY,
        },
      },
    )
    .delete(
      "/users/:id",
      async ({ principal, params, set, requester }) => {
        await admin.delete(params.id, actor(principal, requester));
        set.status = 204;
      },
      {
        admin: true,
        params: UserParams,
        response: {
          204: NoContent("The user is deleted with its sessions and API keys"),
          ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["user_not_found"], 409: ["last_admin"] }),
        },
        detail: {
          summary: "Delete a user with its sessions and API keys (the last admin cannot be deleted: 409 last_admin)",
          security: SESSION_SECURITY,
        },
      },
    )
    .post(
      "/users/:id/password",
      async ({ principal, params, body, requester }) => {
        const ended = await admin.resetPassword(params.id, body.new_password, actor(principal, requester));
        return { message: `Password set; ${ended} session(s) of the user ended.` };
      },
      {
        admin: true,
        params: UserParams,
        strictBody: ResetPasswordBody,
        body: ResetPasswordBody,
        parse: JSON_BODY,
        response: {
          200: MessageBody,
          ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["user_not_found"], 422: ["weak_password"] }),
        },
        detail: {
          summary: "Set a user's password for them (a forgotten password); every session of the user ends",
          description: "The same strength rules as any password. API keys are kept. Audited as admin_user_updated with `changed: [\"password\"]`.",
          security: SESSION_SECURITY,
        },
      },
    )
    .delete(
      "/users/:id/mfa",
      async ({ principal, params, set, requester }) => {
        await admin.resetSecondFactors(params.id, actor(principal, requester));
        set.status = 204;
      },
      {
        admin: true,
        params: UserParams,
        response: {
          204: NoContent("The user's authenticator and recovery codes are removed"),
          ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["user_not_found"] }),
        },
        detail: {
          summary: "Reset a user's second factors (TOTP and recovery codes), audited as mfa_reset",
          description: "For a user who lost their authenticator. With `MFA_REQUIRED_ROLES`, a user with such a role enrols again at the next sign-in.",
          security: SESSION_SECURITY,
        },
      },
    );
}
