import { Elysia } from "elysia";
import type { User } from "../../db/schema";
import { ApiError } from "../../errors";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import type { IpLimit } from "../../limits/plugin";
import type { AuthService } from "../auth/service";
import { sameOriginPost, type FormTokens } from "./csrf";
import { Alert, Csrf, Layout, MessagePage } from "./layout";
import { field, htmlPage, passRetryAfter, seeOther, type PageSet } from "./respond";
import type { BrowserSessions } from "./session";

export interface SignUpView {
  appName: string;
  title: string;
  intro: string;
  action: string;
  csrf: string;
  username?: string;
  /** The address the account will have when an invitation pins it (shown, not asked). */
  pinnedEmail?: string | null;
  email?: string;
  /** REQUIRE_EMAIL_VERIFICATION: the address is required. */
  emailRequired: boolean;
  /** Every problem of the last post, shown beside the form. */
  errors?: string[];
  /** An invitation's page: a second button makes the account without a password, to set up a passkey first. */
  passkeyOption?: boolean;
}

/** The sign-up form: the open registration's (/signup) and an invitation's (/invite/<token>). No script. */
function SignUpPage(view: SignUpView) {
  return (
    <Layout appName={view.appName} title={view.title} narrow>
      <section aria-labelledby="signup-title">
        <h1 id="signup-title" safe>
          {view.title}
        </h1>
        <p safe>{view.intro}</p>
        {(view.errors ?? []).map((error) => (
          <Alert message={error} />
        ))}
        <form method="post" action={view.action} class="stack">
          <Csrf token={view.csrf} />
          <label for="username">Username</label>
          <input id="username" name="username" autocomplete="username" required autofocus maxlength="32" value={view.username ?? ""} />
          <p class="muted">3 to 32 characters: a-z, 0-9, ".", "_" or "-".</p>
          {view.pinnedEmail ? (
            <>
              <label for="email">Email</label>
              <input id="email" type="email" value={view.pinnedEmail} readonly disabled />
              <p class="muted">This invitation is for this address.</p>
            </>
          ) : (
            <>
              <label for="email">{view.emailRequired ? "Email" : "Email (optional)"}</label>
              <input id="email" name="email" type="email" autocomplete="email" maxlength="254" required={view.emailRequired} value={view.email ?? ""} />
            </>
          )}
          <label for="password">Password</label>
          <input id="password" name="password" type="password" autocomplete="new-password" required />
          <button type="submit">Create account</button>
          {view.passkeyOption ? (
            <>
              {/* formnovalidate: the password field is not needed for this one. */}
              <button type="submit" name="method" value="passkey" class="secondary" formnovalidate>
                Use a passkey instead
              </button>
              <p class="muted">Your account gets no password: you add a passkey (your phone, computer or security key) right after.</p>
            </>
          ) : (
            ""
          )}
        </form>
        <p>
          Already have an account? <a href="/login">Sign in</a>
        </p>
      </section>
    </Layout>
  );
}

/** What a refused sign-up says beside the form: each field's problem, or the error's sentence. */
export const signUpErrors = (error: ApiError): string[] =>
  error.status === 429 ? ["Too many attempts. Try again later."] : error.details?.length ? error.details.map((detail) => detail.message) : [error.message];

export interface SignUpDeps {
  appName: string;
  origins: ReadonlySet<string>;
  browser: BrowserSessions;
  forms: FormTokens;
  auth: AuthService;
  ipLimit: IpLimit;
  withRequester: RequesterPlugin;
  allowRegistration: boolean;
  requireEmailVerification: boolean;
}

/**
 * What the sign-up pages share: the pre-session binding of their CSRF tokens, the gate of their posts, and the
 * way on once the account exists.
 */
export function signUpFlow(deps: SignUpDeps) {
  const { appName, origins, browser, forms, auth } = deps;
  const message = (set: PageSet, status: number, title: string, text: string, link = { href: "/login", text: "Sign in" }) =>
    htmlPage(set, status, String(<MessagePage appName={appName} title={title} message={text} link={link} />));

  return {
    message,

    /** The sign-up form's page. */
    page: (set: PageSet, status: number, view: Omit<SignUpView, "appName" | "emailRequired">) =>
      htmlPage(set, status, String(<SignUpPage appName={appName} emailRequired={deps.requireEmailVerification} {...view} />)),

    /** The browser's pre-session binding (the sign-in page's), set on the answer when it has none yet. */
    bindingOf(request: Request, set: PageSet): string {
      const existing = browser.binding(request);
      if (existing && existing.length <= 64) return existing;
      const fresh = forms.newBinding();
      browser.setBinding(set.headers, browser.hostOf(request), fresh);
      return fresh;
    },

    /** A post from our own origin with this browser's token for `form`; else the 403 page to answer. */
    refused(request: Request, body: unknown, set: PageSet, form: string, again: string): string | undefined {
      const binding = browser.binding(request);
      if (sameOriginPost(request, origins) && binding && forms.check(form, binding, field(body, "csrf"))) return undefined;
      return message(set, 403, "Request refused", "This form expired or came from another site. Open the page again.", { href: again, text: "Open it again" });
    },

    /**
     * The new account signs in at once through the sign-in page's own path (the same checks: a verified address
     * under REQUIRE_EMAIL_VERIFICATION, a second step under MFA_REQUIRED_ROLES or LOGIN_EMAIL_CODE); when that
     * path asks for more, the person is sent to sign in, never given a session that skips it.
     */
    async finish(request: Request, set: PageSet, user: User, password: string, client: ClientInfo): Promise<string> {
      try {
        const result = await auth.signInBrowser(user.username, password, client);
        if (result.challenge) return message(set, 201, "Account created", "Your account is ready. Sign in to finish setting it up.");
        const host = browser.hostOf(request);
        browser.setSession(set.headers, host, result.session.token);
        browser.setDevice(set.headers, host, result.device);
        return seeOther(set, "/account");
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.status === 429) passRetryAfter(set, error);
        if (error.code === "user_not_verified")
          return message(set, 201, "Check your mail", "Your account is created. Confirm your email address with the code or link we sent, then sign in.");
        return message(set, 201, "Account created", "Your account is ready: sign in.");
      }
    },
  };
}

/** GET and POST /signup: the open registration's page (ALLOW_REGISTRATION=true), a 404 page otherwise. */
export function signUpPages(deps: SignUpDeps) {
  const { auth, ipLimit, withRequester, allowRegistration } = deps;
  const flow = signUpFlow(deps);
  const closed = (set: PageSet) =>
    flow.message(set, 404, "Registration is closed", "This server does not take new accounts. Ask its administrator for an invitation.");
  const form = (set: PageSet, status: number, binding: string, extra: Partial<SignUpView> = {}) =>
    flow.page(set, status, { title: "Create an account", intro: "Choose a username and a password.", action: "/signup", csrf: deps.forms.issue("signup", binding), ...extra });

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    .get("/signup", ({ request, set }) => (allowRegistration ? form(set, 200, flow.bindingOf(request, set)) : closed(set)), { detail: { hide: true } })
    .post(
      "/signup",
      async ({ request, body, set, requester }) => {
        if (!allowRegistration) return closed(set);
        const refusal = flow.refused(request, body, set, "signup", "/signup");
        if (refusal !== undefined) return refusal;
        const binding = flow.bindingOf(request, set);
        const input = { username: field(body, "username")?.trim() ?? "", password: field(body, "password") ?? "", email: field(body, "email")?.trim() || null };
        try {
          // The per-address limit of POST /api/v1/auth/register, before any hashing.
          ipLimit(requester, "/signup");
          const user = await auth.createAccount(input, requester);
          return await flow.finish(request, set, user, input.password, requester);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.status === 429) passRetryAfter(set, error);
          return form(set, error.status, binding, { username: input.username, email: input.email ?? "", errors: signUpErrors(error) });
        }
      },
      { detail: { hide: true } },
    );
}
