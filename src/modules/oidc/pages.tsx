/** The provider's own pages (consent, errors, sign-out), in the sign-in pages' layout: no script, their CSP. */
import { Csrf, Layout, MessagePage } from "../pages/layout";

export function messagePage(appName: string, title: string, message: string): string {
  return String(<MessagePage appName={appName} title={title} message={message} />);
}

/** `items`: what the app will receive, one line each (claims.ts's consentItems, from the scopes asked). */
export function consentPage(input: { appName: string; clientId: string; username: string; items: string[]; request: string; csrf: string }): string {
  return String(
    <Layout appName={input.appName} title={`Allow ${input.clientId}?`} narrow>
      <section>
        <h1 safe>{`Allow ${input.clientId} to sign you in?`}</h1>
        <p>
          Signed in as <strong safe>{input.username}</strong>. The application will receive:
        </p>
        <ul>
          {input.items.map((item) => (
            <li safe>{item}</li>
          ))}
        </ul>
        <form method="post" action="/oidc/authorize/consent" class="row">
          <input type="hidden" name="request" value={input.request} />
          <Csrf token={input.csrf} />
          <button type="submit" name="decision" value="allow">
            Allow
          </button>
          <button type="submit" name="decision" value="deny" class="secondary">
            Deny
          </button>
        </form>
        <p class="muted">You can withdraw this on your account page.</p>
      </section>
    </Layout>,
  );
}

export function logoutConfirmPage(input: { appName: string; fields: Record<string, string>; csrf: string; username: string }): string {
  return String(
    <Layout appName={input.appName} title="Sign out" narrow>
      <section>
        <h1>Sign out?</h1>
        <p>
          You are signed in as <strong safe>{input.username}</strong>.
        </p>
        <form method="post" action="/oidc/logout" class="stack">
          {Object.entries(input.fields).map(([name, value]) => (
            <input type="hidden" name={name} value={value} />
          ))}
          <Csrf token={input.csrf} />
          <button type="submit" name="confirm" value="yes">
            Sign out
          </button>
        </form>
      </section>
    </Layout>,
  );
}

/** prompt=select_account (OpenID Connect Core §3.1.2.1): go on as the signed-in user, or sign in as another. */
export function accountChoicePage(input: { appName: string; clientId: string; username: string; continueUrl: string; otherUrl: string }): string {
  return String(
    <Layout appName={input.appName} title="Choose an account" narrow>
      <section>
        <h1 safe>{`Sign in to ${input.clientId}`}</h1>
        <p>
          You are signed in as <strong safe>{input.username}</strong>.
        </p>
        <p class="row">
          <a class="button" href={input.continueUrl}>
            Continue as <span safe>{input.username}</span>
          </a>
        </p>
        <p>
          <a href={input.otherUrl}>
            Not you? Sign in as someone else
          </a>
        </p>
      </section>
    </Layout>,
  );
}
