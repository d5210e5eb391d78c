import { Elysia, t } from "elysia";
import { AUTH_PREFIX } from "../../http/routes";
import type { RequesterPlugin } from "../../http/client-ip";
import { JSON_BODY, JSON_OR_FORM_BODY } from "../../http/body";
import { ApiError, apiErrors } from "../../errors";
import type { rateLimitPlugin } from "../../limits/plugin";
import type { authGuard } from "../auth/guard";
import { MessageBody } from "../auth/model";
import { UserBody } from "../users/model";
import { SESSION_SECURITY, PlainText } from "../../http/schema";
import { BODY_ERRORS, CSRF_CHECK, errorResponses, SECRET_CHECK, SESSION_GUARD } from "../../http/error-catalogue";
import type { AuthService } from "../auth/service";
import { toPublicUser } from "../users/service";
import { AcceptedBody, EmailBody, EmailChangeBody, HtmlErrorPage, HtmlPage, PasswordResetBody, TokenQuery, VerifyEmailBody } from "./model";
import { linkOutcome, mailedLinkPage, resetPasswordForm } from "./pages";
import type { EmailFlows } from "./service";
import { MAX_CODE_FAILURES } from "../codes/service";

/** The routes of the reset form, which a browser posts as a form (the other routes take JSON only). */
export const EMAIL_FORM_PATHS = [`${AUTH_PREFIX}/password/reset`];

const MAIL_ERRORS = { 403: ["mail_disabled"] } as const;

/**
 * Email verification and password reset (issue 13). The routes that may send mail answer 202 with one body for
 * every address; each is behind the per-IP limit (`secretCheck`) and mails an address at most once a minute.
 */
export function emailRoutes(deps: {
  flows: EmailFlows;
  auth: AuthService;
  guard: ReturnType<typeof authGuard>;
  rateLimit: ReturnType<typeof rateLimitPlugin>;
  withRequester: RequesterPlugin;
  appName: string;
}) {
  const { flows, auth, guard, rateLimit, withRequester, appName } = deps;
  const outcome = (status: number, title: string, message: string) => mailedLinkPage(status, linkOutcome(appName, title, message));
  const resetForm = (status: number, token: string, problem?: string) => mailedLinkPage(status, resetPasswordForm(appName, token, problem));

  return new Elysia({ prefix: AUTH_PREFIX, tags: ["email"] })
    .use(withRequester)
    .use(guard)
    .use(rateLimit)
    .post(
      "/email",
      async ({ principal, body, set, requester: client }) => {
        await auth.requestEmailChange(principal, body.new_email, body.current_password, client);
        set.status = 202;
        return { message: "A code is on its way to the new address; confirm it at POST /email/confirm." };
      },
      {
        auth: true,
        secretCheck: true,
        body: EmailChangeBody,
        parse: JSON_BODY,
        response: {
          202: MessageBody,
          ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, SECRET_CHECK, MAIL_ERRORS, {
            403: ["invalid_current_password", "reauthentication_required"],
            409: ["email_taken"],
          }),
        },
        detail: {
          summary: "Change one's email address: mails a code to the new address",
          description:
            "An account with a password needs `current_password` (counted like a login; without it 422). An account without a password sends no `current_password` " +
            "(one sent fails like a wrong one, 403 `invalid_current_password`): its session must be a passkey sign-in of the last 5 minutes, else 403 `reauthentication_required` " +
            "(sign in again with a passkey; in a browser, /login/passkey-step). The address changes only when the code is confirmed at POST /email/confirm; " +
            "the new address gets at most one mail a minute (429 `rate_limited`).",
          security: SESSION_SECURITY,
        },
      },
    )
    .post(
      "/email/confirm",
      async ({ principal, body, requester }) => {
        const user = await flows.confirmEmailChange(principal, body.code, requester);
        return { message: "Email address changed.", user: toPublicUser(user) };
      },
      {
        auth: true,
        secretCheck: true,
        body: t.Object({ code: PlainText({ description: "The 6-digit code mailed to the new address", maxLength: 32 }) }),
        parse: JSON_BODY,
        response: {
          200: t.Object({ message: t.String(), user: UserBody }),
          ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, SECRET_CHECK, MAIL_ERRORS, { 400: ["invalid_code"], 409: ["email_taken"] }),
        },
        detail: {
          summary: "Confirm the new email address with the mailed code: it becomes the account's (verified), and the old address gets a notice",
          security: SESSION_SECURITY,
        },
      },
    )
    .post(
      "/verify-email",
      async ({ body, requester }) => {
        await flows.verifyEmailCode(body.email, body.code, requester);
        return { message: "Email address verified." };
      },
      {
        secretCheck: true,
        body: VerifyEmailBody,
        parse: JSON_BODY,
        response: { 200: MessageBody, ...errorResponses(BODY_ERRORS, SECRET_CHECK, MAIL_ERRORS, { 400: ["invalid_code"] }) },
        detail: {
          summary: "Verify an email address with the mailed 6-digit code",
          description: `A wrong code counts toward the brute-force limits of the account; after ${MAX_CODE_FAILURES} wrong answers the code is dead (ask for a new one).`,
        },
      },
    )
    .get(
      "/verify-email",
      async ({ query, requester }) => {
        try {
          if (!query.token) throw apiErrors.invalid_code("");
          await flows.verifyEmailToken(query.token, requester);
          return outcome(200, "Email address verified", "Your email address is verified. You can close this page and sign in.");
        } catch (error) {
          if (!(error instanceof ApiError) || error.code !== "invalid_code") throw error;
          return outcome(400, "This link does not work", "The link is wrong, already used or expired. Sign in and ask for a new one.");
        }
      },
      {
        secretCheck: true,
        query: TokenQuery,
        response: { 200: HtmlPage, 400: HtmlErrorPage, ...errorResponses(SECRET_CHECK) },
        detail: { summary: "The mailed verification link: marks the address verified and shows a page (400 page for a bad link)" },
      },
    )
    .post(
      "/verify-email/resend",
      ({ body, set }) => {
        set.status = 202;
        return flows.resendVerification(body.email);
      },
      {
        secretCheck: true,
        body: EmailBody,
        parse: JSON_BODY,
        response: { 202: AcceptedBody, ...errorResponses(BODY_ERRORS, SECRET_CHECK, MAIL_ERRORS) },
        detail: {
          summary: "Mail a new verification code and link",
          description: "Always 202 with the same body. Mails only an unverified address of an enabled account, at most once a minute; the count of wrong codes carries over to the new code.",
        },
      },
    )
    .post(
      "/password/forgot",
      ({ body, set, requester }) => {
        set.status = 202;
        return flows.forgotPassword(body.email, requester);
      },
      {
        secretCheck: true,
        body: EmailBody,
        parse: JSON_BODY,
        response: { 202: AcceptedBody, ...errorResponses(BODY_ERRORS, SECRET_CHECK, MAIL_ERRORS) },
        detail: {
          summary: "Mail a password reset code and link (valid `PASSWORD_RESET_TTL`, 15 minutes by default)",
          description: "Always 202 with the same body, known address or not. Mails only a verified address of an enabled account, at most once a minute.",
        },
      },
    )
    .get(
      "/password/reset",
      ({ query }) =>
        query.token
          ? resetForm(200, query.token)
          : outcome(400, "This link does not work", "The link has no token. Ask for a new one."),
      {
        query: TokenQuery,
        response: { 200: HtmlPage, 400: HtmlErrorPage },
        detail: { summary: "The mailed reset link: a form that posts the new password to POST /password/reset" },
      },
    )
    .post(
      "/password/reset",
      async ({ body, request, requester }): Promise<{ message: string }> => {
        // The form's answers are pages (Responses, which the JSON response schema does not see).
        const asBody = (page: Response) => page as unknown as { message: string };
        const isForm = request.headers.get("content-type")?.startsWith("application/x-www-form-urlencoded") ?? false;
        const proof = "token" in body ? { token: body.token } : { email: body.email, code: body.code };
        try {
          const ended = await flows.resetPassword(proof, body.new_password, requester);
          if (isForm) return asBody(outcome(200, "Password changed", "Your password is changed and every session is signed out. You can sign in with the new password."));
          return { message: `Password changed; ${ended} session(s) ended.` };
        } catch (error) {
          if (!isForm || !(error instanceof ApiError) || error.status === 429) throw error;
          const problem = error.details?.[0]?.message ?? error.message;
          return "token" in body && error.code !== "invalid_code"
            ? asBody(resetForm(error.status, body.token, problem))
            : asBody(outcome(error.status, "This link does not work", problem));
        }
      },
      {
        secretCheck: true,
        body: PasswordResetBody,
        parse: JSON_OR_FORM_BODY,
        response: {
          200: MessageBody,
          ...errorResponses(BODY_ERRORS, SECRET_CHECK, MAIL_ERRORS, { 400: ["invalid_code"], 422: ["weak_password"] }),
        },
        detail: {
          summary: "Set a new password with the mailed code (and address) or the link's token",
          description:
            "Ends every session of the user (their access tokens fail at once), keeps API keys, spends the code and sends a \"password changed\" notice. " +
            "A wrong, spent or expired code is 400 `invalid_code`; a weak new password is 422 and does not spend the code. The reset page posts here as a form and gets a page back.",
        },
      },
    );
}
