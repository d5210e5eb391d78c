import { Elysia } from "elysia";
import { ApiError } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import type { FallbackSignIn, PasskeyFallbacks } from "../auth/passkey-fallbacks";
import type { Flashes } from "./flash";
import { Alert, Csrf, Layout, MessagePage } from "./layout";
import { field, htmlPage, passRetryAfter, seeOther, type PageSet } from "./respond";
import type { BrowserSessions } from "./session";
import { signUpFlow, type SignUpDeps } from "./signup";

/** Where every passkey-first and lost-device path ends (the page is pk-pages'): the flash says why. */
const ADD_PASSKEY_PATH = "/account/passkeys/add";
const FINISH_SETUP = "Add a passkey to finish setting up your account.";
const ADD_NEW_PASSKEY = "Add a new passkey.";

/**
 * Signs the browser in with a fallback's session and sends it to add a passkey, with the sentence that says why
 * (a flash bound to the new session, flash.ts).
 */
export function toAddPasskey(deps: { browser: BrowserSessions; flashes: Flashes }, request: Request, set: PageSet, signedIn: FallbackSignIn): string {
  const host = deps.browser.hostOf(request);
  deps.browser.setSession(set.headers, host, signedIn.session.token);
  deps.browser.setDevice(set.headers, host, signedIn.device);
  deps.flashes.put(request, set, signedIn.session.sessionId, { form: "passkey-add", kind: "notice", text: signedIn.purpose === "setup" ? FINISH_SETUP : ADD_NEW_PASSKEY });
  return seeOther(set, ADD_PASSKEY_PATH);
}

interface LostPasskeyView {
  appName: string;
  csrf: (form: string) => string;
  mailEnabled: boolean;
  error?: string;
  login?: string;
}

/** "Lost your passkey?": a recovery code (with the username), or a link by mail. No script. */
function LostPasskeyPage(view: LostPasskeyView) {
  return (
    <Layout appName={view.appName} title="Lost your passkey?" narrow>
      <section aria-labelledby="lost-title">
        <h1 id="lost-title">Lost your passkey?</h1>
        <p>Sign in once another way, then add a new passkey. If your account has a password, sign in with it instead: a recovery code answers the second step there.</p>
        <Alert message={view.error} />
        <h2>With a recovery code</h2>
        <form method="post" action="/login/lost-passkey" class="stack">
          <Csrf token={view.csrf("lost-passkey")} />
          <label for="login">Username or email</label>
          <input id="login" name="login" autocomplete="username" required maxlength="254" value={view.login ?? ""} />
          <label for="recovery_code">Recovery code</label>
          <input id="recovery_code" name="recovery_code" autocomplete="one-time-code" required maxlength="64" spellcheck="false" />
          <button type="submit">Sign in with the recovery code</button>
        </form>
        {view.mailEnabled ? (
          <>
            <h2>With a link by mail</h2>
            <form method="post" action="/login/lost-passkey/email" class="stack">
              <Csrf token={view.csrf("lost-passkey-email")} />
              <label for="email">Your account's email address</label>
              <input id="email" name="email" type="email" autocomplete="email" required maxlength="254" />
              <button type="submit" class="secondary">
                Mail me a sign-in link
              </button>
            </form>
            <p class="muted">Only to a verified address of an account without a password.</p>
          </>
        ) : (
          ""
        )}
        <p>
          No recovery code? Ask your administrator to reset your passkeys. <a href="/login">Back to sign-in</a>
        </p>
      </section>
    </Layout>
  );
}

/** The page a link opens: one button, so that a mail scanner's GET spends nothing. */
function ContinuePage(props: { appName: string; title: string; text: string; action: string; csrf: string }) {
  return (
    <MessagePage appName={props.appName} title={props.title} message={props.text}>
      <form method="post" action={props.action} class="stack">
        <Csrf token={props.csrf} />
        <button type="submit">Continue</button>
      </form>
    </MessagePage>
  );
}

export interface LostPasskeyDeps extends SignUpDeps {
  flashes: Flashes;
  fallbacks: PasskeyFallbacks;
  mailEnabled: boolean;
}

/**
 * The lost-device pages (issue 25): /login/lost-passkey (a recovery code, or a mailed link), the mailed link's
 * page (/login/link/<token>) and a setup link's (/passkey-setup/<token>). Before any session, their forms' CSRF
 * tokens are bound to the browser's pre-session binding, as the sign-up pages' are.
 */
export function lostPasskeyPages(deps: LostPasskeyDeps) {
  const { appName, forms, fallbacks, ipLimit, withRequester, mailEnabled } = deps;
  const flow = signUpFlow(deps);
  const lostPage = (request: Request, set: PageSet, status: number, extra: Partial<LostPasskeyView> = {}) => {
    const binding = flow.bindingOf(request, set);
    return htmlPage(set, status, String(<LostPasskeyPage appName={appName} csrf={(form) => forms.issue(form, binding)} mailEnabled={mailEnabled} {...extra} />));
  };

  /** A link's two halves: the page with its button, and the button's post that spends the link. */
  const linkPages = (path: string, form: string, title: string, text: string, use: (token: string, client: ClientInfo) => Promise<FallbackSignIn>) =>
    new Elysia()
      .use(withRequester)
      .get(
        `${path}/:token`,
        ({ request, params, set }) =>
          htmlPage(set, 200, String(<ContinuePage appName={appName} title={title} text={text} action={`${path}/${encodeURIComponent(params.token)}`} csrf={forms.issue(form, flow.bindingOf(request, set))} />)),
        { detail: { hide: true } },
      )
      .post(
        `${path}/:token`,
        async ({ request, params, body, set, requester }) => {
          const refusal = flow.refused(request, body, set, form, `${path}/${encodeURIComponent(params.token)}`);
          if (refusal !== undefined) return refusal;
          try {
            ipLimit(requester, path);
            return toAddPasskey(deps, request, set, await use(params.token, requester));
          } catch (error) {
            if (!(error instanceof ApiError)) throw error;
            if (error.status === 429) passRetryAfter(set, error);
            return flow.message(set, error.status, error.status === 429 ? "Too many attempts" : "This link does not work", error.message);
          }
        },
        { detail: { hide: true } },
      );

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    .get("/login/lost-passkey", ({ request, set }) => lostPage(request, set, 200), { detail: { hide: true } })
    .post(
      "/login/lost-passkey",
      async ({ request, body, set, requester }) => {
        const refusal = flow.refused(request, body, set, "lost-passkey", "/login/lost-passkey");
        if (refusal !== undefined) return refusal;
        const login = field(body, "login")?.trim() ?? "";
        try {
          ipLimit(requester, "/login/lost-passkey");
          return toAddPasskey(deps, request, set, await fallbacks.useRecoveryCode(login, field(body, "recovery_code")?.trim() ?? "", requester));
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.status === 429) passRetryAfter(set, error);
          return lostPage(request, set, error.status, { login, error: error.status === 429 ? "Too many attempts. Try again later." : error.message });
        }
      },
      { detail: { hide: true } },
    )
    .post(
      "/login/lost-passkey/email",
      async ({ request, body, set, requester }) => {
        const refusal = flow.refused(request, body, set, "lost-passkey-email", "/login/lost-passkey");
        if (refusal !== undefined) return refusal;
        try {
          ipLimit(requester, "/login/lost-passkey/email");
          const answer = await fallbacks.mailSignInLink(field(body, "email")?.trim() ?? "", requester);
          return flow.message(set, 200, "Check your mail", answer.message);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.status === 429) passRetryAfter(set, error);
          return lostPage(request, set, error.status, { error: error.status === 429 ? "Too many attempts. Try again later." : error.message });
        }
      },
      { detail: { hide: true } },
    )
    .use(linkPages("/login/link", "sign-in-link", "Sign in to add a new passkey", "This link signs you in once, then you add a new passkey.", fallbacks.useSignInLink))
    .use(linkPages("/passkey-setup", "passkey-setup", "Set up your passkey", "This link signs you in once, then you add a passkey to your account.", fallbacks.useSetupLink));
}

/** Every path of these pages (HTML for people, left out of the API document); each takes a form post. */
export const LOST_PASSKEY_PAGE_PATHS = ["/login/lost-passkey", "/login/lost-passkey/email", "/login/link/:token", "/passkey-setup/:token"] as const;

/** Whether a POST to `path` takes an HTML form body: the lost-passkey forms and a link's button. */
export const takesLostPasskeyForm = (path: string) =>
  path === "/login/lost-passkey" || path === "/login/lost-passkey/email" || /^\/(login\/link|passkey-setup)\/[^/]+$/.test(path);
