import { Elysia } from "elysia";
import type { Config } from "../../config";
import { ApiError } from "../../errors";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import type { IpLimit } from "../../limits/plugin";
import type { AuthService } from "../auth/service";
import { AccountChanged, type SessionService } from "../sessions/service";
import { sameOriginPost, type FormTokens } from "./csrf";
import { createHandoffLimits, type HandoffCodes } from "./handoff";
import { safeRedirect, type SignInHost } from "./hosts";
import { Csrf, Layout, MessagePage, type Refresh } from "./layout";
import { field, htmlPage, passRetryAfter, seeOther, type PageSet as Set } from "./respond";
import { ACCOUNT_FORM_PATHS } from "./account-routes";
import { APPLICATION_FORM_PATHS } from "./applications";
import { ADMIN_FORM_PATHS } from "./admin-routes";
import { ForgotPasswordPage, LoginPage, RecoveryCodesPage, SecondStepPage } from "./login";
import { RESET_REQUESTED, type EmailFlows } from "../email/service";
import type { BrowserSessions } from "./session";

/** Paths whose POST bodies are HTML forms (application/x-www-form-urlencoded). */
export const PAGE_FORM_PATHS: ReadonlySet<string> = new Set([
  "/login",
  "/login/verify",
  "/logout",
  "/password/forgot",
  ...ACCOUNT_FORM_PATHS,
  ...ADMIN_FORM_PATHS,
  ...APPLICATION_FORM_PATHS,
]);

/** Every page (HTML for people, left out of the API document). */
export const PAGE_PATHS: ReadonlySet<string> = new Set([...PAGE_FORM_PATHS, "/account", "/admin", "/admin/applications", "/handoff/start", "/handoff/accept"]);

export interface PageDeps {
  config: Config;
  auth: AuthService;
  sessions: SessionService;
  browser: BrowserSessions;
  forms: FormTokens;
  handoffs: HandoffCodes;
  ipLimit: IpLimit;
  withRequester: RequesterPlugin;
  emailFlows: EmailFlows;
  mailEnabled: boolean;
}

/** The sign-in, sign-out and cross-domain handoff pages. */
export function signInPages(deps: PageDeps) {
  const { config, auth, sessions, browser, forms, handoffs, ipLimit, withRequester, emailFlows, mailEnabled } = deps;
  const origins = new Set(config.signInOrigins);
  const appName = config.appName;
  const message = (set: Set, status: number, title: string, text: string, link?: { href: string; text: string }, refresh?: Refresh) =>
    htmlPage(set, status, String(<MessagePage appName={appName} title={title} message={text} link={link} refresh={refresh} />));
  const handoffLimits = createHandoffLimits();

  /** Where to go after sign-in: a safe `rd`, else the account page. */
  const destination = (host: SignInHost, rd: string | undefined) => safeRedirect(rd, host, browser.hosts) ?? "/account";

  /** The pre-session binding of this browser, set on the response when it has none yet. */
  function bindingOf(request: Request, set: Set, host: SignInHost): string {
    const existing = browser.binding(request);
    if (existing && existing.length <= 64) return existing;
    const fresh = forms.newBinding();
    browser.setBinding(set.headers, host, fresh);
    return fresh;
  }

  function loginForm(set: Set, status: number, csrf: string, rd: string | undefined, error?: string, login?: string) {
    return htmlPage(set, status, String(<LoginPage appName={appName} csrf={csrf} rd={rd} error={error} login={login} canReset={mailEnabled} />));
  }

  async function secondStep(set: Set, status: number, binding: string, challengeId: string, methods: string[], rd: string | undefined, error?: string) {
    // The authenticator's key is made once, with the first page; a retry after a wrong code keeps it.
    const enrollment = methods.includes("totp_enrollment") && error === undefined ? await auth.startChallengeEnrollment(challengeId) : undefined;
    return htmlPage(
      set,
      status,
      String(
        <SecondStepPage
          appName={appName}
          csrf={forms.issue("login-verify", binding)}
          rd={safeRedirect(rd, browser.primary, browser.hosts) && rd}
          challengeId={challengeId}
          methods={methods}
          error={error}
          enrollment={enrollment && { secret: enrollment.secret, qrSvg: enrollment.qr_svg }}
        />,
      ),
    );
  }

  /** The sign-in host after `host`, in the order of PUBLIC_URL then SIGN_IN_URLS, round the list. */
  const nextHost = (host: SignInHost) => browser.hosts[(browser.hosts.indexOf(host) + 1) % browser.hosts.length]!;

  /** A handoff state: ties a code to the browser holding this host's pre-session cookie. */
  const handoffState = (binding: string) => forms.issue("handoff", binding);

  /** The handoff's session on this host, or undefined when the account was disabled or deleted meanwhile. */
  async function openHandoffSession(userId: string, parentId: string, client: ClientInfo) {
    try {
      return await sessions.createBrowser({ userId }, client, parentId);
    } catch (error) {
      if (error instanceof AccountChanged) return undefined;
      throw error;
    }
  }

  /** This host's sign-in page, as a path: `handoff=none` shows the form at once; without it, other hosts are asked first. */
  function loginPath(host: SignInHost, handoff: "none" | undefined, rd: string | undefined): string {
    const url = new URL("/login", host.origin);
    if (handoff) url.searchParams.set("handoff", handoff);
    if (rd) url.searchParams.set("rd", rd);
    return `${url.pathname}${url.search}`;
  }

  /**
   * GET /handoff/start over its limit (429 rate_limited): a page that asks again once the wait is over (a meta
   * refresh: the CSP allows no script), or lets the user type the password on the host that asked.
   */
  function handoffBusy(set: Set, retryAfter: number, from: string, here: SignInHost, target: SignInHost, state: string, rd: string | undefined) {
    const again = new URL("/handoff/start", here.origin);
    again.searchParams.set("to", target.origin);
    again.searchParams.set("state", state);
    if (rd) again.searchParams.set("rd", rd);
    set.headers["retry-after"] = String(retryAfter);
    const form = `${target.origin}${loginPath(target, "none", rd)}`;
    return message(set, 429, "Too many sign-in handoffs", `Too many sign-in handoffs ${from}. Trying again in ${retryAfter} s.`, { href: form, text: "Sign in with your password instead" }, {
      seconds: retryAfter,
      url: `${again.pathname}${again.search}`,
    });
  }

  const forgotForm = (set: Set, status: number, binding: string, error?: string) =>
    htmlPage(set, status, String(<ForgotPasswordPage appName={appName} csrf={forms.issue("forgot", binding)} error={error} />));

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    // Password reset from the sign-in pages: this asks for the address; the mailed link opens the reset form
    // (GET /api/v1/auth/password/reset), which posts the new password.
    .get(
      "/password/forgot",
      ({ request, set }) =>
        mailEnabled
          ? forgotForm(set, 200, bindingOf(request, set, browser.hostOf(request)))
          : message(set, 404, "Password reset is off", "This server sends no mail: ask your administrator to set a new password.", { href: "/login", text: "Sign in" }),
      { detail: { hide: true } },
    )
    .post(
      "/password/forgot",
      async ({ request, body, set, requester: client }) => {
        const binding = browser.binding(request);
        if (!sameOriginPost(request, origins) || !binding || !forms.check("forgot", binding, field(body, "csrf")))
          return message(set, 403, "Request refused", "This form expired or came from another site. Open the page again.", { href: "/password/forgot", text: "Forgot your password?" });
        const email = field(body, "email")?.trim() ?? "";
        try {
          ipLimit(client, "/password/forgot");
          if (!email) return forgotForm(set, 422, binding, "Enter your email address.");
          await emailFlows.forgotPassword(email, client);
          return message(set, 200, "Check your mail", RESET_REQUESTED.message, { href: "/login", text: "Back to sign-in" });
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.status === 429) passRetryAfter(set, error);
          return forgotForm(set, error.status, binding, error.status === 429 ? "Too many requests. Try again later." : error.message);
        }
      },
      { detail: { hide: true } },
    )
    .get(
      "/login",
      async ({ request, query, set }) => {
        const host = browser.hostOf(request);
        const rd = typeof query.rd === "string" ? query.rd : undefined;
        if (await browser.current(request)) {
          browser.restoreSession(request, set.headers, host);
          return seeOther(set, destination(host, rd), 302);
        }
        const binding = bindingOf(request, set, host);
        // Another root domain's sign-in host may already know this browser: ask the others first (no password).
        if (browser.hosts.length > 1 && query.handoff !== "none") {
          const start = new URL("/handoff/start", nextHost(host).origin);
          start.searchParams.set("to", host.origin);
          start.searchParams.set("state", handoffState(binding));
          if (rd) start.searchParams.set("rd", rd);
          return seeOther(set, start.href, 302);
        }
        return loginForm(set, 200, forms.issue("login", binding), safeRedirect(rd, host, browser.hosts));
      },
      { detail: { hide: true } },
    )
    .post(
      "/login",
      async ({ request, body, set, requester: client }) => {
        const host = browser.hostOf(request);
        const rd = field(body, "rd");
        const binding = browser.binding(request);
        if (!sameOriginPost(request, origins) || !binding || !forms.check("login", binding, field(body, "csrf")))
          return message(set, 403, "Sign-in refused", "This form expired or came from another site. Open the sign-in page again.", {
            href: "/login",
            text: "Sign in",
          });
        const csrf = forms.issue("login", binding);
        const login = field(body, "login")?.trim() ?? "";
        const password = field(body, "password") ?? "";
        try {
          // The same per-address limit as POST /api/v1/auth/login, then the same service (account limits, audit).
          ipLimit(client, "/login");
          if (!login || !password) return loginForm(set, 422, csrf, rd, "Enter your username or email and your password.", login);
          const result = await auth.signInBrowser(login, password, client);
          // A second sign-in step (an emailed code, TOTP) is its own page; the cookie comes after it.
          if (result.challenge) return await secondStep(set, 200, binding, result.challenge.challenge_id, result.challenge.methods, rd);
          browser.setSession(set.headers, host, result.session.token);
          browser.setDevice(set.headers, host, result.device);
          return seeOther(set, destination(host, rd));
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.status === 429) {
            const wait = passRetryAfter(set, error);
            return message(set, 429, "Too many attempts", `Too many sign-in attempts. Try again in ${wait} seconds.`, {
              href: rd ? `/login?rd=${encodeURIComponent(rd)}` : "/login",
              text: "Back to sign-in",
            });
          }
          // One message for an unknown user and a wrong password; a disabled or unverified account only to its password's holder.
          const text =
            error.code === "account_disabled"
              ? "This account has been disabled."
              : error.code === "user_not_verified"
                ? "Your email address is not verified yet: use the code or link we emailed you, then sign in."
                : error.status === 422
                  ? error.message
                  : "The username or password is incorrect.";
          return loginForm(set, error.status, csrf, rd, text, login);
        }
      },
      { detail: { hide: true } },
    )
    .post(
      "/login/verify",
      async ({ request, body, set, requester: client }) => {
        const host = browser.hostOf(request);
        const rd = field(body, "rd");
        const binding = browser.binding(request);
        if (!sameOriginPost(request, origins) || !binding || !forms.check("login-verify", binding, field(body, "csrf")))
          return message(set, 403, "Sign-in refused", "This form expired or came from another site. Open the sign-in page again.", {
            href: "/login",
            text: "Sign in",
          });
        const challengeId = field(body, "challenge_id") ?? "";
        const code = field(body, "code")?.trim() || undefined;
        const recoveryCode = field(body, "recovery_code")?.trim() || undefined;
        try {
          ipLimit(client, "/login/verify");
          const answer = recoveryCode !== undefined ? { recovery_code: recoveryCode } : { code: code ?? "" };
          const { session, recoveryCodes, device } = await auth.verifyBrowserChallenge(challengeId, answer, client);
          browser.setSession(set.headers, host, session.token);
          browser.setDevice(set.headers, host, device);
          const next = destination(host, rd);
          if (recoveryCodes) return htmlPage(set, 200, String(<RecoveryCodesPage appName={appName} codes={recoveryCodes} next={next} />));
          return seeOther(set, next);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.code === "invalid_mfa_code") {
            const methods = (field(body, "methods") ?? "").split(",").filter(Boolean);
            return secondStep(set, 401, binding, challengeId, methods, rd, "That code is wrong or was already used.");
          }
          if (error.status === 429) {
            const wait = passRetryAfter(set, error);
            return message(set, 429, "Too many attempts", `Too many attempts. Try again in ${wait} seconds.`, { href: "/login", text: "Back to sign-in" });
          }
          return message(set, error.status, "Sign-in expired", "This sign-in expired. Please sign in again.", { href: rd ? `/login?rd=${encodeURIComponent(rd)}` : "/login", text: "Sign in" });
        }
      },
      { detail: { hide: true } },
    )
    // The sign-out page that forward auth's 403 links to (from an app's host a form could not post here): sign out,
    // or with `rd` switch accounts (sign out, then sign in and go back to rd).
    .get(
      "/logout",
      async ({ request, query, set }) => {
        const host = browser.hostOf(request);
        const rd = typeof query.rd === "string" ? safeRedirect(query.rd, host, browser.hosts) : undefined;
        const principal = await browser.current(request);
        if (!principal) return seeOther(set, rd ? `/login?rd=${encodeURIComponent(rd)}` : "/login", 302);
        return htmlPage(set, 200, String(<SignOutPage appName={appName} username={principal.username} csrf={forms.issue("logout", principal.sessionId)} rd={rd} />));
      },
      { detail: { hide: true } },
    )
    .post(
      "/logout",
      async ({ request, body, set, requester }) => {
        const host = browser.hostOf(request);
        const principal = await browser.current(request);
        if (principal) {
          if (!sameOriginPost(request, origins) || !forms.check("logout", principal.sessionId, field(body, "csrf")))
            return message(set, 403, "Sign-out refused", "This form expired or came from another site.", { href: "/account", text: "Your account" });
          await auth.signOutBrowser(principal, requester);
        }
        browser.clearSession(set.headers, host);
        const rd = safeRedirect(field(body, "rd"), host, browser.hosts);
        return seeOther(set, rd ? `/login?rd=${encodeURIComponent(rd)}` : "/login");
      },
      { detail: { hide: true } },
    )
    .get(
      "/handoff/start",
      async ({ request, query, set, requester }) => {
        // Send this browser's session on to the sign-in host that asked (`to`); without one here, pass the question
        // on to the next sign-in host in turn, and once every other host has been asked, back to `to`'s form.
        const here = browser.hostOf(request);
        const to = typeof query.to === "string" ? query.to : "";
        const state = typeof query.state === "string" ? query.state : "";
        const rd = typeof query.rd === "string" ? query.rd : undefined;
        const target = browser.hosts.find((host) => host.origin === to && host !== here);
        if (!target || !state || state.length > 64) return message(set, 400, "Invalid link", "This sign-in link is not valid.");
        const byAddress = handoffLimits.address(requester.ip);
        if (!byAddress.allowed) return handoffBusy(set, byAddress.retryAfter, "from your network", here, target, state, rd);
        // The page cookie, not the domain-wide one: a session cookie leaked by an app must not buy a session (and
        // so a page cookie) on another sign-in host.
        const principal = await browser.current(request);
        const bySession = principal && handoffLimits.session(principal.rootSessionId);
        if (bySession && !bySession.allowed) return handoffBusy(set, bySession.retryAfter, "for this browser", here, target, state, rd);
        const onward = nextHost(here);
        const next = new URL(principal ? "/handoff/accept" : onward === target ? "/login" : "/handoff/start", principal ? target.origin : onward.origin);
        if (principal) next.searchParams.set("code", handoffs.issue(principal.rootSessionId, target.origin, state));
        else if (onward === target) next.searchParams.set("handoff", "none");
        else {
          next.searchParams.set("to", target.origin);
          next.searchParams.set("state", state);
        }
        if (rd) next.searchParams.set("rd", rd);
        return seeOther(set, next.href, 302);
      },
      { detail: { hide: true } },
    )
    .get(
      "/handoff/accept",
      async ({ request, query, set, requester }) => {
        const host = browser.hostOf(request);
        const rd = typeof query.rd === "string" ? query.rd : undefined;
        const binding = browser.binding(request);
        const code = typeof query.code === "string" ? query.code : "";
        const sessionId = binding && code ? handoffs.redeem(code, host.origin, handoffState(binding)) : undefined;
        const userId = sessionId ? await sessions.browserSessionOwner(sessionId) : undefined;
        const session = userId ? await openHandoffSession(userId, sessionId!, requester) : undefined;
        if (!session) {
          // The code was pushed out of a full store (a flood): start the handoff again, on a page (no script).
          if (!sessionId && code && handoffs.evicted(code)) {
            const again = loginPath(host, undefined, rd);
            set.headers["retry-after"] = "1";
            return message(set, 503, "Signing you in", "The server was busy handing your sign-in over: trying again.", { href: again, text: "Try again" }, { seconds: 1, url: again });
          }
          return seeOther(set, loginPath(host, "none", rd));
        }
        browser.setSession(set.headers, host, session.token);
        return seeOther(set, destination(host, rd), 302);
      },
      { detail: { hide: true } },
    );
}

/** GET /logout: who is signed in, and one button that signs out (then, with `rd`, signs in again as someone else). */
function SignOutPage(props: { appName: string; username: string; csrf: string; rd: string | undefined }) {
  return (
    <Layout appName={props.appName} title={props.rd ? "Switch account" : "Sign out"} narrow>
      <section>
        <h1>{props.rd ? "Switch account" : "Sign out"}</h1>
        <p>
          Signed in as <strong safe>{props.username}</strong>.
        </p>
        <form method="post" action="/logout">
          <Csrf token={props.csrf} />
          {props.rd ? <input type="hidden" name="rd" value={props.rd} /> : ""}
          <button type="submit">{props.rd ? "Sign out and sign in as someone else" : "Sign out"}</button>
        </form>
      </section>
    </Layout>
  );
}
