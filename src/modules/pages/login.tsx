import { Alert, Csrf, Layout } from "./layout";

export interface LoginView {
  appName: string;
  csrf: string;
  rd: string | undefined;
  login?: string;
  error?: string;
  /** Mail is on: the form links to the forgot-password page. */
  canReset?: boolean;
  /** ALLOW_REGISTRATION=true: the form links to the sign-up page. */
  canSignUp?: boolean;
}

/** The sign-in form. A second sign-in step (an emailed code, TOTP) renders its own page after this one. */
export function LoginPage(view: LoginView) {
  return (
    <Layout appName={view.appName} title="Sign in" narrow>
      <Alert message={view.error} />
      <section>
        <h1>Sign in</h1>
        <form method="post" action="/login" class="stack">
          <Csrf token={view.csrf} />
          {view.rd ? <input type="hidden" name="rd" value={view.rd} /> : ""}
          <label for="login">Username or email</label>
          <input id="login" name="login" autocomplete="username" required autofocus value={view.login ?? ""} maxlength="254" />
          <label for="password">Password</label>
          <input id="password" name="password" type="password" autocomplete="current-password" required />
          <button type="submit">Sign in</button>
        </form>
        {view.canReset ? (
          <p>
            <a href="/password/forgot">Forgot your password?</a>
          </p>
        ) : (
          ""
        )}
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
}

/** The second sign-in step (issue 13): the emailed code, the authenticator's code, or a recovery code. */
export function SecondStepPage(view: SecondStepView) {
  const asks = view.methods.includes("totp_enrollment")
    ? "Your account needs an authenticator app. Scan the code (or type the key), then enter the 6-digit code it shows."
    : view.methods.includes("totp")
      ? "Enter the 6-digit code from your authenticator app" + (view.methods.includes("email_code") ? ", or the code we emailed you." : ".")
      : "Enter the code we emailed you.";
  return (
    <Layout appName={view.appName} title="Second step" narrow>
      <Alert message={view.error} />
      <section>
        <h1>One more step</h1>
        <p safe>{asks}</p>
        {view.enrollment ? (
          <p>
            <img alt="Authenticator QR code" width="200" height="200" src={`data:image/svg+xml;base64,${Buffer.from(view.enrollment.qrSvg).toString("base64")}`} />
            <br />
            <span class="secret" safe>
              {view.enrollment.secret}
            </span>
          </p>
        ) : (
          ""
        )}
        <form method="post" action="/login/verify" class="stack">
          <Csrf token={view.csrf} />
          <input type="hidden" name="challenge_id" value={view.challengeId} />
          <input type="hidden" name="methods" value={view.methods.join(",")} />
          {view.rd ? <input type="hidden" name="rd" value={view.rd} /> : ""}
          <label for="code">Code</label>
          <input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="10" autofocus />
          {view.methods.includes("recovery_code") ? (
            <>
              <label for="recovery_code">Or a recovery code</label>
              <input id="recovery_code" name="recovery_code" autocomplete="off" maxlength="64" />
            </>
          ) : (
            ""
          )}
          <button type="submit">Continue</button>
        </form>
      </section>
    </Layout>
  );
}

/** After an enrolment at sign-in: the recovery codes, shown this once, and the way on. */
export function RecoveryCodesPage({ appName, codes, next }: { appName: string; codes: string[]; next: string }) {
  return (
    <Layout appName={appName} title="Recovery codes" narrow>
      <section>
        <h1>Save your recovery codes</h1>
        <p>Each works once if you lose your authenticator. They are shown only now.</p>
        <ul class="secret">
          {codes.map((code) => (
            <li safe>{code}</li>
          ))}
        </ul>
        <p>
          <a class="button" href={next}>
            Continue
          </a>
        </p>
      </section>
    </Layout>
  );
}

/** Asks for the address a reset code and link go to (the answer is the same for every address). */
export function ForgotPasswordPage(view: { appName: string; csrf: string; error?: string }) {
  return (
    <Layout appName={view.appName} title="Forgot your password?" narrow>
      <Alert message={view.error} />
      <section>
        <h1>Forgot your password?</h1>
        <p>Enter your account's email address: if it is verified, a code and a link to choose a new password are mailed to it.</p>
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
