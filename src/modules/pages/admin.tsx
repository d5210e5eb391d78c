import type { AdminUser } from "../admin/model";
import { SignedInNav, when } from "./account";
import { Alert, Csrf, Layout, RowAction, RowTable } from "./layout";

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
      <RowAction
        action="/admin/users/status"
        csrf={csrf("admin-status")}
        fields={{ id: user.id, disabled: user.disabled ? "false" : "true" }}
        label={user.disabled ? "Enable" : "Disable"}
        kind={user.disabled ? "secondary" : "danger"}
      />{" "}
      <RowAction action="/admin/users/delete" csrf={csrf("admin-delete")} fields={{ id: user.id }} label="Delete" kind="danger" />
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
        <RowAction action="/admin/users/mfa" csrf={csrf("admin-mfa")} fields={{ id: user.id }} label="Reset second factors" kind="danger" />
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
        <RowTable
          headings={["User", "Roles", "Status", "Created", ""]}
          rows={view.users}
          empty="No users match."
          row={(user) => (
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
          )}
        />
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
        <RowTable
          headings={["Time", "Event", "User", "Address", "Detail"]}
          rows={view.events}
          empty="No events match."
          row={(event) => (
            <tr>
              <td safe>{when(event.time)}</td>
              <td safe>{event.event}</td>
              <td safe>{(event.user_id && view.usernames.get(event.user_id)) || String(event.detail.username ?? event.user_id ?? "—")}</td>
              <td safe>{event.ip || "—"}</td>
              <td class="muted" safe>
                {JSON.stringify(event.detail)}
              </td>
            </tr>
          )}
        />
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
