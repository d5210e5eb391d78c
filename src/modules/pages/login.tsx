import { Alert, Csrf, Layout } from "./layout";

export interface LoginView {
  appName: string;
  csrf: string;
  rd: string | undefined;
  login?: string;
  error?: string;
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
      </section>
    </Layout>
  );
}
