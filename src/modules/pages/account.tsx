import { Alert, Csrf, Layout, RowAction, RowTable } from "./layout";

export interface AccountSession {
  id: string;
  current: boolean;
  createdAt: Date;
  lastSeenAt: Date;
  ip: string | null;
  userAgent: string | null;
}

export interface AccountKey {
  key_id: string;
  name: string;
  prefix: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}

/** An OpenID Connect application the user allowed to sign them in (issue 15). */
export interface AccountApplication {
  client_id: string;
  scope: string;
  created_at: string;
}

export interface AccountView {
  appName: string;
  username: string;
  email: string | null;
  roles: string[];
  isAdmin: boolean;
  sessions: AccountSession[];
  keys: AccountKey[];
  applications: AccountApplication[];
  csrf: (form: string) => string;
  notice?: string;
  error?: string;
  /** A key just created: its secret, shown this once. */
  newKey?: { name: string; secret: string };
  /** Issue 13: the user's second factors, an enrolment being set up, recovery codes just made (shown this once). */
  secondFactors: { totp: boolean; recovery_codes_left: number };
  enrolment?: { secret: string; qrSvg: string };
  newRecoveryCodes?: string[];
}

/** Navigation of the signed-in pages, with the sign-out button (a form: signing out changes state). */
export function SignedInNav({ username, isAdmin, csrf }: { username: string; isAdmin: boolean; csrf: string }) {
  return (
    <nav>
      <a href="/account">Account</a>
      {isAdmin ? <a href="/admin">Admin</a> : ""}
      {isAdmin ? <a href="/admin/applications">Applications</a> : ""}
      {isAdmin ? <a href="/admin/invitations">Invitations</a> : ""}
      <span class="muted" safe>
        {username}
      </span>
      <RowAction action="/logout" csrf={csrf} fields={{}} label="Sign out" kind="secondary" />
    </nav>
  );
}

/** A date as people read it, in UTC (no script to localise it). */
export const when = (date: Date | string | null) => (date ? new Date(date).toISOString().slice(0, 16).replace("T", " ") + " UTC" : "never");

export function AccountPage(view: AccountView) {
  const others = view.sessions.filter((session) => !session.current).length;
  return (
    <Layout
      appName={view.appName}
      title="Your account"
      nav={<SignedInNav username={view.username} isAdmin={view.isAdmin} csrf={view.csrf("logout")} />}
    >
      <Alert message={view.notice} kind="notice" />
      <Alert message={view.error} />
      {view.newKey ? (
        <section class="notice">
          <h2 safe>{`API key "${view.newKey.name}" created`}</h2>
          <p>Copy it now: it is shown this once and only its hash is kept.</p>
          <p class="secret" id="new-key" safe>
            {view.newKey.secret}
          </p>
        </section>
      ) : (
        ""
      )}
      <section>
        <h1>Your account</h1>
        <table>
          <tbody>
            <tr>
              <th>Username</th>
              <td safe>{view.username}</td>
            </tr>
            <tr>
              <th>Email</th>
              <td safe>{view.email || "—"}</td>
            </tr>
            <tr>
              <th>Roles</th>
              <td safe>{view.roles.join(", ") || "—"}</td>
            </tr>
          </tbody>
        </table>
      </section>

      <section id="sessions">
        <h2>Sessions</h2>
        <RowTable
          headings={["Device", "Address", "Signed in", "Last seen", ""]}
          rows={view.sessions}
          row={(session) => (
            <tr>
              <td safe>{session.userAgent || "unknown"}</td>
              <td safe>{session.ip || "—"}</td>
              <td safe>{when(session.createdAt)}</td>
              <td safe>{when(session.lastSeenAt)}</td>
              <td>
                {session.current ? (
                  <strong>This browser</strong>
                ) : (
                  <RowAction action="/account/sessions/revoke" csrf={view.csrf("session-revoke")} fields={{ session_id: session.id }} label="Sign out" kind="danger" />
                )}
              </td>
            </tr>
          )}
        />
        {others > 0 ? (
          <form method="post" action="/account/sessions/revoke-others">
            <Csrf token={view.csrf("session-revoke-others")} />
            <p>
              <button type="submit" class="danger">
                Sign out all other sessions
              </button>
            </p>
          </form>
        ) : (
          ""
        )}
      </section>

      <section id="password">
        <h2>Change password</h2>
        <form method="post" action="/account/password" class="stack">
          <Csrf token={view.csrf("password")} />
          <input type="hidden" name="username" value={view.username} autocomplete="username" />
          <label for="current_password">Current password</label>
          <input id="current_password" name="current_password" type="password" autocomplete="current-password" required />
          <label for="new_password">New password</label>
          <input id="new_password" name="new_password" type="password" autocomplete="new-password" required />
          <button type="submit">Change password</button>
        </form>
        <p class="muted">Your other sessions end; this one stays.</p>
      </section>

      <section id="two-step">
        <h2>Two-step sign-in</h2>
        {view.newRecoveryCodes ? (
          <div class="notice">
            <p>Your recovery codes: each works once if you lose your authenticator. Save them now: they are shown only this once.</p>
            <ul class="secret" id="recovery-codes">
              {view.newRecoveryCodes.map((code) => (
                <li safe>{code}</li>
              ))}
            </ul>
          </div>
        ) : (
          ""
        )}
        {view.secondFactors.totp ? (
          <>
            <p safe>{`An authenticator app is on. ${view.secondFactors.recovery_codes_left} recovery code(s) left.`}</p>
            <form method="post" action="/account/mfa/recovery-codes">
              <Csrf token={view.csrf("recovery-codes")} />
              <button type="submit" class="secondary">
                New recovery codes
              </button>
            </form>
            <form method="post" action="/account/mfa/totp/delete" class="stack">
              <Csrf token={view.csrf("totp-delete")} />
              <label for="totp_password">Password, to turn it off</label>
              <input id="totp_password" name="password" type="password" autocomplete="current-password" required />
              <button type="submit" class="danger">
                Turn off the authenticator
              </button>
            </form>
          </>
        ) : view.enrolment ? (
          <>
            <p>Scan this code with an authenticator app (or type the key), then enter the 6-digit code it shows.</p>
            <p>
              <img alt="Authenticator QR code" width="200" height="200" src={`data:image/svg+xml;base64,${Buffer.from(view.enrolment.qrSvg).toString("base64")}`} />
              <br />
              <span class="secret" id="totp-secret" safe>
                {view.enrolment.secret}
              </span>
            </p>
            <form method="post" action="/account/mfa/totp/confirm" class="stack">
              <Csrf token={view.csrf("totp-confirm")} />
              <label for="totp_code">Code</label>
              <input id="totp_code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="10" required autofocus />
              <button type="submit">Turn on</button>
            </form>
          </>
        ) : (
          <form method="post" action="/account/mfa/totp">
            <Csrf token={view.csrf("totp-start")} />
            <p class="muted">Sign-in asks for a code from an authenticator app after your password.</p>
            <button type="submit">Set up an authenticator app</button>
          </form>
        )}
      </section>

      <section id="applications">
        <h2>Applications</h2>
        <RowTable
          headings={["Application", "Allowed", ""]}
          rows={view.applications}
          empty="No application has asked to sign you in yet."
          row={(application) => (
            <tr>
              <td safe>{application.client_id}</td>
              <td safe>{when(application.created_at)}</td>
              <td>
                <RowAction
                  action="/account/applications/revoke"
                  csrf={view.csrf("application-revoke")}
                  fields={{ client_id: application.client_id }}
                  label="Withdraw"
                  kind="danger"
                />
              </td>
            </tr>
          )}
        />
        <p class="muted">Withdrawing signs you out of the application; it asks again next time.</p>
      </section>

      <section id="keys">
        <h2>API keys</h2>
        <RowTable
          headings={["Name", "Key", "Created", "Last used", "Expires", ""]}
          rows={view.keys}
          empty="No API keys yet."
          row={(key) => (
            <tr>
              <td safe>{key.name}</td>
              <td safe>{`lk_${key.prefix}…`}</td>
              <td safe>{when(key.created_at)}</td>
              <td safe>{when(key.last_used_at)}</td>
              <td safe>{when(key.expires_at)}</td>
              <td>
                <RowAction action="/account/keys/delete" csrf={view.csrf("key-delete")} fields={{ key_id: key.key_id }} label="Delete" kind="danger" />
              </td>
            </tr>
          )}
        />
        <form method="post" action="/account/keys" class="row">
          <Csrf token={view.csrf("key-create")} />
          <div>
            <label for="key_name">New key name</label>
            <input id="key_name" name="name" required maxlength="64" placeholder="e.g. backup script" />
          </div>
          <div>
            <label for="key_expires">Expires after</label>
            <select id="key_expires" name="expires_in">
              <option value="">never</option>
              <option value="2592000">30 days</option>
              <option value="7776000">90 days</option>
              <option value="31536000">1 year</option>
            </select>
          </div>
          <button type="submit">Create key</button>
        </form>
      </section>
    </Layout>
  );
}
