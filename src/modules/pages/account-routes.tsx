import { Elysia } from "elysia";
import type { RequesterPlugin } from "../../http/client-ip";
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
import { AccountPage, SignOutDevicePage, type AccountView } from "./account";
import { accountForms } from "./account-forms";
import { EMAIL_FORM_PATHS, EMAIL_PAGE_PATHS, emailAddressPages } from "./email-routes";
import type { Flash } from "./flash";
import { Layout } from "./layout";
import { PASSKEY_FORM_PATHS, PASSKEY_PAGE_PATHS, pagePasskey, passkeyPages } from "./passkey-routes";
import { field, htmlPage, seeOther, type PageSet } from "./respond";
import type { SignedInForms } from "./signed-in-forms";
import { RecoveryCodes } from "./two-step";

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

/**
 * GET /account and its forms. Each form posts, then redirects back (POST/redirect/GET) to the page, where its
 * message waits beside it (flash.ts): a reload posts nothing again.
 */
export function accountPages(deps: AccountDeps) {
  const { appName, browser, forms, flashes, auth, users, sessions, apiKeys, audit, ipLimit, withRequester, oidc, mfa, mailEnabled, passkeys } = deps;
  const kit = accountForms(deps);
  const { csrfOf, nav, back, form, said, signedInPage } = kit;

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

  return (
    new Elysia({ tags: ["pages"] })
      .use(withRequester)
      .use(passkeyPages({ ...deps, ...kit }))
      .use(emailAddressPages({ ...deps, ...kit }))
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
  "/account/password/remove",
  ...PASSKEY_FORM_PATHS,
  ...EMAIL_FORM_PATHS,
] as const;

/** The account's pages besides /account (GET). */
export const ACCOUNT_PAGE_PATHS = ["/account/recovery-codes", "/account/devices/:id", ...PASSKEY_PAGE_PATHS, ...EMAIL_PAGE_PATHS] as const;
