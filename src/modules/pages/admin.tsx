import type { AdminUser } from "../admin/model";
import { SignedInNav } from "./account";
import { AuditTable, eventLabel, type AuditRow } from "./audit";
import type { Flash } from "./flash";
import { messageFor } from "./flash";
import { Alert, Csrf, Layout, RowAction } from "./layout";
import { Cut, DataTable, Device, When } from "./table";

/** What every admin page knows: who is looking, their forms' tokens, and the last form's message. */
export interface AdminFrame {
  appName: string;
  username: string;
  csrf: (form: string) => string;
  flash?: Flash;
}

/** A user on the list: the account, its second factors and its last sign-in. */
export interface ListedUser extends AdminUser {
  twoStep: boolean;
  lastSignIn: string | null;
}

export interface UserListView extends AdminFrame {
  query: string;
  users: ListedUser[];
  /** The next page of users, as a query string. */
  nextUsers: string | null;
  /** The first page, when this is a later one. */
  firstPage: string | null;
}

function AdminLayout(props: { frame: AdminFrame; title: string; current: string; children: JSX.Element | JSX.Element[] }) {
  const safeChildren = props.children;
  return (
    <Layout
      appName={props.frame.appName}
      title={props.title}
      nav={<SignedInNav username={props.frame.username} isAdmin csrf={props.frame.csrf("logout")} current={props.current} />}
    >
      {safeChildren}
    </Layout>
  );
}

/** The message (if any) the last form of `forms` left, beside it. */
function Said({ flash, forms }: { flash: Flash | undefined; forms: string | string[] }) {
  const said = messageFor(flash, forms);
  return said ? <Alert message={said.text} kind={said.kind} /> : "";
}

const EmailBadge = ({ user }: { user: AdminUser }) =>
  !user.email ? <span class="muted">none</span> : user.email_verified ? <span class="badge ok">verified</span> : <span class="badge warn">not verified</span>;

const StatusBadge = ({ user }: { user: AdminUser }) => (user.disabled ? <span class="badge bad">disabled</span> : <span class="badge ok">active</span>);

/** GET /admin: search and page through users; each opens its own page. */
export function UserListPage(view: UserListView) {
  return (
    <AdminLayout frame={view} title="Users" current="/admin">
      <section id="users" aria-labelledby="users-title">
        <h1 id="users-title">Users</h1>
        <Said flash={view.flash} forms={["admin-delete", "admin-create"]} />
        <form method="get" action="/admin" class="row" role="search">
          <div>
            <label for="q">Search by username or email</label>
            <input id="q" name="q" value={view.query} maxlength="254" type="search" />
          </div>
          <button type="submit" class="secondary">
            Search
          </button>
          <a class="button" href="/admin/users/new">
            Add a user
          </a>
        </form>
        <DataTable
          label="Users"
          columns={[{ label: "User" }, { label: "Email" }, { label: "Two-step" }, { label: "Last sign-in" }, { label: "Status" }]}
          rows={view.users}
          empty="No users match."
          cells={(user) => [
            <a href={`/admin/users/${encodeURIComponent(user.id)}`} class="cut" title={user.email ? `${user.username} (${user.email})` : user.username} safe>
              {user.username}
            </a>,
            <EmailBadge user={user} />,
            user.twoStep ? <span class="badge ok">on</span> : <span class="badge off">off</span>,
            <When date={user.lastSignIn} />,
            <StatusBadge user={user} />,
          ]}
        />
        <p class="actions">
          {view.firstPage !== null ? <a href={`/admin?${view.firstPage}`}>← First page</a> : ""}
          {view.nextUsers ? <a href={`/admin?${view.nextUsers}`}>Next page →</a> : ""}
        </p>
      </section>
    </AdminLayout>
  );
}

/** GET /admin/users/new: the create form. */
export function NewUserPage(view: AdminFrame) {
  return (
    <AdminLayout frame={view} title="Add a user" current="/admin">
      <section id="create" aria-labelledby="create-title">
        <h1 id="create-title">Add a user</h1>
        <Said flash={view.flash} forms="admin-create" />
        <form method="post" action="/admin/users" class="stack">
          <Csrf token={view.csrf("admin-create")} />
          <label for="new_username">Username</label>
          <input id="new_username" name="username" required maxlength="32" autocomplete="off" />
          <label for="new_email">Email (optional)</label>
          <input id="new_email" name="email" type="email" maxlength="254" autocomplete="off" />
          <label for="new_roles">Roles (comma-separated, optional)</label>
          <input id="new_roles" name="roles" placeholder="e.g. family, media" />
          <label for="new_password">Password</label>
          <input id="new_password" name="password" type="password" required autocomplete="new-password" />
          <button type="submit">Add the user</button>
          {/* formnovalidate: no password for this one; the user sets up a passkey with the link it makes. */}
          <button type="submit" name="method" value="passkey" class="secondary" formnovalidate>
            Add with a passkey instead
          </button>
        </form>
        <p>
          <a href="/admin">Back to users</a>
        </p>
      </section>
    </AdminLayout>
  );
}

export interface UserPageView extends AdminFrame {
  user: AdminUser;
  /** The admin is looking at their own account: no disable, delete or demotion from here. */
  self: boolean;
  factors: { totp: boolean; recovery_codes_left: number };
  /** The account has no password: it signs in with passkeys only. */
  passwordless: boolean;
  sessions: { id: string; createdAt: Date; lastSeenAt: Date; ip: string | null; userAgent: string | null }[];
  events: AuditRow[];
}

/** GET /admin/users/:id: profile, roles, security, sessions, actions (the dangerous ones through a confirmation page). */
export function UserPage(view: UserPageView) {
  const { user } = view;
  const base = `/admin/users/${encodeURIComponent(user.id)}`;
  return (
    <AdminLayout frame={view} title={user.username} current="/admin">
      <p>
        <a href="/admin">← All users</a>
      </p>
      <section id="profile" aria-labelledby="profile-title">
        <h1 id="profile-title" safe>
          {user.username}
        </h1>
        <Said flash={view.flash} forms={["admin-create", "admin-email", "admin-metadata", "admin-enable", "admin-status"]} />
        <dl class="facts">
          <dt>Status</dt>
          <dd>
            <StatusBadge user={user} />
          </dd>
          <dt>Email</dt>
          <dd>
            {user.email ? <Cut text={user.email} /> : ""} <EmailBadge user={user} />
          </dd>
          <dt>Created</dt>
          <dd>
            <When date={user.created_at} />
          </dd>
        </dl>
        <details open={messageFor(view.flash, ["admin-email", "admin-metadata"])?.kind === "error"}>
          <summary>Edit email and details</summary>
          <form method="post" action="/admin/users/email" class="stack">
            <Csrf token={view.csrf("admin-email")} />
            <input type="hidden" name="id" value={user.id} />
            <label for="email">Email (empty: none)</label>
            <input id="email" name="email" type="email" value={user.email ?? ""} maxlength="254" />
            <label class="check">
              <input type="checkbox" name="email_verified" value="true" checked={user.email_verified} /> The address is verified
            </label>
            <button type="submit" class="secondary">
              Save email
            </button>
          </form>
          <form method="post" action="/admin/users/metadata" class="stack">
            <Csrf token={view.csrf("admin-metadata")} />
            <input type="hidden" name="id" value={user.id} />
            <label for="metadata">Details for apps (a JSON object, e.g. {`{"name": "Alice"}`})</label>
            <input id="metadata" name="metadata" value={JSON.stringify(user.metadata)} />
            <button type="submit" class="secondary">
              Save details
            </button>
          </form>
        </details>
      </section>

      <section id="roles" aria-labelledby="roles-title">
        <h2 id="roles-title">Roles</h2>
        <Said flash={view.flash} forms="admin-roles" />
        <form method="post" action="/admin/users/roles" class="row">
          <Csrf token={view.csrf("admin-roles")} />
          <input type="hidden" name="id" value={user.id} />
          <div>
            <label for="roles">Roles (comma-separated)</label>
            <input id="roles" name="roles" value={user.roles.join(", ")} />
          </div>
          <button type="submit" class="secondary">
            Save roles
          </button>
        </form>
        <p class="muted">{view.self ? "You cannot take the admin role from yourself here: another admin can." : "The admin role opens these pages."}</p>
      </section>

      <section id="security" aria-labelledby="security-title">
        <h2 id="security-title">Security</h2>
        <Said flash={view.flash} forms={["admin-password", "admin-mfa", "admin-passkeys"]} />
        <dl class="facts">
          <dt>Password</dt>
          <dd>{view.passwordless ? <span class="badge off">none: passkeys only</span> : <span class="badge ok">set</span>}</dd>
          <dt>Two-step</dt>
          <dd>
            {view.factors.totp ? (
              <>
                <span class="badge ok">on</span> <span safe>{`${view.factors.recovery_codes_left} recovery codes left`}</span>
              </>
            ) : (
              <span class="badge off">off</span>
            )}
          </dd>
        </dl>
        <p class="actions">
          <a class="button secondary" href={`${base}/password`}>
            Set a new password…
          </a>
          {view.factors.totp ? (
            <a class="button danger" href={`${base}/second-factors`}>
              Reset two-step sign-in…
            </a>
          ) : (
            ""
          )}
          {view.self ? (
            ""
          ) : (
            <a class="button danger" href={`${base}/passkeys`}>
              Reset passkeys…
            </a>
          )}
        </p>
      </section>

      <section id="sessions" aria-labelledby="sessions-title">
        <h2 id="sessions-title">Signed in on</h2>
        <DataTable
          label="Devices"
          columns={[{ label: "Device" }, { label: "Address" }, { label: "Signed in" }, { label: "Last seen" }]}
          rows={view.sessions}
          empty="No device is signed in."
          cells={(session) => [<Device userAgent={session.userAgent} />, <Cut text={session.ip ?? "unknown"} />, <When date={session.createdAt} />, <When date={session.lastSeenAt} />]}
        />
      </section>

      <section id="activity" aria-labelledby="activity-title">
        <h2 id="activity-title">Recent activity</h2>
        <AuditTable events={view.events} usernames={new Map([[user.id, user.username]])} />
        <p>
          <a href={`/admin/audit?user=${encodeURIComponent(user.username)}`}>All of this user's activity</a>
        </p>
      </section>

      <section id="actions" aria-labelledby="actions-title">
        <h2 id="actions-title">Actions</h2>
        {view.self ? (
          <p class="muted">This is your own account: you cannot disable or delete it here.</p>
        ) : (
          <p class="actions">
            {user.disabled ? (
              <RowAction action="/admin/users/status" csrf={view.csrf("admin-enable")} fields={{ id: user.id, disabled: "false" }} label="Enable" kind="primary" />
            ) : (
              <a class="button danger" href={`${base}/disable`}>
                Disable…
              </a>
            )}
            <a class="button danger" href={`${base}/delete`}>
              Delete…
            </a>
          </p>
        )}
      </section>
    </AdminLayout>
  );
}

/** The dangerous actions, each asked for on a page of its own that names the user. */
export const CONFIRMATIONS = {
  delete: {
    form: "admin-delete",
    action: "/admin/users/delete",
    title: (name: string) => `Delete ${name}?`,
    explain: "The account, its sessions, API keys and second factors are deleted for good. Their audit events stay.",
    button: (name: string) => `Delete ${name}`,
  },
  disable: {
    form: "admin-status",
    action: "/admin/users/status",
    title: (name: string) => `Disable ${name}?`,
    explain: "They are signed out everywhere at once, their API keys are deleted, and they cannot sign in until an admin enables the account again.",
    button: (name: string) => `Disable ${name}`,
  },
  password: {
    form: "admin-password",
    action: "/admin/users/password",
    title: (name: string) => `Set a new password for ${name}?`,
    explain: "They are signed out everywhere. Tell them the new password in person; they can change it on their account page.",
    button: () => "Set the new password",
  },
  "second-factors": {
    form: "admin-mfa",
    action: "/admin/users/mfa",
    title: (name: string) => `Reset two-step sign-in for ${name}?`,
    explain: "Their authenticator and recovery codes are removed: their next sign-in asks for the password only, until they set up an authenticator again.",
    button: () => "Reset two-step sign-in",
  },
  passkeys: {
    form: "admin-passkeys",
    action: "/admin/users/passkeys",
    title: (name: string) => `Reset the passkeys of ${name}?`,
    explain:
      "For a lost device: every passkey of theirs is deleted and they are signed out everywhere. You get a link that signs them in once, within 24 hours, to add a new passkey: hand it to them. A password, if they have one, stays.",
    button: () => "Reset passkeys",
  },
} as const;

export type Confirmation = keyof typeof CONFIRMATIONS;

/** A confirmation page: what will happen to whom, the button, and the way back. */
export function ConfirmPage(view: AdminFrame & { user: AdminUser; kind: Confirmation }) {
  const what = CONFIRMATIONS[view.kind];
  const back = `/admin/users/${encodeURIComponent(view.user.id)}`;
  return (
    <AdminLayout frame={view} title={what.title(view.user.username)} current="/admin">
      <section aria-labelledby="confirm-title">
        <h1 id="confirm-title" safe>
          {what.title(view.user.username)}
        </h1>
        <p>{what.explain}</p>
        <Said flash={view.flash} forms={what.form} />
        <form method="post" action={what.action} class="stack">
          <Csrf token={view.csrf(what.form)} />
          <input type="hidden" name="id" value={view.user.id} />
          {view.kind === "disable" ? <input type="hidden" name="disabled" value="true" /> : ""}
          {view.kind === "password" ? (
            <>
              <input type="hidden" name="username" value={view.user.username} autocomplete="username" />
              <label for="password">New password</label>
              <input id="password" name="password" type="password" autocomplete="new-password" required autofocus />
            </>
          ) : (
            ""
          )}
          <button type="submit" class={view.kind === "password" ? "" : "danger solid"} safe>
            {what.button(view.user.username)}
          </button>
        </form>
        <p>
          <a href={back}>Cancel</a>
        </p>
      </section>
    </AdminLayout>
  );
}

export interface AuditView extends AdminFrame {
  user: string;
  event: string;
  events: AuditRow[];
  /** Usernames of the events' users who still exist, by id. */
  usernames: ReadonlyMap<string, string>;
  eventNames: readonly string[];
  next: string | null;
  first: string | null;
}

/** GET /admin/audit: the audit log in sentences, by user and event, a page at a time. */
export function AuditPage(view: AuditView) {
  return (
    <AdminLayout frame={view} title="Audit log" current="/admin/audit">
      <section id="audit" aria-labelledby="audit-title">
        <h1 id="audit-title">Audit log</h1>
        <Said flash={view.flash} forms="audit" />
        <form method="get" action="/admin/audit" class="row">
          <div>
            <label for="audit_user">User (username, email or id)</label>
            <input id="audit_user" name="user" value={view.user} maxlength="254" />
          </div>
          <div>
            <label for="audit_event">What happened</label>
            <select id="audit_event" name="event">
              <option value="">anything</option>
              {view.eventNames.map((name) => (
                <option value={name} selected={name === view.event} safe>
                  {eventLabel(name)}
                </option>
              ))}
            </select>
          </div>
          <button type="submit" class="secondary">
            Filter
          </button>
        </form>
        <AuditTable events={view.events} usernames={view.usernames} />
        <p class="actions">
          {view.first !== null ? <a href={`/admin/audit?${view.first}`}>← Newest</a> : ""}
          {view.next ? <a href={`/admin/audit?${view.next}`}>Older events →</a> : ""}
        </p>
      </section>
    </AdminLayout>
  );
}
