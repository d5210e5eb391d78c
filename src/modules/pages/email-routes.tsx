import { Elysia } from "elysia";
import { ApiError, apiErrors } from "../../errors";
import type { RequesterPlugin } from "../../http/client-ip";
import type { IpLimit } from "../../limits/plugin";
import type { AuthService } from "../auth/service";
import type { EmailFlows } from "../email/service";
import type { BrowserSessionPrincipal } from "../sessions/service";
import type { UserService } from "../users/service";
import { EmailChangePage } from "./account";
import type { AccountForms } from "./account-forms";
import { CodePage } from "./codes";
import type { FormTokens } from "./csrf";
import type { Flashes } from "./flash";
import { PASSKEY_STEP_PATH } from "../../http/routes";
import { field, htmlPage, seeOther, type PageSet } from "./respond";

export interface EmailPageDeps extends AccountForms {
  appName: string;
  forms: FormTokens;
  flashes: Flashes;
  auth: Pick<AuthService, "requestEmailChange" | "waysIn" | "recentPasskeySession">;
  users: Pick<UserService, "findById">;
  emailFlows: Pick<EmailFlows, "resendVerification" | "verifyEmailCode" | "confirmEmailChange">;
  ipLimit: IpLimit;
  withRequester: RequesterPlugin;
  mailEnabled: boolean;
}

/**
 * The account's email address on the pages: verify it with a mailed code, or change it (a code to the new
 * address) on /account/email, where an account without a password confirms it with a passkey first. The same
 * service calls as /api/v1/auth/email and /verify-email.
 */
export function emailAddressPages(deps: EmailPageDeps) {
  const { appName, forms, flashes, auth, users, emailFlows, ipLimit, withRequester, mailEnabled, nav, form, back, said, signedInPage } = deps;

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

/** Paths of the email address's forms (their bodies are HTML forms). */
export const EMAIL_FORM_PATHS = ["/account/email", "/account/email/send", "/account/email/verify", "/account/email/confirm"] as const;

/** The email address's pages (GET). */
export const EMAIL_PAGE_PATHS = ["/account/email", "/account/email/verify", "/account/email/confirm"] as const;
