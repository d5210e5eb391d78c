import { Elysia } from "elysia";
import { ApiError } from "../../errors";
import type { RequesterPlugin } from "../../http/client-ip";
import type { IpLimit } from "../../limits/plugin";
import type { AuditLog } from "../audit/service";
import type { AuthService } from "../auth/service";
import type { ApiKeyService } from "../keys/service";
import type { MfaService } from "../mfa/service";
import type { OidcService } from "../oidc/service";
import type { BrowserSessionPrincipal, SessionService } from "../sessions/service";
import { AccountPage, type AccountView } from "./account";
import { sameOriginPost, type FormTokens } from "./csrf";
import { MessagePage } from "./layout";
import { field, htmlPage, passRetryAfter, seeOther, type PageSet } from "./respond";
import type { BrowserSessions } from "./session";

/** What a finished action says on the account page it redirects to (?done=...). */
const NOTICES: Record<string, string> = {
  "session-revoked": "That session is signed out.",
  "others-revoked": "Every other session is signed out.",
  "password-changed": "Password changed. Your other sessions are signed out.",
  "key-deleted": "The API key is deleted.",
  "totp-removed": "The authenticator and the recovery codes are removed: sign-in asks for the password only.",
  "application-revoked": "The application is signed out and must ask again.",
};

export interface SignedInForms {
  appName: string;
  origins: ReadonlySet<string>;
  browser: BrowserSessions;
  forms: FormTokens;
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
  sessions: SessionService;
  apiKeys: ApiKeyService;
  audit: AuditLog;
  ipLimit: IpLimit;
  withRequester: RequesterPlugin;
  /** The user's OpenID Connect consents (issue 15). */
  oidc: OidcService;
  /** Second factors (issue 13). */
  mfa: MfaService;
}

/** GET /account and its forms: sessions, password, API keys. Each form posts, then redirects back (POST/redirect/GET). */
export function accountPages(deps: AccountDeps) {
  const { appName, browser, forms, auth, sessions, apiKeys, audit, ipLimit, withRequester, oidc, mfa } = deps;
  const guard = signedInForm(deps);

  async function render(set: PageSet, status: number, principal: BrowserSessionPrincipal, extra: Partial<AccountView> = {}) {
    const view: AccountView = {
      appName,
      username: principal.username,
      email: principal.email,
      roles: principal.roles,
      isAdmin: principal.roles.includes("admin"),
      sessions: (await sessions.list(principal.userId)).map((session) => ({ ...session, current: session.id === principal.sessionId })),
      keys: await apiKeys.list(principal.userId),
      applications: await oidc.listConsents(principal.userId),
      csrf: (form) => forms.issue(form, principal.sessionId),
      secondFactors: await mfa.factors(principal.userId),
      ...extra,
    };
    return htmlPage(set, status, String(<AccountPage {...view} />));
  }

  /** An expected failure (bad input, a wrong password, a limit) shown on the page; anything else propagates. */
  async function failure(set: PageSet, principal: BrowserSessionPrincipal, error: unknown) {
    if (!(error instanceof ApiError)) throw error;
    const message = error.details?.[0]?.message ?? error.message;
    if (error.status === 429) passRetryAfter(set, error);
    return render(set, error.status, principal, { error: message });
  }

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    .get(
      "/account",
      async ({ request, query, set }) => {
        const principal = await browser.current(request);
        if (!principal) return seeOther(set, "/login?rd=%2Faccount", 302);
        return render(set, 200, principal, { notice: typeof query.done === "string" ? NOTICES[query.done] : undefined });
      },
      { detail: { hide: true } },
    )
    .post(
      "/account/sessions/revoke",
      async ({ request, body, set, requester }) => {
        const principal = await guard(request, body, set, "session-revoke");
        if (typeof principal === "string") return principal;
        try {
          const id = field(body, "session_id") ?? "";
          // This browser's own session (or the one it was handed off from) is signed out with the sign-out button.
          if (id === principal.sessionId || id === principal.rootSessionId) return seeOther(set, "/account");
          await sessions.revokeOwned(principal.userId, id);
          await audit.record({ event: "session_revoked", userId: principal.userId, ...requester, detail: { session_id: id, via: "browser" } });
          return seeOther(set, "/account?done=session-revoked");
        } catch (error) {
          return failure(set, principal, error);
        }
      },
      { detail: { hide: true } },
    )
    .post(
      "/account/sessions/revoke-others",
      async ({ request, body, set, requester }) => {
        const principal = await guard(request, body, set, "session-revoke-others");
        if (typeof principal === "string") return principal;
        await auth.logout(principal, "others", requester);
        return seeOther(set, "/account?done=others-revoked");
      },
      { detail: { hide: true } },
    )
    .post(
      "/account/password",
      async ({ request, body, set, requester: client }) => {
        const principal = await guard(request, body, set, "password");
        if (typeof principal === "string") return principal;
        try {
          // The same limits as POST /api/v1/auth/password: per address, then per account inside the service.
          ipLimit(client, "/account/password");
          await auth.changePassword(principal, field(body, "current_password") ?? "", field(body, "new_password") ?? "", client);
          return seeOther(set, "/account?done=password-changed");
        } catch (error) {
          return failure(set, principal, error);
        }
      },
      { detail: { hide: true } },
    )
    .post(
      "/account/keys",
      async ({ request, body, set, requester }) => {
        const principal = await guard(request, body, set, "key-create");
        if (typeof principal === "string") return principal;
        try {
          const expires = field(body, "expires_in");
          const created = await apiKeys.create(principal, { name: field(body, "name") ?? "", expiresIn: expires ? Number(expires) : undefined });
          await audit.record({ event: "key_created", userId: principal.userId, ...requester, detail: { key_id: created.key_id, name: created.name } });
          // Shown in this answer only (never in a URL or a redirect): the secret exists nowhere else.
          return await render(set, 201, principal, { newKey: { name: created.name, secret: created.api_key } });
        } catch (error) {
          return failure(set, principal, error);
        }
      },
      { detail: { hide: true } },
    )
    .post(
      "/account/applications/revoke",
      async ({ request, body, set, requester }) => {
        const principal = await guard(request, body, set, "application-revoke");
        if (typeof principal === "string") return principal;
        // Unknown or already withdrawn: nothing to do, the page shows the current list.
        const withdrawn = await oidc.revokeConsent(principal.userId, field(body, "client_id") ?? "", requester);
        return seeOther(set, withdrawn ? "/account?done=application-revoked" : "/account");
      },
      { detail: { hide: true } },
    )
    // Two-step sign-in (issue 13): the same service calls as /api/v1/auth/mfa/*.
    .post(
      "/account/mfa/totp",
      async ({ request, body, set }) => {
        const principal = await guard(request, body, set, "totp-start");
        if (typeof principal === "string") return principal;
        try {
          const started = await mfa.startTotp(principal.userId, principal.username, principal.sessionId);
          return await render(set, 200, principal, { enrolment: { secret: started.secret, qrSvg: started.qr_svg } });
        } catch (error) {
          return failure(set, principal, error);
        }
      },
      { detail: { hide: true } },
    )
    .post(
      "/account/mfa/totp/confirm",
      async ({ request, body, set, requester: client }) => {
        const principal = await guard(request, body, set, "totp-confirm");
        if (typeof principal === "string") return principal;
        try {
          ipLimit(client, "/account/mfa/totp/confirm");
          const codes = await auth.enableTotp(principal, field(body, "code") ?? "", client);
          return await render(set, 200, principal, { newRecoveryCodes: codes, notice: "The authenticator is on." });
        } catch (error) {
          return failure(set, principal, error);
        }
      },
      { detail: { hide: true } },
    )
    .post(
      "/account/mfa/recovery-codes",
      async ({ request, body, set, requester }) => {
        const principal = await guard(request, body, set, "recovery-codes");
        if (typeof principal === "string") return principal;
        try {
          return await render(set, 200, principal, { newRecoveryCodes: await auth.newRecoveryCodes(principal, requester) });
        } catch (error) {
          return failure(set, principal, error);
        }
      },
      { detail: { hide: true } },
    )
    .post(
      "/account/mfa/totp/delete",
      async ({ request, body, set, requester: client }) => {
        const principal = await guard(request, body, set, "totp-delete");
        if (typeof principal === "string") return principal;
        try {
          ipLimit(client, "/account/mfa/totp/delete");
          await auth.removeTotp(principal, { password: field(body, "password") ?? "" }, client);
          return seeOther(set, "/account?done=totp-removed");
        } catch (error) {
          return failure(set, principal, error);
        }
      },
      { detail: { hide: true } },
    )
    .post(
      "/account/keys/delete",
      async ({ request, body, set, requester }) => {
        const principal = await guard(request, body, set, "key-delete");
        if (typeof principal === "string") return principal;
        try {
          const keyId = field(body, "key_id") ?? "";
          await apiKeys.delete(principal.userId, keyId);
          await audit.record({ event: "key_deleted", userId: principal.userId, ...requester, detail: { key_id: keyId } });
          return seeOther(set, "/account?done=key-deleted");
        } catch (error) {
          return failure(set, principal, error);
        }
      },
      { detail: { hide: true } },
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
  "/account/mfa/totp/confirm",
  "/account/mfa/recovery-codes",
  "/account/mfa/totp/delete",
] as const;
