import { Elysia } from "elysia";
import type { Config } from "../../config";
import { ApiError } from "../../errors";
import type { RequesterPlugin } from "../../http/client-ip";
import type { IpLimit } from "../../limits/plugin";
import type { AuthService } from "../auth/service";
import type { SessionService } from "../sessions/service";
import { sameOriginPost, type FormTokens } from "./csrf";
import type { HandoffCodes } from "./handoff";
import { handoffPages } from "./handoff-routes";
import { safeRedirect, type SignInHost } from "./hosts";
import { LOGO_PATH, PASSKEY_SCRIPT, signInCsp } from "./layout";
import type { PasskeyService } from "../passkeys/service";
import { AuthenticationCredential } from "../passkeys/model";
import { credentialOf } from "./passkey-routes";
import { field, htmlPage, passRetryAfter, seeOther, type PageSet as Set } from "./respond";
import { ACCOUNT_FORM_PATHS, ACCOUNT_PAGE_PATHS } from "./account-routes";
import { APPLICATION_FORM_PATHS } from "./applications";
import { ADMIN_FORM_PATHS, ADMIN_PAGE_PATHS } from "./admin-routes";
import { AUDIT_PAGE_PATH } from "./audit-routes";
import { LOST_PASSKEY_PAGE_PATHS } from "./lost-passkey";
import { mailedCodePages } from "./mailed-code-pages";
import { LoginPage, RecoveryCodesPage, SecondStepPage, SignOutPage } from "./login";
import { plural } from "./layout";
import type { EmailFlows } from "../email/service";
import type { BrowserSessions } from "./session";
import { loginLink, signInKit } from "./sign-in-kit";
import { PASSKEY_STEP_PATH } from "../../http/routes";
import { passkeyStepPages } from "./passkey-step";

/** Paths whose POST bodies are HTML forms (application/x-www-form-urlencoded). */
export const PAGE_FORM_PATHS: ReadonlySet<string> = new Set([
  "/login",
  "/login/verify",
  "/login/passkey",
  PASSKEY_STEP_PATH,
  "/logout",
  "/password/forgot",
  "/password/reset/code",
  "/verify-email",
  ...ACCOUNT_FORM_PATHS,
  ...ADMIN_FORM_PATHS,
  ...APPLICATION_FORM_PATHS,
]);

/** Every page (HTML for people, left out of the API document). */
export const PAGE_PATHS: ReadonlySet<string> = new Set([
  ...PAGE_FORM_PATHS,
  ...ACCOUNT_PAGE_PATHS,
  ...ADMIN_PAGE_PATHS,
  AUDIT_PAGE_PATH,
  "/account",
  "/admin",
  "/admin/applications",
  "/admin/applications/delete",
  "/handoff/start",
  "/handoff/accept",
  LOGO_PATH,
  "/passkey.js",
  ...LOST_PASSKEY_PAGE_PATHS,
]);

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
  passkeys: PasskeyService;
}

/** The host of the app `rd` goes on to, when it is another than this sign-in host ("Sign in to continue to …"). */
function appHost(rd: string | undefined, host: SignInHost): string | undefined {
  if (!rd || rd.startsWith("/")) return undefined;
  try {
    const url = new URL(rd);
    return url.origin === host.origin ? undefined : url.host;
  } catch {
    return undefined;
  }
}

/** A refused passkey on the second-step page, in a person's words (the API's speak of options and credentials). */
function secondStepPasskeyProblem(error: ApiError): string {
  if (error.code === "passkey_challenge_expired") return "The passkey request expired. Try again.";
  if (error.code === "passkey_unknown_credential") return "That passkey is not one of this account's. Try another one.";
  return error.message;
}

/** The sign-in and sign-out pages, with the mailed codes' pages and the cross-domain handoff mounted. */
export function signInPages(deps: PageDeps) {
  const { config, auth, browser, forms, ipLimit, withRequester, mailEnabled, passkeys } = deps;
  const passkeyOrigins = new Set(config.passkeys.origins);
  const origins = new Set(config.signInOrigins);
  const appName = config.appName;
  const kit = signInKit({ config, browser, forms });
  const { message, destination, bindingOf, nextHost, handoffState } = kit;


  function loginForm(
    set: Set,
    status: number,
    host: SignInHost,
    csrf: string,
    rd: string | undefined,
    said: { error?: string; notice?: string; login?: string; focusPassword?: boolean; unverified?: boolean } = {},
  ) {
    const safeRd = safeRedirect(rd, host, browser.hosts) && rd;
    // Passkeys on the sign-in hosts under their RP ID only (elsewhere the browser would refuse them anyway).
    const withPasskeys = passkeyOrigins.has(host.origin);
    return htmlPage(
      set,
      status,
      String(
        <LoginPage
          appName={appName}
          csrf={csrf}
          rd={safeRd || undefined}
          canReset={mailEnabled}
          canSignUp={config.allowRegistration}
          continueTo={appHost(safeRd || undefined, host)}
          passkeys={withPasskeys}
          {...said}
        />,
      ),
      withPasskeys ? signInCsp() : undefined,
    );
  }

  /** The sign-in forms' refusal of a post without this browser's form token or from another site. */
  const formRefused = (set: Set) =>
    message(set, 403, "Sign-in refused", "This form expired or came from another site. Open the sign-in page again.", { href: "/login", text: "Sign in" });

  /** What the sign-in page says of an account's state (told only to whoever proved the first factor), else undefined. */
  const accountState = (error: ApiError) =>
    error.code === "account_disabled"
      ? "This account has been disabled."
      : error.code === "user_not_verified"
        ? "Your email address is not verified yet: type the code we emailed you on the “Verify your email address” page, or use the link in the mail, then sign in."
        : undefined;

  /**
   * A first factor (password or passkey) was right: the second step's page when one is owed (the cookie comes
   * after it), else the session and device cookies and on to `rd`.
   */
  async function afterFirstFactor(
    set: Set,
    host: SignInHost,
    binding: string,
    rd: string | undefined,
    result: Awaited<ReturnType<typeof auth.signInBrowser>> | Awaited<ReturnType<typeof auth.signInBrowserWithPasskey>>,
  ) {
    if (result.challenge) return await secondStep(set, 200, host, binding, result.challenge.challenge_id, result.challenge.methods, rd);
    browser.setSession(set.headers, host, result.session.token);
    browser.setDevice(set.headers, host, result.device);
    return seeOther(set, destination(host, rd));
  }

  /** The 429 page of the sign-in forms: the wait in words ("1 second"), and the way back that keeps `rd`. */
  function tooMany(set: Set, error: ApiError, rd: string | undefined) {
    const wait = passRetryAfter(set, error);
    return message(set, 429, "Too many attempts", `Too many sign-in attempts. Try again in ${plural(wait, "second")}.`, { href: loginLink(rd), text: "Back to sign-in" });
  }

  async function secondStep(set: Set, status: number, host: SignInHost, binding: string, challengeId: string, methods: string[], rd: string | undefined, error?: string) {
    // The authenticator's key is made once, with the first page; a retry after a wrong code keeps it.
    // The first page makes it; a retry after a wrong code shows the same key and QR code (the one scanned).
    const enrollment = methods.includes("totp_enrollment") ? await auth.startChallengeEnrollment(challengeId) : undefined;
    // "Use a passkey" with the page's one script, on the hosts under the passkeys' RP ID only (as the sign-in page).
    const passkey = methods.includes("passkey") && passkeyOrigins.has(host.origin);
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
          passkey={passkey}
        />,
      ),
      passkey ? signInCsp() : undefined,
    );
  }

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    .use(passkeyStepPages({ appName, auth, browser, forms, ipLimit, withRequester, passkeys, origins, passkeyOrigins, message }))
    .use(mailedCodePages({ ...deps, ...kit, appName, origins }))
    .use(handoffPages({ ...deps, ...kit }))
    // APP_LOGO, from memory (read once at start): the pages' CSP allows images from this origin only.
    .get(
      LOGO_PATH,
      ({ set }) => {
        const logo = config.branding.logo;
        if (!logo) return message(set, 404, "Page not found", "This server has no logo.");
        return new Response(logo.bytes, {
          headers: {
            "content-type": logo.type,
            "cache-control": "public, max-age=3600",
            "x-content-type-options": "nosniff",
            // An SVG opened on its own runs nothing.
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
          },
        });
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
        return loginForm(set, 200, host, forms.issue("login", binding), rd, { notice: query.signed_out === "1" ? "You are signed out." : undefined });
      },
      { detail: { hide: true } },
    )
    .post(
      "/login",
      async ({ request, body, set, requester: client }) => {
        const host = browser.hostOf(request);
        const rd = field(body, "rd");
        const binding = browser.binding(request);
        if (!sameOriginPost(request, origins) || !binding || !forms.check("login", binding, field(body, "csrf"))) return formRefused(set);
        const csrf = forms.issue("login", binding);
        const login = field(body, "login")?.trim() ?? "";
        const password = field(body, "password") ?? "";
        try {
          // The same per-address limit as POST /api/v1/auth/login, then the same service (account limits, audit).
          ipLimit(client, "/login");
          if (!login || !password) return loginForm(set, 422, host, csrf, rd, { error: "Enter your username or email and your password.", login, focusPassword: login !== "" });
          return await afterFirstFactor(set, host, binding, rd, await auth.signInBrowser(login, password, client));
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.status === 429) return tooMany(set, error, rd);
          // One message for an unknown user and a wrong password; a disabled or unverified account only to its password's holder.
          const text = accountState(error) ?? (error.status === 422 ? error.message : "The username or password is incorrect.");
          return loginForm(set, error.status, host, csrf, rd, { error: text, login, focusPassword: error.code !== "user_not_verified" && error.code !== "account_disabled", unverified: error.code === "user_not_verified" && mailEnabled });
        }
      },
      { detail: { hide: true } },
    )
    .get(
      "/passkey.js",
      ({ set }) => {
        set.headers["content-type"] = "text/javascript; charset=utf-8";
        set.headers["cache-control"] = "no-cache";
        return PASSKEY_SCRIPT;
      },
      { detail: { hide: true } },
    )
    .post(
      "/login/passkey",
      async ({ request, body, set, requester: client }) => {
        const host = browser.hostOf(request);
        const rd = field(body, "rd");
        const binding = browser.binding(request);
        if (!sameOriginPost(request, origins) || !binding || !forms.check("login", binding, field(body, "csrf"))) return formRefused(set);
        const csrf = forms.issue("login", binding);
        try {
          ipLimit(client, "/login/passkey");
          const credential = credentialOf(body, AuthenticationCredential, "Your passkey could not be used. Try again, or sign in with your password.");
          const { user, userVerified } = await passkeys.authenticate(credential as unknown as Parameters<typeof passkeys.authenticate>[0], client);
          return await afterFirstFactor(set, host, binding, rd, await auth.signInBrowserWithPasskey(user, userVerified, client));
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.status === 429) return tooMany(set, error, rd);
          // The passkey codes' messages are plain sentences already; the account's state as on the password form.
          return loginForm(set, error.status, host, csrf, rd, { error: accountState(error) ?? error.message, unverified: error.code === "user_not_verified" && mailEnabled });
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
        const credential = field(body, "credential") || undefined;
        const methods = () => (field(body, "methods") ?? "").split(",").filter(Boolean);
        try {
          ipLimit(client, "/login/verify");
          const answer = credential !== undefined ? { passkey: credentialOf(body, AuthenticationCredential, "Your passkey could not be used. Try again.") } : recoveryCode !== undefined ? { recovery_code: recoveryCode } : { code: code ?? "" };
          const { session, recoveryCodes, device } = await auth.verifyBrowserChallenge(challengeId, answer, client);
          browser.setSession(set.headers, host, session.token);
          browser.setDevice(set.headers, host, device);
          const next = destination(host, rd);
          if (recoveryCodes) return htmlPage(set, 200, String(<RecoveryCodesPage appName={appName} codes={recoveryCodes} next={next} />));
          return seeOther(set, next);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.code === "invalid_mfa_code") return secondStep(set, 401, host, binding, challengeId, methods(), rd, "That code is wrong or was already used.");
          // A refused passkey counts as a wrong answer; the page says why in the passkey's words.
          if (error.code.startsWith("passkey_")) return secondStep(set, error.status, host, binding, challengeId, methods(), rd, secondStepPasskeyProblem(error));
          if (error.status === 429) return tooMany(set, error, rd);
          return message(set, error.status, "Sign-in expired", "This sign-in expired. Please sign in again.", { href: loginLink(rd), text: "Sign in" });
        }
      },
      { detail: { hide: true } },
    )
    .get(
      "/logout",
      async ({ request, query, set }) => {
        const principal = await browser.current(request);
        const rd = typeof query.rd === "string" && safeRedirect(query.rd, browser.hostOf(request), browser.hosts) ? query.rd : undefined;
        if (!principal) return seeOther(set, loginLink(rd), 302);
        return htmlPage(
          set,
          200,
          String(<SignOutPage appName={appName} username={principal.username} csrf={forms.issue("logout", principal.sessionId)} rd={rd} switching={query.switch === "1"} />),
        );
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
        // On to the sign-in form, without asking the other sign-in hosts (the handoff): the sign-out ended the
        // sessions there too, and the form must say "You are signed out".
        const rd = field(body, "rd");
        const next = new URLSearchParams({ signed_out: "1", handoff: "none" });
        if (rd && safeRedirect(rd, host, browser.hosts)) next.set("rd", rd);
        return seeOther(set, `/login?${next}`);
      },
      { detail: { hide: true } },
    );
}
