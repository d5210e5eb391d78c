import { Alert, Csrf, Layout } from "./layout";

export interface AccountView {
  appName: string;
  username: string;
  email: string | null;
  roles: string[];
  isAdmin: boolean;
  csrf: (form: string) => string;
  notice?: string;
  error?: string;
}

/** Navigation of the signed-in pages, with the sign-out button (a form: signing out changes state). */
export function SignedInNav({ username, isAdmin, csrf }: { username: string; isAdmin: boolean; csrf: string }) {
  return (
    <nav>
      <a href="/account">Account</a>
      {isAdmin ? <a href="/admin">Admin</a> : ""}
      <span class="muted" safe>
        {username}
      </span>
      <form method="post" action="/logout" class="inline">
        <Csrf token={csrf} />
        <button type="submit" class="secondary">
          Sign out
        </button>
      </form>
    </nav>
  );
}

export function AccountPage(view: AccountView) {
  return (
    <Layout
      appName={view.appName}
      title="Your account"
      nav={<SignedInNav username={view.username} isAdmin={view.isAdmin} csrf={view.csrf("logout")} />}
    >
      <Alert message={view.notice} kind="notice" />
      <Alert message={view.error} />
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
    </Layout>
  );
}
