import { Elysia } from "elysia";
import { ApiError, validationFailed } from "../../errors";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import { ADMIN_ROLE } from "../admin/accounts";
import type { Actor, AdminService } from "../admin/service";
import { AUDIT_EVENTS, type AuditLog } from "../audit/service";
import type { BrowserSessionPrincipal } from "../sessions/service";
import type { UserService } from "../users/service";
import { signedInForm, type SignedInForms } from "./account-routes";
import { AdminPage, type AdminView } from "./admin";
import { MessagePage } from "./layout";
import { field, htmlPage, seeOther, type PageSet } from "./respond";

const PAGE_SIZE = 25;
const AUDIT_PAGE_SIZE = 50;

const NOTICES: Record<string, string> = {
  created: "User created.",
  disabled: "User disabled: their sessions ended and their API keys are deleted.",
  enabled: "User enabled.",
  roles: "Roles saved.",
  email: "Email saved.",
  metadata: "Metadata saved.",
  mfa: "Second factors removed: the next sign-in needs the password only.",
  password: "Password reset: the user's sessions ended.",
  deleted: "User deleted.",
};

/** Paths of the admin page's forms (their bodies are HTML forms). */
export const ADMIN_FORM_PATHS = [
  "/admin/users",
  "/admin/users/status",
  "/admin/users/roles",
  "/admin/users/email",
  "/admin/users/metadata",
  "/admin/users/mfa",
  "/admin/users/password",
  "/admin/users/delete",
] as const;

const roleList = (raw: string | undefined) =>
  (raw ?? "")
    .split(",")
    .map((role) => role.trim())
    .filter(Boolean);

/** The admin pages' gate (users here, applications in applications.tsx): the 403 page, and a signed-in form by an admin. */
export function adminGate(deps: SignedInForms) {
  const signedIn = signedInForm(deps);
  const notAdmin = (set: PageSet) =>
    htmlPage(set, 403, String(<MessagePage appName={deps.appName} title="Access denied" message="This page needs the admin role." link={{ href: "/account", text: "Your account" }} />));

  /** The gate of every admin form: a signed-in form, by an admin. */
  async function adminForm(request: Request, body: unknown, set: PageSet, form: string): Promise<BrowserSessionPrincipal | string> {
    const principal = await signedIn(request, body, set, form);
    if (typeof principal === "string") return principal;
    return principal.roles.includes(ADMIN_ROLE) ? principal : notAdmin(set);
  }

  return { notAdmin, adminForm };
}

export interface AdminPageDeps extends SignedInForms {
  admin: AdminService;
  users: UserService;
  audit: AuditLog;
  withRequester: RequesterPlugin;
}

/**
 * GET /admin (role admin) and its forms: everything the admin API and the CLI do for users (search, page, create,
 * disable/enable, roles, reset password, delete, under the same last-admin rule), and the audit log by user and event.
 */
export function adminPages(deps: AdminPageDeps) {
  const { appName, browser, forms, admin, users, audit, withRequester } = deps;
  const { notAdmin, adminForm } = adminGate(deps);

  const actorOf = (principal: BrowserSessionPrincipal, requester: ClientInfo): Actor => ({
    userId: principal.userId,
    username: principal.username,
    sessionId: principal.sessionId,
    ...requester,
  });

  async function render(set: PageSet, status: number, principal: BrowserSessionPrincipal, query: Record<string, string | undefined>, extra: Partial<AdminView> = {}) {
    const search = query.q ?? "";
    const auditUser = query.audit_user ?? "";
    const auditEvent = AUDIT_EVENTS.includes(query.audit_event as never) ? query.audit_event! : "";
    let users_: AdminView["users"] = [];
    let nextUsers: string | null = null;
    let events: AdminView["events"] = [];
    let nextEvents: string | null = null;
    let error = extra.error;
    try {
      const page = await admin.list({ query: search || undefined, limit: String(PAGE_SIZE), cursor: query.cursor || undefined });
      users_ = page.users;
      if (page.next_cursor) nextUsers = new URLSearchParams({ q: search, cursor: page.next_cursor }).toString();
      const auditCursor = /^\d{1,15}$/.test(query.audit_cursor ?? "") ? Number(query.audit_cursor) : undefined;
      // Like the audit API: a user is an id (events outlive a deleted user), a username or an email.
      const userId = auditUser ? ((await users.findByLogin(auditUser))?.id ?? auditUser) : undefined;
      const trail = await audit.list({ userId, event: auditEvent || undefined, cursor: auditCursor, limit: AUDIT_PAGE_SIZE });
      events = trail.events;
      if (trail.next_cursor)
        nextEvents = new URLSearchParams({ q: search, audit_user: auditUser, audit_event: auditEvent, audit_cursor: trail.next_cursor }).toString();
    } catch (caught) {
      if (!(caught instanceof ApiError)) throw caught;
      error = caught.details?.[0]?.message ?? caught.message;
      status = caught.status;
    }
    const named = await Promise.all(
      [...new Set(events.map((event) => event.user_id).filter((id): id is string => id !== null))].map(async (id) => [id, (await users.findById(id))?.username] as const),
    );
    const view: AdminView = {
      appName,
      username: principal.username,
      csrf: (form) => forms.issue(form, principal.sessionId),
      query: search,
      users: users_,
      nextUsers,
      auditUser,
      auditEvent,
      events,
      eventNames: AUDIT_EVENTS,
      nextEvents,
      usernames: new Map(named.flatMap(([id, username]) => (username === undefined ? [] : [[id, username] as const]))),
      ...extra,
      error,
    };
    return htmlPage(set, status, String(<AdminPage {...view} />));
  }

  /** Runs an admin action; an expected failure (last admin, taken name, weak password) is shown on the page. */
  async function act(set: PageSet, principal: BrowserSessionPrincipal, done: string, action: () => unknown) {
    try {
      await action();
      return seeOther(set, `/admin?done=${done}`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      return render(set, error.status, principal, {}, { error: error.details?.[0]?.message ?? error.message });
    }
  }

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    .get(
      "/admin",
      async ({ request, query, set }) => {
        const principal = await browser.current(request);
        if (!principal) return seeOther(set, "/login?rd=%2Fadmin", 302);
        if (!principal.roles.includes(ADMIN_ROLE)) return notAdmin(set);
        const text = (name: string) => (typeof query[name] === "string" ? (query[name] as string).slice(0, 254) : undefined);
        return render(set, 200, principal, { q: text("q"), cursor: text("cursor"), audit_user: text("audit_user"), audit_event: text("audit_event"), audit_cursor: text("audit_cursor") }, {
          notice: NOTICES[text("done") ?? ""],
        });
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/users",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "admin-create");
        if (typeof principal === "string") return principal;
        const email = field(body, "email")?.trim();
        return act(set, principal, "created", () =>
          admin.create(
            { username: field(body, "username")?.trim() ?? "", password: field(body, "password") ?? "", email: email || undefined, roles: roleList(field(body, "roles")) },
            actorOf(principal, requester),
          ),
        );
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/users/status",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "admin-status");
        if (typeof principal === "string") return principal;
        const disabled = field(body, "disabled") === "true";
        return act(set, principal, disabled ? "disabled" : "enabled", () => admin.update(field(body, "id") ?? "", { disabled }, actorOf(principal, requester)));
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/users/roles",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "admin-roles");
        if (typeof principal === "string") return principal;
        return act(set, principal, "roles", () => admin.update(field(body, "id") ?? "", { roles: roleList(field(body, "roles")) }, actorOf(principal, requester)));
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/users/email",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "admin-email");
        if (typeof principal === "string") return principal;
        const email = field(body, "email")?.trim();
        const patch = { email: email || null, emailVerified: field(body, "email_verified") === "true" };
        return act(set, principal, "email", () => admin.update(field(body, "id") ?? "", patch, actorOf(principal, requester)));
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/users/metadata",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "admin-metadata");
        if (typeof principal === "string") return principal;
        return act(set, principal, "metadata", () => {
          let metadata: unknown;
          try {
            metadata = JSON.parse(field(body, "metadata") ?? "");
          } catch {
            throw validationFailed([{ field: "metadata", message: "Must be a JSON object, e.g. {\"name\": \"Alice\"}." }]);
          }
          return admin.update(field(body, "id") ?? "", { metadata }, actorOf(principal, requester));
        });
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/users/mfa",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "admin-mfa");
        if (typeof principal === "string") return principal;
        return act(set, principal, "mfa", () => admin.resetSecondFactors(field(body, "id") ?? "", actorOf(principal, requester)));
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/users/password",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "admin-password");
        if (typeof principal === "string") return principal;
        return act(set, principal, "password", () => admin.resetPassword(field(body, "id") ?? "", field(body, "password") ?? "", actorOf(principal, requester)));
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/users/delete",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "admin-delete");
        if (typeof principal === "string") return principal;
        return act(set, principal, "deleted", () => admin.delete(field(body, "id") ?? "", actorOf(principal, requester)));
      },
      { detail: { hide: true } },
    );
}
