import type { AdminUser } from "../admin/service";
import { SignedInNav, when } from "./account";
import { Alert, Csrf, Layout } from "./layout";

export interface AuditRow {
  id: number;
  time: string;
  event: string;
  user_id: string | null;
  ip: string | null;
  detail: Record<string, unknown>;
}

export interface AdminView {
  appName: string;
  username: string;
  csrf: (form: string) => string;
  query: string;
  users: AdminUser[];
  /** The next page of users, as a query string. */
  nextUsers: string | null;
  auditUser: string;
  auditEvent: string;
  events: AuditRow[];
  /** Usernames of the events' users who still exist, by id. */
  usernames: ReadonlyMap<string, string>;
  eventNames: readonly string[];
  nextEvents: string | null;
  notice?: string;
  error?: string;
}

function UserActions({ user, csrf }: { user: AdminUser; csrf: (form: string) => string }) {
  return (
    <>
      <form method="post" action="/admin/users/status" class="inline">
        <Csrf token={csrf("admin-status")} />
        <input type="hidden" name="id" value={user.id} />
        <input type="hidden" name="disabled" value={user.disabled ? "false" : "true"} />
        <button type="submit" class={user.disabled ? "secondary" : "danger"}>
          {user.disabled ? "Enable" : "Disable"}
        </button>
      </form>{" "}
      <form method="post" action="/admin/users/delete" class="inline">
        <Csrf token={csrf("admin-delete")} />
        <input type="hidden" name="id" value={user.id} />
        <button type="submit" class="danger">
          Delete
        </button>
      </form>
      <details>
        <summary>Edit</summary>
        <form method="post" action="/admin/users/roles" class="row">
          <Csrf token={csrf("admin-roles")} />
          <input type="hidden" name="id" value={user.id} />
          <div>
            <label>Roles (comma-separated)</label>
            <input name="roles" value={user.roles.join(",")} />
          </div>
          <button type="submit" class="secondary">
            Save roles
          </button>
        </form>
        <form method="post" action="/admin/users/email" class="row">
          <Csrf token={csrf("admin-email")} />
          <input type="hidden" name="id" value={user.id} />
          <div>
            <label>Email (empty: none)</label>
            <input name="email" type="email" value={user.email ?? ""} maxlength="254" />
          </div>
          <label>
            <input type="checkbox" name="email_verified" value="true" checked={user.email_verified} /> verified
          </label>
          <button type="submit" class="secondary">
            Save email
          </button>
        </form>
        <form method="post" action="/admin/users/metadata" class="row">
          <Csrf token={csrf("admin-metadata")} />
          <input type="hidden" name="id" value={user.id} />
          <div>
            <label>Metadata (a JSON object)</label>
            <input name="metadata" value={JSON.stringify(user.metadata)} />
          </div>
          <button type="submit" class="secondary">
            Save metadata
          </button>
        </form>
        <form method="post" action="/admin/users/mfa" class="inline">
          <Csrf token={csrf("admin-mfa")} />
          <input type="hidden" name="id" value={user.id} />
          <button type="submit" class="danger">
            Reset second factors
          </button>
        </form>
        <form method="post" action="/admin/users/password" class="row">
          <Csrf token={csrf("admin-password")} />
          <input type="hidden" name="id" value={user.id} />
          <div>
            <label>New password</label>
            <input name="password" type="password" autocomplete="new-password" required />
          </div>
          <button type="submit" class="secondary">
            Reset password
          </button>
        </form>
      </details>
    </>
  );
}

export function AdminPage(view: AdminView) {
  return (
    <Layout appName={view.appName} title="Administration" nav={<SignedInNav username={view.username} isAdmin csrf={view.csrf("logout")} />}>
      <Alert message={view.notice} kind="notice" />
      <Alert message={view.error} />
      <section id="users">
        <h1>Users</h1>
        <form method="get" action="/admin" class="row">
          <div>
            <label for="q">Search username or email</label>
            <input id="q" name="q" value={view.query} maxlength="254" />
          </div>
          <button type="submit" class="secondary">
            Search
          </button>
        </form>
        <table>
          <thead>
            <tr>
              <th>User</th>
              <th>Roles</th>
              <th>Status</th>
              <th>Created</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {view.users.map((user) => (
              <tr>
                <td>
                  <strong safe>{user.username}</strong>
                  <br />
                  <span class="muted" safe>
                    {user.email || ""}
                  </span>
                </td>
                <td safe>{user.roles.join(", ")}</td>
                <td>{user.disabled ? "disabled" : "active"}</td>
                <td safe>{when(user.created_at)}</td>
                <td>
                  <UserActions user={user} csrf={view.csrf} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {view.users.length === 0 ? <p class="muted">No users match.</p> : ""}
        {view.nextUsers ? (
          <p>
            <a href={`/admin?${view.nextUsers}`}>Next page of users →</a>
          </p>
        ) : (
          ""
        )}
      </section>

      <section id="create">
        <h2>Create a user</h2>
        <form method="post" action="/admin/users" class="stack">
          <Csrf token={view.csrf("admin-create")} />
          <label for="new_username">Username</label>
          <input id="new_username" name="username" required maxlength="32" autocomplete="off" />
          <label for="new_email">Email (optional)</label>
          <input id="new_email" name="email" type="email" maxlength="254" autocomplete="off" />
          <label for="new_roles">Roles (comma-separated, optional)</label>
          <input id="new_roles" name="roles" placeholder="admin, family" />
          <label for="new_password">Password</label>
          <input id="new_password" name="password" type="password" required autocomplete="new-password" />
          <button type="submit">Create user</button>
        </form>
      </section>

      <section id="audit">
        <h2>Audit log</h2>
        <form method="get" action="/admin" class="row">
          <input type="hidden" name="q" value={view.query} />
          <div>
            <label for="audit_user">User (username, email or id)</label>
            <input id="audit_user" name="audit_user" value={view.auditUser} maxlength="254" />
          </div>
          <div>
            <label for="audit_event">Event</label>
            <select id="audit_event" name="audit_event">
              <option value="">any</option>
              {view.eventNames.map((name) => (
                <option value={name} selected={name === view.auditEvent} safe>
                  {name}
                </option>
              ))}
            </select>
          </div>
          <button type="submit" class="secondary">
            Filter
          </button>
        </form>
        <table>
          <thead>
            <tr>
              <th>Time</th>
              <th>Event</th>
              <th>User</th>
              <th>Address</th>
              <th>Detail</th>
            </tr>
          </thead>
          <tbody>
            {view.events.map((event) => (
              <tr>
                <td safe>{when(event.time)}</td>
                <td safe>{event.event}</td>
                <td safe>{(event.user_id && view.usernames.get(event.user_id)) || String(event.detail.username ?? event.user_id ?? "—")}</td>
                <td safe>{event.ip || "—"}</td>
                <td class="muted" safe>
                  {JSON.stringify(event.detail)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {view.events.length === 0 ? <p class="muted">No events match.</p> : ""}
        {view.nextEvents ? (
          <p>
            <a href={`/admin?${view.nextEvents}#audit`}>Older events →</a>
          </p>
        ) : (
          ""
        )}
      </section>
    </Layout>
  );
}
