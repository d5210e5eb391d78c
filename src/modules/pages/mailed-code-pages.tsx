import { Elysia } from "elysia";
import { ApiError } from "../../errors";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import type { IpLimit } from "../../limits/plugin";
import { RESET_REQUESTED, type EmailFlows } from "../email/service";
import { CodePage, type CodeField } from "./codes";
import { sameOriginPost, type FormTokens } from "./csrf";
import { ForgotPasswordPage } from "./login";
import { field, htmlPage, passRetryAfter, type PageSet as Set } from "./respond";
import type { BrowserSessions } from "./session";
import type { SignInKit } from "./sign-in-kit";
import { problemOf } from "./signed-in-forms";

export interface MailedCodePageDeps extends SignInKit {
  appName: string;
  browser: BrowserSessions;
  forms: FormTokens;
  /** The sign-in origins: the only ones these forms may be posted from. */
  origins: ReadonlySet<string>;
  ipLimit: IpLimit;
  withRequester: RequesterPlugin;
  emailFlows: EmailFlows;
  mailEnabled: boolean;
}

/**
 * The signed-out pages of the mails: a forgotten password (asks for the address), and the pages where a mailed
 * code is typed (verifying an address, a password reset by code). Their forms are bound to the pre-session cookie.
 */
export function mailedCodePages(deps: MailedCodePageDeps) {
  const { appName, browser, forms, origins, ipLimit, withRequester, emailFlows, mailEnabled, message, bindingOf } = deps;

  const noMail = (set: Set) =>
    message(set, 404, "This server sends no mail", "There is no code to type: ask your administrator to verify your address or set a new password.", { href: "/login", text: "Sign in" });

  const forgotForm = (set: Set, status: number, binding: string, error?: string) =>
    htmlPage(set, status, String(<ForgotPasswordPage appName={appName} csrf={forms.issue("forgot", binding)} error={error} />));

  /**
   * One page where a mailed code is typed, signed out: its form (GET), and its POST, whose form is bound to the
   * pre-session cookie and posted from a sign-in origin; the address's limit comes before the code is checked, and
   * a refusal shows the form again with what was typed.
   */
  const codePage = (page: {
    path: string;
    form: string;
    again: string;
    /** The page's words and fields besides the code (`email`: what was typed, shown again after a refusal). */
    view: { title: string; intro: string; fields: (email: string | undefined) => CodeField[]; submit: string; back: { href: string; text: string } };
    spend: (email: string, code: string, body: unknown, client: ClientInfo) => Promise<unknown>;
    done: { title: string; text: string };
  }) => {
    const render = (set: Set, status: number, binding: string, error?: string, email?: string) =>
      htmlPage(
        set,
        status,
        String(
          <CodePage
            appName={appName}
            title={page.view.title}
            intro={page.view.intro}
            action={page.path}
            csrf={forms.issue(page.form, binding)}
            fields={page.view.fields(email)}
            submit={page.view.submit}
            error={error}
            back={page.view.back}
          />,
        ),
      );
    return new Elysia()
      .use(withRequester)
      .get(page.path, ({ request, set }) => (mailEnabled ? render(set, 200, bindingOf(request, set, browser.hostOf(request))) : noMail(set)), { detail: { hide: true } })
      .post(
        page.path,
        async ({ request, body, set, requester: client }) => {
          const binding = browser.binding(request);
          if (!sameOriginPost(request, origins) || !binding || !forms.check(page.form, binding, field(body, "csrf")))
            return message(set, 403, "Request refused", "This form expired or came from another site. Open the page again.", { href: page.path, text: page.again });
          const email = field(body, "email")?.trim() ?? "";
          try {
            ipLimit(client, page.path);
            await page.spend(email, field(body, "code")?.replace(/\s/g, "") ?? "", body, client);
            return message(set, 200, page.done.title, page.done.text, { href: "/login", text: "Sign in" });
          } catch (error) {
            if (!(error instanceof ApiError)) throw error;
            if (error.status === 429) passRetryAfter(set, error);
            return render(set, error.status, binding, problemOf(error), email);
          }
        },
        { detail: { hide: true } },
      );
  };

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
          return message(set, 200, "Check your mail", RESET_REQUESTED.message, { href: "/password/reset/code", text: "Type the code from the mail" });
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.status === 429) passRetryAfter(set, error);
          return forgotForm(set, error.status, binding, error.status === 429 ? "Too many requests. Try again later." : error.message);
        }
      },
      { detail: { hide: true } },
    )
    // The pages where a mailed code is typed (the mails carry a code and a link): verifying an address, and a
    // password reset by code. Not signed in: the CSRF token is bound to the pre-session cookie.
    .use(
      codePage({
        path: "/verify-email",
        form: "verify-email",
        again: "Verify your email",
        view: {
          title: "Verify your email",
          intro: "Type your email address and the 6-digit code we mailed to it.",
          fields: (email) => [{ name: "email", label: "Email address", type: "email", value: email }],
          submit: "Verify",
          back: { href: "/login", text: "Back to sign-in" },
        },
        spend: (email, code, _body, client) => emailFlows.verifyEmailCode(email, code, client),
        done: { title: "Email address verified", text: "Your email address is verified. You can sign in now." },
      }),
    )
    .use(
      codePage({
        path: "/password/reset/code",
        form: "reset-code",
        again: "Reset your password",
        view: {
          title: "Choose a new password",
          intro: "Type your email address, the 6-digit code we mailed to it, and a new password.",
          fields: (email) => [
            { name: "email", label: "Email address", type: "email", value: email },
            { name: "new_password", label: "New password", type: "new-password" },
          ],
          submit: "Set the new password",
          back: { href: "/password/forgot", text: "Mail me a new code" },
        },
        spend: (email, code, body, client) => emailFlows.resetPassword({ email, code }, field(body, "new_password") ?? "", client),
        done: { title: "Password changed", text: "Your password is changed and every device is signed out. Sign in with the new password." },
      }),
    );
}
