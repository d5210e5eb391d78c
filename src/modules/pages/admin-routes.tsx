import { Elysia } from "elysia";
import { ApiError, validationFailed } from "../../errors";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import { commaList } from "../../lib/lists";
import { ADMIN_ROLE } from "../admin/accounts";
import type { Actor, AdminService } from "../admin/service";
import type { AuditLog } from "../audit/service";
import type { MfaService } from "../mfa/service";
import type { PasskeyFallbacks } from "../auth/passkey-fallbacks";
import type { BrowserSessionPrincipal, SessionService } from "../sessions/service";
import type { UserService } from "../users/service";
import { csrfFor, problemOf, signedInForm, type SignedInForms } from "./signed-in-forms";
import { CONFIRMATIONS, ConfirmPage, NewUserPage, UserListPage, UserPage, type AdminFrame, type Confirmation } from "./admin";
import type { Flash } from "./flash";
import { ForbiddenPage } from "./layout";
import { field, htmlPage, seeOther, type PageSet } from "./respond";

const PAGE_SIZE = 25;
/** How many of a user's latest events their page shows. */
const USER_EVENTS = 10;

/** Paths of the admin pages' forms (their bodies are HTML forms). */
export const ADMIN_FORM_PATHS = [
  "/admin/users",
  "/admin/users/status",
  "/admin/users/roles",
  "/admin/users/email",
  "/admin/users/metadata",
  "/admin/users/mfa",
  "/admin/users/passkeys",
  "/admin/users/password",
  "/admin/users/delete",
] as const;

/** The admin pages besides /admin (GET). */
export const ADMIN_PAGE_PATHS = ["/admin/users/new", "/admin/users/:id", "/admin/users/:id/:confirm"] as const;

/**
 * An admin's change to their own account that the pages refuse (a page's message, not an API error): locking
 * themself out is left to another admin, or to the API and CLI, which ask no confirmation of anyone.
 */
class NotOnYourself extends Error {
  constructor(what: string) {
    super(`You cannot ${what} your own account from this page: ask another admin.`);
  }
}

/** The admin pages' gate (users here, the audit log, applications, invitations): the 403 page, a signed-in form by an admin, and the pages' frame. */
export function adminGate(deps: SignedInForms) {
  const signedIn = signedInForm(deps);
  const notAdmin = (set: PageSet, principal: BrowserSessionPrincipal) =>
    htmlPage(
      set,
      403,
      String(<ForbiddenPage appName={deps.appName} username={principal.username} message="This page needs the admin role." home={{ href: "/account", text: "Your account" }} />),
    );

  /** The gate of every admin form: a signed-in form, by an admin. */
  async function adminForm(request: Request, body: unknown, set: PageSet, form: string): Promise<BrowserSessionPrincipal | string> {
    const principal = await signedIn(request, body, set, form);
    if (typeof principal === "string") return principal;
    return principal.roles.includes(ADMIN_ROLE) ? principal : notAdmin(set, principal);
  }

  /** The gate of every admin page (GET): to sign-in and back, or the 403 page. */
  async function adminPage(request: Request, set: PageSet, path: string): Promise<BrowserSessionPrincipal | string> {
    const principal = await deps.browser.current(request);
    if (!principal) return seeOther(set, `/login?rd=${encodeURIComponent(path)}`, 302);
    return principal.roles.includes(ADMIN_ROLE) ? principal : notAdmin(set, principal);
  }

  const csrfOf = csrfFor(deps.forms);

  /** What every admin page shows around its content: the app, who is signed in, the forms' tokens, the message. */
  const frame = (request: Request, set: PageSet, principal: BrowserSessionPrincipal): AdminFrame => ({
    appName: deps.appName,
    username: principal.username,
    csrf: csrfOf(principal),
    flash: deps.flashes.take(request, set, principal.sessionId),
  });

  return { adminForm, adminPage, frame, csrfOf };
}

/** A query parameter as typed (at most 254 characters), or "". */
export const queryText = (query: Record<string, unknown>, name: string) => (typeof query[name] === "string" ? (query[name] as string).slice(0, 254) : "");

/** The admin behind a page's form, as the services audit and re-check them (users here, invitations). */
export const actorOf = (principal: BrowserSessionPrincipal, requester: ClientInfo): Actor => ({
  userId: principal.userId,
  username: principal.username,
  sessionId: principal.sessionId,
  ...requester,
});

export interface AdminPageDeps extends SignedInForms {
  admin: AdminService;
  users: UserService;
  sessions: SessionService;
  mfa: MfaService;
  audit: AuditLog;
  withRequester: RequesterPlugin;
  /** Reset passkeys (a lost device): the setup link it makes. */
  fallbacks: PasskeyFallbacks;
}

/**
 * The user pages (role admin): the list (search, paging), a page per user, the create form, and confirmation
 * pages for what cannot be undone or locks someone out. Everything the admin API and
 * the CLI do for users, under the same last-admin rule; an admin cannot disable, delete or demote themself here.
 */
export function adminPages(deps: AdminPageDeps) {
  const { flashes, admin, users, sessions, mfa, audit, withRequester } = deps;
  const { adminForm, adminPage, frame } = adminGate(deps);

  /** The user `id`, or undefined (a 404 page). */
  async function userOf(id: string) {
    try {
      return await admin.get(id);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  /**
   * Runs an admin form's action, then goes back (POST/redirect/GET) to `where` with its message beside the form;
   * a refusal (last admin, taken name, weak password) goes back to `failure` with the reason.
   */
  async function act(request: Request, set: PageSet, principal: BrowserSessionPrincipal, form: string, where: { done: string; failure: string }, action: () => Promise<string>) {
    let flash: Flash;
    let location: string;
    try {
      flash = { form, kind: "notice", text: await action() };
      location = where.done;
    } catch (error) {
      if (!(error instanceof ApiError) && !(error instanceof NotOnYourself)) throw error;
      flash = { form, kind: "error", text: error instanceof ApiError ? problemOf(error) : error.message };
      location = where.failure;
    }
    flashes.put(request, set, principal.sessionId, flash);
    return seeOther(set, location);
  }

  /**
   * One form about the user its body names (`id`): the admin gate (`form`: the form's CSRF name, which may depend
   * on what it asks), then `action`, then back to `where(id)` with its message (act).
   */
  const userForm = (
    path: string,
    form: string | ((body: unknown) => string),
    where: (id: string) => { done: string; failure: string },
    action: (id: string, principal: BrowserSessionPrincipal, body: unknown, requester: ClientInfo) => Promise<string>,
  ) =>
    [
      path,
      async ({ request, body, set, requester }: { request: Request; body: unknown; set: PageSet; requester: ClientInfo }) => {
        const name = typeof form === "string" ? form : form(body);
        const principal = await adminForm(request, body, set, name);
        if (typeof principal === "string") return principal;
        const id = field(body, "id") ?? "";
        return act(request, set, principal, name, where(id), () => action(id, principal, body, requester));
      },
      { detail: { hide: true } },
    ] as const;

  const userPath = (id: string, section = "") => `/admin/users/${encodeURIComponent(id)}${section ? `#${section}` : ""}`;
  const notFound = (request: Request, set: PageSet, principal: BrowserSessionPrincipal) => {
    flashes.put(request, set, principal.sessionId, { form: "admin-delete", kind: "error", text: "There is no such user (any more)." });
    return seeOther(set, "/admin", 302);
  };

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    .get(
      "/admin",
      async ({ request, query, set }) => {
        const principal = await adminPage(request, set, "/admin");
        if (typeof principal === "string") return principal;
        const search = queryText(query, "q");
        const cursor = queryText(query, "cursor");
        const view = frame(request, set, principal);
        let page: Awaited<ReturnType<AdminService["list"]>>;
        try {
          page = await admin.list({ query: search || undefined, limit: String(PAGE_SIZE), cursor: cursor || undefined });
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          page = { users: [], next_cursor: null };
          view.flash = { form: "admin-delete", kind: "error", text: problemOf(error) };
        }
        const listed = await Promise.all(
          page.users.map(async (user) => ({
            ...user,
            twoStep: (await mfa.factors(user.id)).totp,
            lastSignIn: (await audit.list({ userId: user.id, event: "login_succeeded", limit: 1 })).events[0]?.time ?? null,
          })),
        );
        return htmlPage(
          set,
          200,
          String(
            <UserListPage
              {...view}
              query={search}
              users={listed}
              nextUsers={page.next_cursor ? new URLSearchParams({ q: search, cursor: page.next_cursor }).toString() : null}
              firstPage={cursor ? new URLSearchParams({ q: search }).toString() : null}
            />,
          ),
        );
      },
      { detail: { hide: true } },
    )
    .get(
      "/admin/users/new",
      async ({ request, set }) => {
        const principal = await adminPage(request, set, "/admin/users/new");
        if (typeof principal === "string") return principal;
        return htmlPage(set, 200, String(<NewUserPage {...frame(request, set, principal)} />));
      },
      { detail: { hide: true } },
    )
    .get(
      "/admin/users/:id",
      async ({ request, params, set }) => {
        const principal = await adminPage(request, set, userPath(params.id));
        if (typeof principal === "string") return principal;
        const user = await userOf(params.id);
        if (!user) return notFound(request, set, principal);
        const events = (await audit.list({ userId: user.id, limit: USER_EVENTS })).events;
        return htmlPage(
          set,
          200,
          String(
            <UserPage
              {...frame(request, set, principal)}
              user={user}
              self={user.id === principal.userId}
              factors={await mfa.factors(user.id)}
              passwordless={(await users.findById(user.id))?.passwordHash === null}
              sessions={await sessions.list(user.id)}
              events={events}
            />,
          ),
        );
      },
      { detail: { hide: true } },
    )
    .get(
      "/admin/users/:id/:confirm",
      async ({ request, params, set }) => {
        const principal = await adminPage(request, set, userPath(params.id));
        if (typeof principal === "string") return principal;
        const kind = params.confirm as Confirmation;
        const user = Object.hasOwn(CONFIRMATIONS, kind) ? await userOf(params.id) : undefined;
        if (!user) return notFound(request, set, principal);
        // Nothing to confirm that the page would refuse: back to the user's page, which says why.
        if (user.id === principal.userId && (kind === "delete" || kind === "disable" || kind === "passkeys")) return seeOther(set, userPath(user.id, "actions"), 302);
        return htmlPage(set, 200, String(<ConfirmPage {...frame(request, set, principal)} user={user} kind={kind} />));
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/users",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "admin-create");
        if (typeof principal === "string") return principal;
        const email = field(body, "email")?.trim();
        let id = "";
        const passkeyFirst = field(body, "method") === "passkey";
        return act(request, set, principal, "admin-create", { done: "", failure: "/admin/users/new" }, async () => {
          const user = await admin.create(
            {
              username: field(body, "username")?.trim() ?? "",
              ...(passkeyFirst ? { passkey_first: true } : { password: field(body, "password") ?? "" }),
              email: email || undefined,
              roles: commaList(field(body, "roles")),
            },
            actorOf(principal, requester),
          );
          id = user.id;
          if (!passkeyFirst) return `${user.username} is added.`;
          const setup = await deps.fallbacks.issueSetupLink(user, "new_account", { actor_id: principal.userId, actor: principal.username }, requester);
          return `${user.username} is added, without a password. Hand them this link, which works once, for 24 hours, to set up their passkey: ${setup.link}`;
        }).then((answer) => (id ? seeOther(set, userPath(id)) : answer));
      },
      { detail: { hide: true } },
    )
    .post(
      // Disabling is confirmed on its own page (its token is only there); enabling is one click on the user's page.
      ...userForm("/admin/users/status", (body) => (field(body, "disabled") === "true" ? "admin-status" : "admin-enable"), (id) => ({ done: userPath(id), failure: userPath(id, "profile") }), async (id, principal, body, requester) => {
        const disabled = field(body, "disabled") === "true";
        if (disabled && id === principal.userId) throw new NotOnYourself("disable");
        const user = await admin.update(id, { disabled }, actorOf(principal, requester));
        return disabled ? `${user.username} is disabled: signed out everywhere, API keys deleted.` : `${user.username} is enabled.`;
      }),
    )
    .post(
      ...userForm("/admin/users/roles", "admin-roles", (id) => ({ done: userPath(id, "roles"), failure: userPath(id, "roles") }), async (id, principal, body, requester) => {
        const roles = commaList(field(body, "roles"));
        if (id === principal.userId && !roles.includes(ADMIN_ROLE)) throw new NotOnYourself("take the admin role from");
        const user = await admin.update(id, { roles }, actorOf(principal, requester));
        return `Roles of ${user.username} saved.`;
      }),
    )
    .post(
      ...userForm("/admin/users/email", "admin-email", (id) => ({ done: userPath(id, "profile"), failure: userPath(id, "profile") }), async (id, principal, body, requester) => {
        const email = field(body, "email")?.trim();
        const user = await admin.update(id, { email: email || null, emailVerified: field(body, "email_verified") === "true" }, actorOf(principal, requester));
        return `Email of ${user.username} saved.`;
      }),
    )
    .post(
      ...userForm("/admin/users/metadata", "admin-metadata", (id) => ({ done: userPath(id, "profile"), failure: userPath(id, "profile") }), async (id, principal, body, requester) => {
        let metadata: unknown;
        try {
          metadata = JSON.parse(field(body, "metadata") ?? "");
        } catch {
          throw validationFailed([{ field: "metadata", message: 'Must be a JSON object, e.g. {"name": "Alice"}.' }]);
        }
        const user = await admin.update(id, { metadata }, actorOf(principal, requester));
        return `Details of ${user.username} saved.`;
      }),
    )
    .post(
      ...userForm("/admin/users/mfa", "admin-mfa", (id) => ({ done: userPath(id, "security"), failure: `${userPath(id)}/second-factors` }), async (id, principal, _body, requester) => {
        await admin.resetSecondFactors(id, actorOf(principal, requester));
        return "Two-step sign-in is reset: the next sign-in asks for the password only.";
      }),
    )
    .post(
      ...userForm("/admin/users/passkeys", "admin-passkeys", (id) => ({ done: userPath(id, "security"), failure: `${userPath(id)}/passkeys` }), async (id, principal, _body, requester) => {
        // It signs the user out everywhere: an admin's own would end this session too (the API does it, asked nothing).
        if (id === principal.userId) throw new NotOnYourself("reset the passkeys of");
        const reset = await deps.fallbacks.resetPasskeys(await admin.findUser(id), actorOf(principal, requester));
        return `Passkeys reset (${reset.passkeysDeleted} deleted): they are signed out everywhere. Hand them this link, which works once, for 24 hours: ${reset.link}`;
      }),
    )
    .post(
      ...userForm("/admin/users/password", "admin-password", (id) => ({ done: userPath(id, "security"), failure: `${userPath(id)}/password` }), async (id, principal, body, requester) => {
        await admin.resetPassword(id, field(body, "password") ?? "", actorOf(principal, requester));
        return "New password set: they are signed out everywhere.";
      }),
    )
    .post(
      ...userForm("/admin/users/delete", "admin-delete", (id) => ({ done: "/admin", failure: userPath(id, "actions") }), async (id, principal, _body, requester) => {
        if (id === principal.userId) throw new NotOnYourself("delete");
        const user = await admin.get(id);
        await admin.delete(id, actorOf(principal, requester));
        return `${user.username} is deleted.`;
      }),
    );
}
