import { Elysia, t } from "elysia";
import { AUTH_PREFIX } from "../../http/routes";
import type { RequesterPlugin } from "../../http/client-ip";
import type { AuditLog } from "../audit/service";
import type { authGuard } from "../auth/guard";
import { NoContent, SESSION_SECURITY, PlainText } from "../../http/schema";
import { BODY_ERRORS, CSRF_CHECK, errorResponses, SESSION_GUARD } from "../../http/error-catalogue";
import type { SessionService } from "./service";

const SessionItem = t.Object({
  session_id: t.String(),
  current: t.Boolean({ description: "The session making this request" }),
  created_at: t.String({ format: "date-time" }),
  last_seen_at: t.String({ format: "date-time", description: "Updated at most once a minute" }),
  ip: t.Nullable(t.String()),
  user_agent: t.Nullable(t.String()),
});

/** The signed-in user's own sessions: see them, end one. */
export function sessionRoutes(deps: {
  sessions: SessionService;
  guard: ReturnType<typeof authGuard>;
  audit: AuditLog;
  withRequester: RequesterPlugin;
}) {
  const { sessions, guard, audit, withRequester } = deps;

  return new Elysia({ prefix: AUTH_PREFIX, tags: ["sessions"] })
    .use(withRequester)
    .use(guard)
    .get(
      "/sessions",
      async ({ principal }) =>
        (await sessions.list(principal.userId)).map((session) => ({
          session_id: session.id,
          current: session.id === principal.sessionId,
          created_at: session.createdAt.toISOString(),
          last_seen_at: session.lastSeenAt.toISOString(),
          ip: session.ip,
          user_agent: session.userAgent,
        })),
      {
        auth: true,
        response: { 200: t.Array(SessionItem), ...errorResponses(SESSION_GUARD) },
        detail: { summary: "Your live sessions", security: SESSION_SECURITY },
      },
    )
    .delete(
      "/sessions/:id",
      async ({ principal, params, set, requester }) => {
        await sessions.revokeOwned(principal.userId, params.id);
        await audit.record({ event: "session_revoked", userId: principal.userId, ...requester, detail: { session_id: params.id } });
        set.status = 204;
      },
      {
        auth: true,
        params: t.Object({ id: PlainText() }),
        response: {
          204: NoContent("The session has ended: its refresh token and access tokens stop working at once"),
          ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["session_not_found"] }),
        },
        detail: { summary: "End one of your sessions (404 session_not_found for anyone else's)", security: SESSION_SECURITY },
      },
    );
}
