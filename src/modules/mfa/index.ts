import { Elysia, t } from "elysia";
import { AUTH_PREFIX } from "../../http/routes";
import { JSON_BODY } from "../../http/body";
import type { RequesterPlugin } from "../../http/client-ip";
import type { rateLimitPlugin } from "../../limits/plugin";
import type { authGuard } from "../auth/guard";
import { MessageBody, RecoveryCodesBody, TotpEnrollmentResponse } from "../auth/model";
import { SESSION_SECURITY, PlainText } from "../../http/schema";
import { BODY_ERRORS, CSRF_CHECK, errorResponses, SECRET_CHECK, SESSION_GUARD } from "../../http/error-catalogue";
import type { AuthService } from "../auth/service";
import type { MfaService } from "./service";
import { RECOVERY_CODE_COUNT } from "./model";

/** Self-service TOTP and recovery codes, on a signed-in session (RFC 6238; NIST SP 800-63B §5.1.4, §5.1.5). */
export function mfaRoutes(deps: {
  auth: AuthService;
  mfa: MfaService;
  guard: ReturnType<typeof authGuard>;
  rateLimit: ReturnType<typeof rateLimitPlugin>;
  withRequester: RequesterPlugin;
}) {
  const { auth, mfa, guard, rateLimit, withRequester } = deps;
  return new Elysia({ prefix: AUTH_PREFIX, tags: ["second factors"] })
    .use(withRequester)
    .use(guard)
    .use(rateLimit)
    .post("/mfa/totp", async ({ principal }) => mfa.startTotp(principal.userId, principal.username, principal.sessionId), {
      auth: true,
      response: { 200: TotpEnrollmentResponse, ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, { 409: ["mfa_already_enrolled"] }) },
      detail: {
        summary: "Start TOTP enrolment: a new secret, its otpauth:// URI and a QR code",
        description: "Nothing changes at sign-in until POST /mfa/totp/confirm proves the app has the secret. Starting again replaces an unconfirmed secret.",
        security: SESSION_SECURITY,
      },
    })
    .post("/mfa/totp/confirm", async ({ principal, body, requester }) => ({ recovery_codes: await auth.enableTotp(principal, body.code, requester) }), {
      auth: true,
      secretCheck: true,
      body: t.Object({ code: PlainText({ description: "The authenticator's current 6-digit code", maxLength: 32 }) }),
      parse: JSON_BODY,
      response: {
        200: RecoveryCodesBody,
        ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, SECRET_CHECK, { 400: ["invalid_code"], 404: ["mfa_not_enrolled"] }),
      },
      detail: {
        summary: `Confirm TOTP with a first code; answers ${RECOVERY_CODE_COUNT} single-use recovery codes, shown once`,
        description: "From then on, sign-in answers 202 with a challenge (methods totp and recovery_code). A wrong code counts toward the brute-force limits.",
        security: SESSION_SECURITY,
      },
    })
    .post("/mfa/recovery-codes", async ({ principal, requester }) => ({ recovery_codes: await auth.newRecoveryCodes(principal, requester) }), {
      auth: true,
      response: { 200: RecoveryCodesBody, ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["mfa_not_enrolled"] }) },
      detail: { summary: "Replace the recovery codes (the old ones stop working)", security: SESSION_SECURITY },
    })
    .delete(
      "/mfa/totp",
      async ({ principal, body, requester }) => {
        await auth.removeTotp(principal, body, requester);
        return { message: "Authenticator and recovery codes removed." };
      },
      {
        auth: true,
        secretCheck: true,
        body: t.Object({
          password: t.Optional(t.String({ description: "The current password" })),
          code: t.Optional(PlainText({ description: "Or the authenticator's current code", maxLength: 32 })),
        }),
        parse: JSON_BODY,
        response: {
          200: MessageBody,
          ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, SECRET_CHECK, { 403: ["invalid_password_or_code"], 404: ["mfa_not_enrolled"] }),
        },
        detail: { summary: "Remove TOTP and the recovery codes, with the password or a current code", security: SESSION_SECURITY },
      },
    );
}
