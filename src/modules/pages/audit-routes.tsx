import { Elysia } from "elysia";
import { AUDIT_EVENTS, type AuditLog } from "../audit/service";
import type { UserService } from "../users/service";
import { AuditPage } from "./admin";
import { adminGate, queryText } from "./admin-routes";
import { htmlPage } from "./respond";
import type { SignedInForms } from "./signed-in-forms";

export const AUDIT_PAGE_PATH = "/admin/audit";
const AUDIT_PAGE_SIZE = 50;

/** The audit log in sentences (role admin): filtered by user and event, newest first, a page at a time. */
export function auditPages(deps: SignedInForms & { audit: AuditLog; users: UserService }) {
  const { audit, users } = deps;
  const { adminPage, frame } = adminGate(deps);

  /** Usernames of these events' users who still exist, by id. */
  async function usernamesOf(events: { user_id: string | null }[]) {
    const ids = [...new Set(events.map((event) => event.user_id).filter((id): id is string => id !== null))];
    const named = await Promise.all(ids.map(async (id) => [id, (await users.findById(id))?.username] as const));
    return new Map(named.flatMap(([id, username]) => (username === undefined ? [] : [[id, username] as const])));
  }

  return new Elysia({ tags: ["pages"] })
    .get(
      AUDIT_PAGE_PATH,
      async ({ request, query, set }) => {
        const principal = await adminPage(request, set, AUDIT_PAGE_PATH);
        if (typeof principal === "string") return principal;
        const who = queryText(query, "user");
        const event = AUDIT_EVENTS.includes(queryText(query, "event") as never) ? queryText(query, "event") : "";
        const cursor = /^\d{1,15}$/.test(queryText(query, "cursor")) ? Number(queryText(query, "cursor")) : undefined;
        // Like the audit API: a user is an id (events outlive a deleted user), a username or an email.
        const userId = who ? ((await users.findByLogin(who))?.id ?? who) : undefined;
        const trail = await audit.list({ userId, event: event || undefined, cursor, limit: AUDIT_PAGE_SIZE });
        const filters = { user: who, event };
        return htmlPage(
          set,
          200,
          String(
            <AuditPage
              {...frame(request, set, principal)}
              user={who}
              event={event}
              events={trail.events}
              usernames={await usernamesOf(trail.events)}
              eventNames={AUDIT_EVENTS}
              next={trail.next_cursor ? new URLSearchParams({ ...filters, cursor: trail.next_cursor }).toString() : null}
              first={cursor !== undefined ? new URLSearchParams(filters).toString() : null}
            />,
          ),
        );
      },
      { detail: { hide: true } },
    );
}
