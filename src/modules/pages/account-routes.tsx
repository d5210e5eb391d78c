import { Elysia } from "elysia";
import { ApiError, apiErrors } from "../../errors";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import type { IpLimit } from "../../limits/plugin";
import type { AuditLog } from "../audit/service";
import type { AuthService } from "../auth/service";
import type { EmailFlows } from "../email/service";
import type { ApiKeyService } from "../keys/service";
import type { MfaService } from "../mfa/service";
import type { OidcService } from "../oidc/service";
import type { PasskeyService } from "../passkeys/service";
import type { BrowserSessionPrincipal, SessionService } from "../sessions/service";
import type { UserService } from "../users/service";
import { AccountPage, EmailChangePage, SignedInNav, SignOutDevicePage, type AccountView } from "./account";
import { CodePage } from "./codes";
import { sameOriginPost, type FormTokens } from "./csrf";
import type { Flash, Flashes } from "./flash";
import { Layout, MessagePage, plural } from "./layout";
import { PASSKEY_FORM_PATHS, PASSKEY_PAGE_PATHS, pagePasskey, passkeyPages } from "./passkey-routes";
import { PASSKEY_STEP_PATH } from "./passkey-step";
import { field, htmlPage, seeOther, type PageSet } from "./respond";
import type { BrowserSessions } from "./session";
import { RecoveryCodes } from "./two-step";

export interface SignedInForms {
  appName: string;
  origins: ReadonlySet<string>;
  browser: BrowserSessions;
  forms: FormTokens;
  flashes: Flashes;
}

/** "Too many attempts. Try again in 1 second.": a 429's wait, in words. */
export function tooManyAttempts(error: ApiError): string {
  const seconds = error.headers?.["Retry-After"] ?? "60";
  return `Too many attempts. Try again in ${plural(seconds, "second")}.`;
}

/** What a refused action says: the first field's problem, the wait of a 429, or the error's message. */
export function problemOf(error: ApiError): string {
  if (error.status === 429) return tooManyAttempts(error);
  return error.details?.[0]?.message ?? error.message;
}

/**
 * Runs a signed-in form's change and leaves its outcome for the page the POST redirects to (POST/redirect/GET):
 * the change's notice, or why it was refused, beside `form`. Any other error is thrown on (a 500 page).
 */
export async function flashOutcome(
  flashes: Flashes,
  request: Request,
  set: PageSet,
  to: { sessionId: string; form: string },
  change: () => Promise<Omit<Flash, "form" | "kind">>,
  refusal: (error: ApiError) => string = problemOf,
): Promise<void> {
  try {
    flashes.put(request, set, to.sessionId, { form: to.form, kind: "notice", ...(await change()) });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    flashes.put(request, set, to.sessionId, { form: to.form, kind: "error", text: refusal(error) });
  }
}

/**
 * The gate of every signed-in form: a live browser session, a same-origin POST and this form's CSRF token.
 * Returns the principal, or the answer to send instead (to sign-in, or a 403 page).
 */
export function signedInForm({ appName, origins, browser, forms }: SignedInForms) {
  return async (request: Request, body: unknown, set: PageSet, form: string): Promise<BrowserSessionPrincipal | string> => {
    const principal = await browser.current(request);
    if (!principal) return seeOther(set, "/login");
    if (!sameOriginPost(request, origins) || !forms.check(form, principal.sessionId, field(body, "csrf")))
      return htmlPage(
        set,
        403,
        String(<MessagePage appName={appName} title="Request refused" message="This form expired or came from another site. Open the page again." link={{ href: "/account", text: "Your account" }} />),
      );
    return principal;
  };
}

export interface AccountDeps extends SignedInForms {
  auth: AuthService;
  users: UserService;
  sessions: SessionService;
  apiKeys: ApiKeyService;
  audit: AuditLog;
  ipLimit: IpLimit;
  withRequester: RequesterPlugin;
  /** The user's OpenID Connect consents (issue 15). */
  oidc: OidcService;
  /** Second factors (issue 13). */
  mfa: MfaService;
  emailFlows: EmailFlows;
  mailEnabled: boolean;
  /** Passkeys (issue 25), and the sign-in origins under their RP ID, where one can be added. */
  passkeys: PasskeyService;
  passkeyOrigins: ReadonlySet<string>;
}

/** A request and its answer's headers: where a form's flash cookie is read and set. */
interface Ctx {
  request: Request;
  set: PageSet;
}

/** Where on the account page each form sits (the redirect's fragment). */
const SECTION_OF: Record<string, string> = {
  email: "profile",
  "email-send": "profile",
  password: "password",
  "password-remove": "password",
  "totp-start": "two-step",
  "totp-confirm": "two-step",
  "totp-cancel": "two-step",
  "totp-delete": "two-step",
  "recovery-codes": "two-step",
  "session-revoke": "devices",
  "session-revoke-others": "devices",
  "key-create": "keys",
  "key-delete": "keys",
  "application-revoke": "applications",
  "passkey-add": "passkeys",
  "passkey-rename": "passkeys",
  "passkey-delete": "passkeys",
};

/**
 * GET /account and its forms. Each form posts, then redirects back (POST/redirect/GET) to the page, where its
 * message waits beside it (flash.ts): a reload posts nothing again.
 */
export function accountPages(deps: AccountDeps) {
  const { appName, browser, forms, flashes, auth, users, sessions, apiKeys, audit, ipLimit, withRequester, oidc, mfa, emailFlows, mailEnabled, passkeys } = deps;
  const guard = signedInForm(deps);
  const csrfOf = (principal: BrowserSessionPrincipal) => (form: string) => forms.issue(form, principal.sessionId);
  const nav = (principal: BrowserSessionPrincipal) => (
    <SignedInNav username={principal.username} isAdmin={principal.roles.includes("admin")} csrf={forms.issue("logout", principal.sessionId)} />
  );

  async function render(set: PageSet, principal: BrowserSessionPrincipal, flash: Flash | undefined) {
    const user = await users.findById(principal.userId);
    const pending = await mfa.pendingTotp(principal.userId, principal.username);
    const view: AccountView = {
      appName,
      username: principal.username,
      email: user?.email ?? null,
      emailVerified: user?.emailVerified ?? false,
      roles: principal.roles,
      isAdmin: principal.roles.includes("admin"),
      mailEnabled,
      sessions: (await sessions.list(principal.userId)).map((session) => ({ ...session, current: session.id === principal.sessionId })),
      keys: await apiKeys.list(principal.userId),
      applications: await oidc.listConsents(principal.userId),
      csrf: csrfOf(principal),
      secondFactors: await mfa.factors(principal.userId),
      waysIn: await auth.waysIn(principal.userId),
      enrolment: pending && { secret: pending.secret, qrSvg: pending.qr_svg },
      passkeys: (await passkeys.list(principal.userId)).map(pagePasskey),
      flash,
    };
    return htmlPage(set, 200, String(<AccountPage {...view} />));
  }

  /** Back to the account page, at the form's section, with its message waiting. */
  function back(ctx: Ctx, principal: BrowserSessionPrincipal, flash: Flash, path = "/account") {
    flashes.put(ctx.request, ctx.set, principal.sessionId, flash);
    return seeOther(ctx.set, path === "/account" ? `/account#${SECTION_OF[flash.form] ?? "profile"}` : path);
  }

  /**
   * One signed-in form: the gate, then `action`; an expected refusal (bad input, a wrong password, a limit) goes
   * back to `failurePath` (the page) beside the form, in the words of `refusal`; anything else propagates (a 500 page).
   */
  function form(
    path: string,
    name: string,
    action: (principal: BrowserSessionPrincipal, body: unknown, client: ClientInfo, ctx: Ctx) => Promise<string>,
    failurePath: string | ((body: unknown) => string) = "/account",
    refusal: (error: ApiError) => string = problemOf,
  ) {
    return [
      path,
      async ({ request, body, set, requester }: { request: Request; body: unknown; set: PageSet; requester: ClientInfo }) => {
        const principal = await guard(request, body, set, name);
        if (typeof principal === "string") return principal;
        const ctx = { request, set };
        try {
          return await action(principal, body, requester, ctx);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          return back(ctx, principal, { form: name, kind: "error", text: refusal(error) }, typeof failurePath === "string" ? failurePath : failurePath(body));
        }
      },
      { detail: { hide: true } },
    ] as const;
  }

  const said = (form: string, text: string): Flash => ({ form, kind: "notice", text });

  /** A page of its own for a signed-in user (the code pages, the recovery codes), or the sign-in page. */
  async function signedInPage(request: Request, set: PageSet, path: string, page: (principal: BrowserSessionPrincipal) => Promise<string> | string) {
    const principal = await browser.current(request);
    if (!principal) return seeOther(set, `/login?rd=${encodeURIComponent(path)}`, 302);
    return page(principal);
  }

  function codePage(request: Request, set: PageSet, principal: BrowserSessionPrincipal, kind: "verify" | "confirm", email: string | null) {
    const flash = flashes.take(request, set, principal.sessionId);
    const verify = kind === "verify";
    return htmlPage(
      set,
      200,
      String(
        <CodePage
          appName={appName}
          nav={nav(principal)}
          title={verify ? "Verify your email address" : "Confirm your new address"}
          intro={
            verify
              ? `Type the 6-digit code we mailed to ${email ?? "your address"}.`
              : "Type the 6-digit code we mailed to your new address: it becomes your account's address."
          }
          action={verify ? "/account/email/verify" : "/account/email/confirm"}
          csrf={forms.issue(verify ? "email-verify" : "email-confirm", principal.sessionId)}
          submit={verify ? "Verify" : "Confirm"}
          error={flash?.kind === "error" ? flash.text : undefined}
          notice={flash?.kind === "notice" ? flash.text : undefined}
          back={{ href: "/account#profile", text: "Back to your account" }}
        />,
      ),
    );
  }

  return (
    new Elysia({ tags: ["pages"] })
      .use(withRequester)
      .use(passkeyPages({ ...deps, csrfOf, nav, guard, signedInPage, form, back, problemOf }))
      .get(
        "/account",
        async ({ request, set }) => {
          const principal = await browser.current(request);
          if (!principal) return seeOther(set, "/login?rd=%2Faccount", 302);
          return render(set, principal, flashes.take(request, set, principal.sessionId));
        },
        { detail: { hide: true } },
      )
      .get(
        "/account/devices/:id",
        ({ request, set, params }) =>
          signedInPage(request, set, "/account", async (principal) => {
            const session = (await sessions.list(principal.userId)).find((candidate) => candidate.id === params.id);
            // This browser signs out with the sign-out button; a device already signed out is not in the list.
            if (!session || session.id === principal.sessionId || session.id === principal.rootSessionId) return seeOther(set, "/account#devices");
            const page = <SignOutDevicePage appName={appName} nav={nav(principal)} session={{ ...session, current: false }} csrf={forms.issue("session-revoke", principal.sessionId)} />;
            return htmlPage(set, 200, String(page));
          }),
        { detail: { hide: true } },
      )
      .post(
        ...form("/account/sessions/revoke", "session-revoke", async (principal, body, requester, ctx) => {
          const id = field(body, "session_id") ?? "";
          // This browser's own session (or the one it was handed off from) is signed out with the sign-out button.
          if (id === principal.sessionId || id === principal.rootSessionId) return seeOther(ctx.set, "/account#devices");
          await sessions.revokeOwned(principal.userId, id);
          await audit.record({ event: "session_revoked", userId: principal.userId, ...requester, detail: { session_id: id, via: "browser" } });
          return back(ctx, principal, said("session-revoke", "That device is signed out."));
        }),
      )
      .post(
        ...form("/account/sessions/revoke-others", "session-revoke-others", async (principal, _body, requester, ctx) => {
          await auth.logout(principal, "others", requester);
          return back(ctx, principal, said("session-revoke-others", "Every other device is signed out."));
        }),
      )
      .post(
        ...form("/account/password", "password", async (principal, body, client, ctx) => {
          // The same limits as POST /api/v1/auth/password: per address, then per account inside the service.
          ipLimit(client, "/account/password");
          // No current_password field: the form of an account without a password (the service decides which it is).
          await auth.changePassword(principal, field(body, "current_password"), field(body, "new_password") ?? "", client);
          return back(ctx, principal, said("password", "Password changed. Your other devices are signed out."));
        }),
      )
      .post(
        ...form("/account/password/remove", "password-remove", async (principal, body, client, ctx) => {
          ipLimit(client, "/account/password/remove");
          await auth.removePassword(principal, field(body, "current_password") ?? "", client);
          return back(ctx, principal, said("password-remove", "Password removed: you sign in with a passkey from now on. Your other devices are signed out."));
        }),
      )
      .post(
        ...form("/account/keys", "key-create", async (principal, body, requester, ctx) => {
          const expires = field(body, "expires_in");
          const created = await apiKeys.create(principal, { name: field(body, "name") ?? "", expiresIn: expires ? Number(expires) : undefined });
          await audit.record({ event: "key_created", userId: principal.userId, ...requester, detail: { key_id: created.key_id, name: created.name } });
          // Held for the next GET only, in memory (never in a URL): the secret exists nowhere else.
          return back(ctx, principal, { ...said("key-create", "API key created."), newKey: { name: created.name, secret: created.api_key } });
        }),
      )
      .post(
        ...form("/account/keys/delete", "key-delete", async (principal, body, requester, ctx) => {
          const keyId = field(body, "key_id") ?? "";
          await apiKeys.delete(principal.userId, keyId);
          await audit.record({ event: "key_deleted", userId: principal.userId, ...requester, detail: { key_id: keyId } });
          return back(ctx, principal, said("key-delete", "The API key is deleted: it stops working at once."));
        }),
      )
      .post(
        ...form("/account/applications/revoke", "application-revoke", async (principal, body, requester, ctx) => {
          // Unknown or already withdrawn: nothing to do, the page shows the current list.
          const withdrawn = await oidc.revokeConsent(principal.userId, field(body, "client_id") ?? "", requester);
          return withdrawn ? back(ctx, principal, said("application-revoke", "The application is signed out and must ask again.")) : seeOther(ctx.set, "/account#applications");
        }),
      )
      // Two-step sign-in (issue 13): the same service calls as /api/v1/auth/mfa/*. An enrolment started here stays
      // (the same key and QR code on every visit) until it is confirmed or cancelled.
      .post(
        ...form("/account/mfa/totp", "totp-start", async (principal, _body, _client, ctx) => {
          if (!(await mfa.pendingTotp(principal.userId, principal.username))) await mfa.startTotp(principal.userId, principal.username, principal.sessionId);
          return seeOther(ctx.set, "/account#two-step");
        }),
      )
      .post(
        ...form("/account/mfa/totp/cancel", "totp-cancel", async (principal, _body, _client, ctx) => {
          await mfa.cancelTotp(principal.userId, principal.sessionId);
          return back(ctx, principal, said("totp-cancel", "Set-up cancelled: nothing changed."));
        }),
      )
      .post(
        ...form("/account/mfa/totp/confirm", "totp-confirm", async (principal, body, client, ctx) => {
          ipLimit(client, "/account/mfa/totp/confirm");
          const codes = await auth.enableTotp(principal, field(body, "code") ?? "", client);
          flashes.put(ctx.request, ctx.set, principal.sessionId, { ...said("totp-confirm", "Two-step sign-in is on."), recoveryCodes: codes });
          return seeOther(ctx.set, "/account/recovery-codes");
        }),
      )
      .post(
        ...form("/account/mfa/recovery-codes", "recovery-codes", async (principal, _body, requester, ctx) => {
          const codes = await auth.newRecoveryCodes(principal, requester);
          flashes.put(ctx.request, ctx.set, principal.sessionId, { ...said("recovery-codes", "New recovery codes made: the old ones no longer work."), recoveryCodes: codes });
          return seeOther(ctx.set, "/account/recovery-codes");
        }),
      )
      .post(
        ...form("/account/mfa/totp/delete", "totp-delete", async (principal, body, client, ctx) => {
          ipLimit(client, "/account/mfa/totp/delete");
          await auth.removeTotp(principal, { password: field(body, "password") ?? "" }, client);
          return back(ctx, principal, said("totp-delete", "Two-step sign-in is off: sign-in asks for the password only."));
        }),
      )
      .get(
        "/account/recovery-codes",
        ({ request, set }) =>
          signedInPage(request, set, "/account", (principal) => {
            const flash = flashes.take(request, set, principal.sessionId);
            // Shown once: a reload (or a visit without new codes) goes back to the account page.
            if (!flash?.recoveryCodes) return seeOther(set, "/account#two-step");
            flashes.put(request, set, principal.sessionId, { form: flash.form, kind: "notice", text: flash.text });
            return htmlPage(
              set,
              200,
              String(
                <Layout appName={appName} title="Recovery codes" nav={nav(principal)}>
                  <section>
                    <RecoveryCodes appName={appName} username={principal.username} codes={flash.recoveryCodes} next="/account#two-step" />
                  </section>
                </Layout>,
              ),
            );
          }),
        { detail: { hide: true } },
      )
      // The email address: verify it with a mailed code, or change it (a code to the new address).
      .post(
        ...form("/account/email/send", "email-send", async (principal, _body, client, ctx) => {
          ipLimit(client, "/account/email/send");
          const user = await users.findById(principal.userId);
          if (!user?.email || user.emailVerified) return seeOther(ctx.set, "/account#profile");
          await emailFlows.resendVerification(user.email);
          flashes.put(ctx.request, ctx.set, principal.sessionId, said("email-verify", `A code is on its way to ${user.email} (at most one mail a minute).`));
          return seeOther(ctx.set, "/account/email/verify");
        }),
      )
      .get(
        "/account/email/verify",
        ({ request, set }) =>
          signedInPage(request, set, "/account/email/verify", async (principal) => codePage(request, set, principal, "verify", (await users.findById(principal.userId))?.email ?? null)),
        { detail: { hide: true } },
      )
      .post(
        ...form(
          "/account/email/verify",
          "email-verify",
          async (principal, body, client, ctx) => {
            ipLimit(client, "/account/email/verify");
            const user = await users.findById(principal.userId);
            if (!user?.email) throw apiErrors.invalid_code("This account has no email address to verify.");
            await emailFlows.verifyEmailCode(user.email, field(body, "code")?.replace(/\s/g, "") ?? "", client);
            return back(ctx, principal, said("email", "Your email address is verified."));
          },
          "/account/email/verify",
        ),
      )
      .post(
        ...form("/account/email", "email", async (principal, body, client, ctx) => {
          ipLimit(client, "/account/email");
          const email = field(body, "new_email")?.trim() ?? "";
          try {
            await auth.requestEmailChange(principal, email, field(body, "current_password"), client);
          } catch (error) {
            // No password, and no passkey sign-in of the last minutes: the passkey step, then this form again.
            if (!(error instanceof ApiError) || error.code !== "reauthentication_required") throw error;
            return seeOther(ctx.set, `${PASSKEY_STEP_PATH}?rd=${encodeURIComponent("/account/email")}`);
          }
          flashes.put(ctx.request, ctx.set, principal.sessionId, said("email-confirm", `A code is on its way to ${email}.`));
          return seeOther(ctx.set, "/account/email/confirm");
        }, (body) => (field(body, "page") === "email" ? "/account/email" : "/account")),
      )
      .get(
        "/account/email",
        ({ request, set }) =>
          signedInPage(request, set, "/account/email", async (principal) => {
            const { hasPassword } = await auth.waysIn(principal.userId);
            const confirmed = !hasPassword && (await auth.recentPasskeySession(principal.sessionId));
            const flash = flashes.take(request, set, principal.sessionId);
            const page = (
              <EmailChangePage appName={appName} nav={nav(principal)} csrf={forms.issue("email", principal.sessionId)} username={principal.username} hasPassword={hasPassword} confirmed={confirmed} mailEnabled={mailEnabled} flash={flash} />
            );
            return htmlPage(set, 200, String(page));
          }),
        { detail: { hide: true } },
      )
      .get(
        "/account/email/confirm",
        ({ request, set }) => signedInPage(request, set, "/account/email/confirm", (principal) => codePage(request, set, principal, "confirm", null)),
        { detail: { hide: true } },
      )
      .post(
        ...form(
          "/account/email/confirm",
          "email-confirm",
          async (principal, body, client, ctx) => {
            ipLimit(client, "/account/email/confirm");
            const user = await emailFlows.confirmEmailChange(principal, field(body, "code")?.replace(/\s/g, "") ?? "", client);
            return back(ctx, principal, said("email", `Your email address is now ${user.email}.`));
          },
          "/account/email/confirm",
        ),
      )
  );
}

/** Paths of the account page's forms (their bodies are HTML forms). */
export const ACCOUNT_FORM_PATHS = [
  "/account/applications/revoke",
  "/account/sessions/revoke",
  "/account/sessions/revoke-others",
  "/account/password",
  "/account/keys",
  "/account/keys/delete",
  "/account/mfa/totp",
  "/account/mfa/totp/cancel",
  "/account/mfa/totp/confirm",
  "/account/mfa/recovery-codes",
  "/account/mfa/totp/delete",
  "/account/email",
  "/account/email/send",
  "/account/email/verify",
  "/account/email/confirm",
  "/account/password/remove",
  ...PASSKEY_FORM_PATHS,
] as const;

/** The account's pages besides /account (GET). */
export const ACCOUNT_PAGE_PATHS = ["/account/recovery-codes", "/account/devices/:id", "/account/email", ...PASSKEY_PAGE_PATHS] as const;
