import { AUTH_PREFIX } from "../../http/routes";
import { Alert, Layout, MessagePage, PAGE_CSP } from "../pages/layout";
import { pageHeaders } from "../pages/respond";

/**
 * The pages the mailed links open (a browser follows them, not an API client), in the sign-in pages' layout.
 * The reset form posts only to this origin and is not redirected after, so these pages can also pin form-action.
 */
const mailedLinkCsp = () => `${PAGE_CSP}; form-action 'self'`;

/** A mailed link's page as a Response: the pages' headers, with form-action pinned. */
export function mailedLinkPage(status: number, html: string): Response {
  return new Response(html, {
    status,
    headers: { ...pageHeaders(), "content-security-policy": mailedLinkCsp() },
  });
}

/** "Done" or "this link does not work": a title and one sentence, with the way to the sign-in page. */
export function linkOutcome(appName: string, title: string, message: string): string {
  return String(<MessagePage appName={appName} title={title} message={message} link={{ href: "/login", text: "Sign in" }} />);
}

/** The reset link's form: the link's token rides along hidden; a refused password comes back above it. */
export function resetPasswordForm(appName: string, token: string, problem?: string): string {
  return String(
    <Layout appName={appName} title="Choose a new password" narrow>
      <Alert message={problem} />
      <section>
        <h1>Choose a new password</h1>
        <form method="post" action={`${AUTH_PREFIX}/password/reset`} class="stack">
          <input type="hidden" name="token" value={token} />
          <label for="new_password">New password</label>
          <input id="new_password" type="password" name="new_password" autocomplete="new-password" required />
          <button type="submit">Set the new password</button>
        </form>
      </section>
    </Layout>,
  );
}
