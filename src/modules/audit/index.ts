import { Elysia, t } from "elysia";
import { ADMIN_PREFIX, AUTH_PREFIX } from "../../http/routes";
import { validationFailed } from "../../errors";
import { pageLimit, PageLimitQuery } from "../../http/pagination";
import type { authGuard } from "../auth/guard";
import { JsonInteger, SESSION_SECURITY, PlainText } from "../../http/schema";
import { ADMIN_GUARD, errorResponses, INVALID_INPUT, SESSION_GUARD } from "../../http/error-catalogue";
import type { UserService } from "../users/service";
import type { AuditLog } from "./service";

const AuditEvent = t.Object({
  id: JsonInteger(),
  time: t.String({ format: "date-time" }),
  event: t.String({ description: "e.g. login_succeeded, login_failed, password_changed, admin_user_updated" }),
  user_id: t.Nullable(t.String({ description: "The account the event concerns (null for an unknown name)" })),
  ip: t.Nullable(t.String()),
  user_agent: t.Nullable(t.String()),
  detail: t.Record(t.String(), t.Unknown(), { description: "Names, ids and reasons; never a password or a token" }),
});

const AuditPage = t.Object({
  events: t.Array(AuditEvent),
  next_cursor: t.Nullable(t.String({ description: "Pass as `cursor` for the next (older) page; null on the last page" })),
});

const pageFields = {
  event: t.Optional(PlainText({ maxLength: 64, description: "Only this event name" })),
  cursor: t.Optional(PlainText({ maxLength: 20, description: "next_cursor of the previous page" })),
  limit: PageLimitQuery,
};

function cursorOf(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw validationFailed([{ field: "cursor", message: "Must be a next_cursor from a previous page." }]);
  return Number(raw);
}

/** The security trail, newest first: all of it for admins, their own events for everyone signed in. */
export function auditRoutes(deps: { audit: AuditLog; users: UserService; guard: ReturnType<typeof authGuard> }) {
  const { audit, users, guard } = deps;

  return new Elysia({ tags: ["audit"] })
    .use(guard)
    .get(
      `${ADMIN_PREFIX}/audit`,
      async ({ query }) => {
        // `user` is an id (events outlive a deleted user) or, for convenience, a current username or email.
        const userId = query.user === undefined ? undefined : ((await users.findByLogin(query.user))?.id ?? query.user);
        return audit.list({ userId, event: query.event, cursor: cursorOf(query.cursor), limit: pageLimit(query.limit) });
      },
      {
        admin: true,
        query: t.Object({
          user: t.Optional(PlainText({ maxLength: 254, description: "A user id, username or email" })),
          ...pageFields,
        }),
        response: { 200: AuditPage, ...errorResponses(ADMIN_GUARD, INVALID_INPUT) },
        detail: { summary: "Audit events of every user (admin), newest first, filtered by user and event", security: SESSION_SECURITY },
      },
    )
    .get(
      `${AUTH_PREFIX}/events`,
      async ({ principal, query }) => {
        const page = await audit.list({ userId: principal.userId, event: query.event, cursor: cursorOf(query.cursor), limit: pageLimit(query.limit) });
        // An admin's change to this account is shown, but not the admin's own address and browser.
        const events = page.events.map((event) =>
          event.detail.actor_id !== undefined && event.detail.actor_id !== principal.userId ? { ...event, ip: null, user_agent: null } : event,
        );
        return { events, next_cursor: page.next_cursor };
      },
      {
        auth: true,
        query: t.Object(pageFields),
        response: { 200: AuditPage, ...errorResponses(SESSION_GUARD, INVALID_INPUT) },
        detail: { summary: "Your own security events (sign-ins, password changes, admin changes to your account), newest first", security: SESSION_SECURITY },
      },
    );
}
