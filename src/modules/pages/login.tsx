import { Alert, Csrf, Layout, PasskeyControls } from "./layout";
import { AuthenticatorSetup, RecoveryCodes } from "./two-step";

export interface LoginView {
  appName: string;
  csrf: string;
  rd: string | undefined;
  login?: string;
  error?: string;
  /** Mail is on: the form links to the forgot-password page. */
  canReset?: boolean;
  /** "You are signed out", after a sign-out. */
  notice?: string;
  /** The app (its host) `rd` goes on to, if another than this sign-in host. */
  continueTo?: string;
  /** After a wrong password: the cursor waits in the password field (autofocus, no script). */
  focusPassword?: boolean;
  /** The account's address is not verified: a link to the page where the mailed code is typed. */
  unverified?: boolean;
  /** This host is under the passkeys' RP ID: the passkey button and autofill (with the page's one script). */
  passkeys?: boolean;
  /** ALLOW_REGISTRATION=true: the form links to the sign-up page. */
  canSignUp?: boolean;
}

/** The sign-in form. A second sign-in step (an emailed code, TOTP) renders its own page after this one. */
export function LoginPage(view: LoginView) {
  return (
    <Layout appName={view.appName} title="Sign in" narrow>
      <section>
        <h1>Sign in</h1>
        {view.continueTo ? (
          <p>
            {"Sign in to continue to "}
            <strong safe>{view.continueTo}</strong>
          </p>
        ) : (
          ""
        )}
        <Alert message={view.notice} kind="notice" />
        <Alert message={view.error} />
        {view.unverified ? (
          <p>
            <a href="/verify-email">Verify your email address</a>
          </p>
        ) : (
          ""
        )}
        <form method="post" action="/login" class="stack">
          <Csrf token={view.csrf} />
          {view.rd ? <input type="hidden" name="rd" value={view.rd} /> : ""}
          <label for="login">Username or email</label>
          <input
            id="login"
            name="login"
            autocomplete={view.passkeys ? "username webauthn" : "username"}
            required
            autofocus={!view.focusPassword}
            value={view.login ?? ""}
            maxlength="254"
          />
          <label for="password">Password</label>
          <input id="password" name="password" type="password" autocomplete="current-password" required autofocus={view.focusPassword} />
          <button type="submit">Sign in</button>
        </form>
        {view.passkeys ? (
          // Usernameless: the script fills `credential` with the browser's answer and posts this form. Without
          // JavaScript the button stays hidden and the password form above is the way in.
          <form method="post" action="/login/passkey" id="passkey-form" class="stack" data-ceremony="sign-in">
            <Csrf token={view.csrf} />
            {view.rd ? <input type="hidden" name="rd" value={view.rd} /> : ""}
            <input type="hidden" name="credential" value="" />
            <PasskeyControls label="Sign in with a passkey" secondary />
          </form>
        ) : (
          ""
        )}
        {view.canReset ? (
          <p>
            <a href="/password/forgot">Forgot your password?</a>
          </p>
        ) : (
          ""
        )}
        <p>
          <a href="/login/lost-passkey">Lost your passkey?</a>
        </p>
        {view.canSignUp ? (
          <p>
            No account yet? <a href="/signup">Create an account</a>
          </p>
        ) : (
          ""
        )}
      </section>
    </Layout>
  );
}

export interface SecondStepView {
  appName: string;
  csrf: string;
  rd: string | undefined;
  challengeId: string;
  methods: string[];
  error?: string;
  /** MFA_REQUIRED_ROLES: the authenticator to set up before this sign-in completes. */
  enrollment?: { secret: string; qrSvg: string };
  /** `passkey` is among the methods and this host is under the passkeys' RP ID: "Use a passkey" (the page's one script). */
  passkey?: boolean;
}

/** What the page asks for a code, if any of the methods is one. */
function codeAsk(methods: string[]): string | undefined {
  if (methods.includes("totp_enrollment")) return "Your account needs two-step sign-in: set up an authenticator app now.";
  if (methods.includes("totp")) return "Enter the 6-digit code from your authenticator app" + (methods.includes("email_code") ? ", or the code we emailed you." : ".");
  if (methods.includes("email_code")) return "Enter the code we emailed you.";
  return undefined;
}

/** The hidden fields both forms of the page post to /login/verify. */
function ChallengeFields(view: SecondStepView) {
  return (
    <>
      <Csrf token={view.csrf} />
      <input type="hidden" name="challenge_id" value={view.challengeId} />
      <input type="hidden" name="methods" value={view.methods.join(",")} />
      {view.rd ? <input type="hidden" name="rd" value={view.rd} /> : ""}
    </>
  );
}

/**
 * The second sign-in step (issue 13): the emailed code, the authenticator's code, a recovery code, or (issue 25)
 * one of the account's passkeys, whose button the script shows; without JavaScript the codes still work.
 */
export function SecondStepPage(view: SecondStepView) {
  const codes = codeAsk(view.methods);
  const asks = view.passkey ? (codes ? `Use your passkey, or ${codes.charAt(0).toLowerCase()}${codes.slice(1)}` : "Use your passkey to finish signing in.") : (codes ?? "Use your passkey to finish signing in.");
  return (
    <Layout appName={view.appName} title="Second step" narrow>
      <section>
        <h1>One more step</h1>
        <p safe>{asks}</p>
        {view.enrollment ? <AuthenticatorSetup secret={view.enrollment.secret} qrSvg={view.enrollment.qrSvg} /> : ""}
        <Alert message={view.error} />
        {view.passkey ? (
          // The script asks for the challenge's passkey options, fills `credential` and posts this form.
          <form method="post" action="/login/verify" id="passkey-form" class="stack" data-ceremony="second-step">
            <ChallengeFields {...view} />
            <input type="hidden" name="credential" value="" />
            {codes ? (
              ""
            ) : (
              <p id="passkey-needs-script" class="message error">
                Signing in with a passkey needs JavaScript, which is off in this browser. Turn it on for this site, or use another browser.
              </p>
            )}
            <PasskeyControls label="Use a passkey" />
          </form>
        ) : (
          ""
        )}
        {codes ? (
          <form method="post" action="/login/verify" class="stack">
            <ChallengeFields {...view} />
            <label for="code">6-digit code</label>
            <input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="10" autofocus={!view.passkey} />
            {view.methods.includes("recovery_code") ? (
              <>
                <label for="recovery_code">Or a recovery code</label>
                <input id="recovery_code" name="recovery_code" autocomplete="off" maxlength="64" />
              </>
            ) : (
              ""
            )}
            <button type="submit" class={view.passkey ? "secondary" : undefined}>
              Continue
            </button>
          </form>
        ) : (
          ""
        )}
      </section>
    </Layout>
  );
}

/** After an enrolment at sign-in: the recovery codes, shown this once, and the way on. */
export function RecoveryCodesPage({ appName, codes, next }: { appName: string; codes: string[]; next: string }) {
  return (
    <Layout appName={appName} title="Recovery codes" narrow>
      <section>
        <RecoveryCodes appName={appName} codes={codes} next={next} />
      </section>
    </Layout>
  );
}

/** Asks for the address a reset code and link go to (the answer is the same for every address). */
export function ForgotPasswordPage(view: { appName: string; csrf: string; error?: string }) {
  return (
    <Layout appName={view.appName} title="Forgot your password?" narrow>
      <section>
        <h1>Forgot your password?</h1>
        <p>Enter your account's email address: if it is verified, a code and a link to choose a new password are mailed to it.</p>
        <Alert message={view.error} />
        <form method="post" action="/password/forgot" class="stack">
          <Csrf token={view.csrf} />
          <label for="email">Email address</label>
          <input id="email" name="email" type="email" autocomplete="email" required autofocus maxlength="254" />
          <button type="submit">Send</button>
        </form>
      </section>
    </Layout>
  );
}

/** GET /logout: asks before signing out (the 403 page's "Sign out" and "Switch account" links land here). */
export function SignOutPage(view: { appName: string; username: string; csrf: string; rd?: string; switching: boolean }) {
  return (
    <Layout appName={view.appName} title={view.switching ? "Switch account" : "Sign out"} narrow>
      <section>
        <h1>{view.switching ? "Switch account" : "Sign out"}</h1>
        <p>
          {"You are signed in as "}
          <strong safe>{view.username}</strong>.
          {view.switching ? " Sign out, then sign in with another account." : ""}
        </p>
        <form method="post" action="/logout" class="stack">
          <Csrf token={view.csrf} />
          {view.rd ? <input type="hidden" name="rd" value={view.rd} /> : ""}
          <button type="submit">{view.switching ? "Sign out and switch" : "Sign out"}</button>
        </form>
        <p>
          <a href="/account">Stay signed in</a>
        </p>
      </section>
    </Layout>
  );
}
