import type { Flash } from "./flash";
import { messageFor } from "./flash";
import { Alert, Csrf, Layout, RowAction } from "./layout";
import { Cut, DataTable, Device, deviceName, When } from "./table";
import { AuthenticatorSetup } from "./two-step";
import { PasskeysSection, type PagePasskey } from "./passkeys";
import { PASSKEY_STEP_PATH } from "../../http/routes";

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
  emailVerified: boolean;
  roles: string[];
  isAdmin: boolean;
  /** Mail is on: the address can be verified and changed here. */
  mailEnabled: boolean;
  sessions: AccountSession[];
  keys: AccountKey[];
  applications: AccountApplication[];
  csrf: (form: string) => string;
  /** What the last form left (POST/redirect/GET): its message goes beside that form. */
  flash?: Flash;
  /** Issue 13: the user's second factors, and an enrolment started and not yet confirmed. */
  secondFactors: { totp: boolean; recovery_codes_left: number };
  /** What the account signs in with: a password (or none: passkeys only), and how many passkeys. */
  waysIn: { hasPassword: boolean; passkeys: number };
  enrolment?: { secret: string; qrSvg: string };
  /** Issue 25: the user's passkeys. */
  passkeys: PagePasskey[];
}

/**
 * The admin pages' links, in the order the navigation shows them. Each admin page adds its own here.
 */
export const ADMIN_LINKS: { href: string; text: string }[] = [
  { href: "/admin", text: "Users" },
  { href: "/admin/invitations", text: "Invitations" },
  { href: "/admin/applications", text: "Applications" },
  { href: "/admin/audit", text: "Audit log" },
];

/** Navigation of the signed-in pages, with the sign-out button (a form: signing out changes state). */
export function SignedInNav({ username, isAdmin, csrf, current }: { username: string; isAdmin: boolean; csrf: string; current?: string }) {
  const links = [{ href: "/account", text: "Account" }, ...(isAdmin ? ADMIN_LINKS : [])];
  return (
    <nav aria-label="Main">
      {links.map((link) => (
        <a href={link.href} aria-current={link.href === current ? "page" : undefined} safe>
          {link.text}
        </a>
      ))}
      <span class="muted" safe>
        {username}
      </span>
      <RowAction action="/logout" csrf={csrf} fields={{}} label="Sign out" kind="secondary" />
    </nav>
  );
}

/** The message (if any) the last form of `forms` left. */
function Said({ flash, forms }: { flash: Flash | undefined; forms: string | string[] }) {
  const said = messageFor(flash, forms);
  return said ? <Alert message={said.text} kind={said.kind} /> : "";
}

function EmailState({ email, verified }: { email: string | null; verified: boolean }) {
  if (!email) return <span class="muted">No email address</span>;
  return (
    <>
      <Cut text={email} />{" "}
      {verified ? <span class="badge ok">Verified</span> : <span class="badge warn">Not verified</span>}
    </>
  );
}

function ProfileSection(view: AccountView) {
  return (
    <section id="profile" aria-labelledby="profile-title">
      <h1 id="profile-title">Your account</h1>
      <dl class="facts">
        <dt>Username</dt>
        <dd>
          <strong safe>{view.username}</strong>
        </dd>
        <dt>Email</dt>
        <dd>
          <EmailState email={view.email} verified={view.emailVerified} />
        </dd>
        <dt>Roles</dt>
        <dd safe>{view.roles.join(", ") || "none"}</dd>
      </dl>
      <Said flash={view.flash} forms={["email", "email-send"]} />
      {!view.mailEnabled ? (
        <p class="muted">This server sends no mail: ask your administrator to change or verify your address.</p>
      ) : (
        <>
          {view.email && !view.emailVerified ? (
            <div class="actions">
              <form method="post" action="/account/email/send">
                <Csrf token={view.csrf("email-send")} />
                <button type="submit">Send me a code to verify it</button>
              </form>
              <a href="/account/email/verify">I have a code</a>
            </div>
          ) : (
            ""
          )}
          {view.waysIn.hasPassword ? (
            <details open={messageFor(view.flash, "email")?.kind === "error"}>
              <summary>{view.email ? "Change email address" : "Add an email address"}</summary>
              <EmailChangeForm csrf={view.csrf("email")} username={view.username} hasPassword />
            </details>
          ) : (
            // Without a password the passkey confirms the change first, on a page of its own: an address typed here
            // would be lost on the way through the passkey step.
            <div class="actions">
              <a href="/account/email">{view.email ? "Change email address" : "Add an email address"}</a>
            </div>
          )}
        </>
      )}
    </section>
  );
}

/**
 * The change of address: confirmed by the password, or (an account without one) by a passkey sign-in of the last
 * minutes, which /account/email asks for before it shows this form. `onPage`: sent from /account/email, whose
 * refusals are shown there.
 */
function EmailChangeForm({ csrf, username, hasPassword, onPage = false }: { csrf: string; username: string; hasPassword: boolean; onPage?: boolean }) {
  return (
    <>
      <form method="post" action="/account/email" class="stack">
        <Csrf token={csrf} />
        {onPage ? <input type="hidden" name="page" value="email" /> : ""}
        <input type="hidden" name="username" value={username} autocomplete="username" />
        <label for="new_email">New email address</label>
        <input id="new_email" name="new_email" type="email" autocomplete="email" required maxlength="254" />
        {hasPassword ? (
          <>
            <label for="email_password">Your password</label>
            <input id="email_password" name="current_password" type="password" autocomplete="current-password" required />
          </>
        ) : (
          ""
        )}
        <button type="submit">Send a code to the new address</button>
      </form>
      <p class="muted">The address changes once you type the code we mail to it.</p>
    </>
  );
}

/**
 * /account/email: the change of address on a page of its own. An account without a password confirms it is its
 * owner with a passkey first (`confirmed`: its passkey sign-in is recent, else a link to the passkey step, which
 * comes back here); then the form. A refusal of the form is shown here, beside it.
 */
export function EmailChangePage(view: {
  appName: string;
  nav: JSX.Element;
  csrf: string;
  username: string;
  hasPassword: boolean;
  confirmed: boolean;
  mailEnabled: boolean;
  flash: Flash | undefined;
}) {
  return (
    <Layout appName={view.appName} title="Change your email address" nav={view.nav} narrow>
      <section>
        <h1>Change your email address</h1>
        {!view.mailEnabled ? (
          <p class="muted">This server sends no mail: ask your administrator to change your address.</p>
        ) : (
          <>
            <Alert kind="notice" message={view.confirmed ? "You confirmed with your passkey: type the new address and send it within 5 minutes." : undefined} />
            <Said flash={view.flash} forms="email" />
            {view.hasPassword || view.confirmed ? (
              <EmailChangeForm csrf={view.csrf} username={view.username} hasPassword={view.hasPassword} onPage />
            ) : (
              <>
                <p>First confirm it is you with your passkey, then type the new address.</p>
                <div class="actions">
                  <a class="button" href={`${PASSKEY_STEP_PATH}?rd=${encodeURIComponent("/account/email")}`}>
                    Confirm with your passkey
                  </a>
                </div>
              </>
            )}
          </>
        )}
        <p>
          <a href="/account#profile">Back to your account</a>
        </p>
      </section>
    </Layout>
  );
}

/** A dangerous change of one's own account, confirmed by typing the password. */
function ConfirmedByPassword(props: { view: AccountView; action: string; form: string; field: { id: string; name: string }; button: string }) {
  return (
    <form method="post" action={props.action} class="stack">
      <Csrf token={props.view.csrf(props.form)} />
      <input type="hidden" name="username" value={props.view.username} autocomplete="username" />
      <label for={props.field.id}>Your password</label>
      <input id={props.field.id} name={props.field.name} type="password" autocomplete="current-password" required />
      <button type="submit" class="danger" safe>
        {props.button}
      </button>
    </form>
  );
}

/** The password form: a change (the current one asked), or an account without a password setting its first. */
function PasswordForm({ view, first }: { view: AccountView; first: boolean }) {
  return (
    <form method="post" action="/account/password" class="stack">
      <Csrf token={view.csrf("password")} />
      <input type="hidden" name="username" value={view.username} autocomplete="username" />
      {first ? (
        ""
      ) : (
        <>
          <label for="current_password">Current password</label>
          <input id="current_password" name="current_password" type="password" autocomplete="current-password" required />
        </>
      )}
      <label for="new_password">New password</label>
      <input id="new_password" name="new_password" type="password" autocomplete="new-password" required />
      <button type="submit">{first ? "Set password" : "Change password"}</button>
    </form>
  );
}

function PasswordSection(view: AccountView) {
  const { hasPassword, passkeys } = view.waysIn;
  return (
    <section id="password" aria-labelledby="password-title">
      <h2 id="password-title">Password</h2>
      <Said flash={view.flash} forms={["password", "password-remove"]} />
      {hasPassword ? (
        <>
          <PasswordForm view={view} first={false} />
          <p class="muted">Your other devices are signed out; this one stays signed in.</p>
        </>
      ) : (
        <>
          <p>Your account has no password: you sign in with a passkey.</p>
          <details open={messageFor(view.flash, "password")?.kind === "error"}>
            <summary>Set a password</summary>
            <PasswordForm view={view} first />
          </details>
        </>
      )}
      {/* Not the last way in: a password goes only while a passkey remains. */}
      {hasPassword && passkeys > 0 ? (
        <details open={messageFor(view.flash, "password-remove")?.kind === "error"}>
          <summary>Remove password</summary>
          <p>Your account will sign in with its passkeys only, and your other devices are signed out. Type your password to confirm.</p>
          <ConfirmedByPassword view={view} action="/account/password/remove" form="password-remove" field={{ id: "remove_password", name: "current_password" }} button="Remove my password" />
        </details>
      ) : (
        ""
      )}
    </section>
  );
}

function TwoStepSection(view: AccountView) {
  const factors = view.secondFactors;
  return (
    <section id="two-step" aria-labelledby="two-step-title">
      <h2 id="two-step-title">Two-step sign-in</h2>
      {/* A wrong first code is said beside the code field, below the QR code; the rest here. */}
      <Said flash={view.flash} forms={["totp-start", "totp-cancel", "totp-delete", "recovery-codes", ...(view.enrolment ? [] : ["totp-confirm"])]} />
      {factors.totp ? (
        <>
          <p>
            <span class="badge ok">On</span> Sign-in asks for a code from your authenticator app after your password.
          </p>
          <p safe>{`${factors.recovery_codes_left} of 10 recovery codes left.`}</p>
          <form method="post" action="/account/mfa/recovery-codes">
            <Csrf token={view.csrf("recovery-codes")} />
            <button type="submit" class="secondary">
              Make new recovery codes
            </button>
          </form>
          <details open={messageFor(view.flash, "totp-delete")?.kind === "error"}>
            <summary>Turn off two-step sign-in</summary>
            <ConfirmedByPassword view={view} action="/account/mfa/totp/delete" form="totp-delete" field={{ id: "totp_password", name: "password" }} button="Turn off the authenticator" />
          </details>
        </>
      ) : view.enrolment ? (
        <>
          <AuthenticatorSetup secret={view.enrolment.secret} qrSvg={view.enrolment.qrSvg} />
          <Said flash={view.flash} forms="totp-confirm" />
          <form method="post" action="/account/mfa/totp/confirm" class="stack">
            <Csrf token={view.csrf("totp-confirm")} />
            <label for="totp_code">6-digit code from the app</label>
            <input id="totp_code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="10" required autofocus />
            <button type="submit">Turn on</button>
          </form>
          <form method="post" action="/account/mfa/totp/cancel" class="actions">
            <Csrf token={view.csrf("totp-cancel")} />
            <button type="submit" class="secondary">
              Cancel
            </button>
          </form>
        </>
      ) : (
        <form method="post" action="/account/mfa/totp">
          <Csrf token={view.csrf("totp-start")} />
          {view.passkeys.length > 0 ? (
            // A passkey is already the second step after a password (auth/second-step.ts): say so, not "Off".
            <p>
              <span class="badge ok">On</span> After your password, sign-in asks for one of your passkeys. An authenticator app on your phone can be a second way in, for when no passkey is at hand.
            </p>
          ) : (
            <p>
              <span class="badge off">Off</span> Add a code from an authenticator app on your phone after your password: a stolen password alone no longer opens your account.
            </p>
          )}
          <button type="submit">Set up an authenticator app</button>
        </form>
      )}
    </section>
  );
}

function DevicesSection(view: AccountView) {
  const others = view.sessions.filter((session) => !session.current).length;
  return (
    <section id="devices" aria-labelledby="devices-title">
      <h2 id="devices-title">Devices</h2>
      <p class="muted">Where you are signed in.</p>
      <Said flash={view.flash} forms={["session-revoke", "session-revoke-others"]} />
      <DataTable
        label="Devices"
        columns={[{ label: "Device" }, { label: "Address" }, { label: "Signed in" }, { label: "Last seen" }, { label: "", kind: "end" }]}
        rows={view.sessions}
        cells={(session) => [
          <Device userAgent={session.userAgent} />,
          <Cut text={session.ip || "unknown"} />,
          <When date={session.createdAt} />,
          <When date={session.lastSeenAt} />,
          session.current ? (
            <strong>This device</strong>
          ) : (
            // Signing a device out asks first, on its own page (no script), naming the device.
            <a class="button danger" href={`/account/devices/${session.id}`} aria-label={`Sign out ${deviceName(session.userAgent)}…`}>
              Sign out…
            </a>
          ),
        ]}
      />
      {others > 0 ? (
        <form method="post" action="/account/sessions/revoke-others" class="actions">
          <Csrf token={view.csrf("session-revoke-others")} />
          <button type="submit" class="danger">
            Sign out all other devices
          </button>
        </form>
      ) : (
        ""
      )}
    </section>
  );
}

function AdvancedSection(view: AccountView) {
  const keyMessage = messageFor(view.flash, ["key-create", "key-delete"]);
  const appMessage = messageFor(view.flash, "application-revoke");
  return (
    <section id="advanced" aria-labelledby="advanced-title">
      <h2 id="advanced-title">Advanced</h2>
      <details open={Boolean(keyMessage || appMessage || view.keys.length)} id="keys">
        <summary>API keys</summary>
        <p class="muted">For scripts and programs that sign in as you. Most people need none.</p>
        <Said flash={view.flash} forms={["key-create", "key-delete"]} />
        {keyMessage?.newKey ? (
          <div class="message notice">
            <p safe>{`Copy the key "${keyMessage.newKey.name}" now: it is shown this once, and only its hash is kept.`}</p>
            <p class="secret" id="new-key" safe>
              {keyMessage.newKey.secret}
            </p>
          </div>
        ) : (
          ""
        )}
        <DataTable
          label="API keys"
          columns={[{ label: "Name" }, { label: "Key" }, { label: "Created" }, { label: "Last used" }, { label: "Expires" }, { label: "", kind: "end" }]}
          rows={view.keys}
          empty="No API keys yet."
          cells={(key) => [
            <Cut text={key.name} />,
            <code safe>{`lk_${key.prefix}…`}</code>,
            <When date={key.created_at} />,
            <When date={key.last_used_at} />,
            <When date={key.expires_at} never="never" />,
            <RowAction action="/account/keys/delete" csrf={view.csrf("key-delete")} fields={{ key_id: key.key_id }} label="Delete" kind="danger" />,
          ]}
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
      </details>
      <details open={Boolean(appMessage || view.applications.length)} id="applications">
        <summary>Applications</summary>
        <p class="muted">Applications you allowed to sign you in. Withdrawing signs you out of one; it asks again next time.</p>
        <Said flash={view.flash} forms="application-revoke" />
        <DataTable
          label="Applications"
          columns={[{ label: "Application" }, { label: "Allowed" }, { label: "", kind: "end" }]}
          rows={view.applications}
          empty="No application has asked to sign you in yet."
          cells={(application) => [
            <Cut text={application.client_id} />,
            <When date={application.created_at} />,
            <RowAction action="/account/applications/revoke" csrf={view.csrf("application-revoke")} fields={{ client_id: application.client_id }} label="Withdraw" kind="danger" />,
          ]}
        />
      </details>
    </section>
  );
}

/** The account page, family first: who you are, password, passkeys, two-step sign-in, devices; API keys and applications under Advanced. */
export function AccountPage(view: AccountView) {
  return (
    <Layout appName={view.appName} title="Your account" nav={<SignedInNav username={view.username} isAdmin={view.isAdmin} csrf={view.csrf("logout")} current="/account" />}>
      <ProfileSection {...view} />
      <PasswordSection {...view} />
      <PasskeysSection passkeys={view.passkeys} flash={view.flash} />
      <TwoStepSection {...view} />
      <DevicesSection {...view} />
      <AdvancedSection {...view} />
    </Layout>
  );
}

/** GET /account/devices/:id: asks before signing one device out, naming it. */
export function SignOutDevicePage(view: { appName: string; nav: JSX.Element; session: AccountSession; csrf: string }) {
  return (
    <Layout appName={view.appName} title="Sign out a device" nav={view.nav} narrow>
      <section>
        <h1>Sign out this device?</h1>
        <dl class="facts">
          <dt>Device</dt>
          <dd>
            <Device userAgent={view.session.userAgent} />
          </dd>
          <dt>Address</dt>
          <dd>
            <Cut text={view.session.ip || "unknown"} />
          </dd>
          <dt>Signed in</dt>
          <dd>
            <When date={view.session.createdAt} />
          </dd>
          <dt>Last seen</dt>
          <dd>
            <When date={view.session.lastSeenAt} />
          </dd>
        </dl>
        <p>Whoever uses it will have to sign in again. If you do not know this device, change your password too.</p>
        <form method="post" action="/account/sessions/revoke" class="stack">
          <Csrf token={view.csrf} />
          <input type="hidden" name="session_id" value={view.session.id} />
          <button type="submit" class="danger solid">
            Sign out this device
          </button>
        </form>
        <p>
          <a href="/account#devices">Keep it signed in</a>
        </p>
      </section>
    </Layout>
  );
}
