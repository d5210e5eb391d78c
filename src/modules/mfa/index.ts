import { Elysia, t } from "elysia";
import { JSON_BODY } from "../../http/body";
import type { ClientInfoReader } from "../../http/client-ip";
import { ApiError } from "../../errors";
import type { rateLimitPlugin } from "../../limits/plugin";
import type { AuditLog } from "../audit/service";
import type { authGuard } from "../auth/guard";
import { MessageBody, RecoveryCodesBody, TotpEnrollmentResponse } from "../auth/model";
import { SESSION_SECURITY } from "../../http/schema";
import { BODY_ERRORS, CSRF_CHECK, errorResponses, SECRET_CHECK, SESSION_GUARD } from "../../http/error-catalogue";
import type { AuthService } from "../auth/service";
import { mfaNotEnrolled, type MfaService } from "./service";

const invalidCode = () => new ApiError(400, "invalid_code", "The code is wrong or was already used.");

/** Self-service TOTP and recovery codes, on a signed-in session (RFC 6238; NIST SP 800-63B §5.1.4, §5.1.5). */
export function mfaRoutes(deps: {
  auth: AuthService;
  mfa: MfaService;
  guard: ReturnType<typeof authGuard>;
  audit: AuditLog;
  rateLimit: ReturnType<typeof rateLimitPlugin>;
  readClient: ClientInfoReader;
}) {
  const { auth, mfa, guard, audit, rateLimit, readClient } = deps;
  return new Elysia({ prefix: "/api/v1/auth", tags: ["second factors"] })
    .use(guard)
    .use(rateLimit)
    .post("/mfa/totp", ({ principal }) => mfa.startTotp(principal.userId, principal.username, principal.sessionId), {
      auth: true,
      response: { 200: TotpEnrollmentResponse, ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, { 409: ["mfa_already_enrolled"] }) },
      detail: {
        summary: "Start TOTP enrolment: a new secret, its otpauth:// URI and a QR code",
        description: "Nothing changes at sign-in until POST /mfa/totp/confirm proves the app has the secret. Starting again replaces an unconfirmed secret.",
        security: SESSION_SECURITY,
      },
    })
    .post(
      "/mfa/totp/confirm",
      ({ principal, body, request, server }) => {
        const client = readClient(request, server);
        const codes = auth.confirmEnrollment(principal, body.code, client);
        if (!codes) throw invalidCode();
        audit.record({ event: "totp_enabled", userId: principal.userId, ...client });
        return { recovery_codes: codes };
      },
      {
        auth: true,
        secretCheck: true,
        body: t.Object({ code: t.String({ description: "The authenticator's current 6-digit code", maxLength: 32 }) }),
        parse: JSON_BODY,
        response: {
          200: RecoveryCodesBody,
          ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, SECRET_CHECK, { 400: ["invalid_code"], 404: ["mfa_not_enrolled"] }),
        },
        detail: {
          summary: "Confirm TOTP with a first code; answers 10 single-use recovery codes, shown once",
          description: "From then on, sign-in answers 202 with a challenge (methods totp and recovery_code). A wrong code counts toward the brute-force limits.",
          security: SESSION_SECURITY,
        },
      },
    )
    .post(
      "/mfa/recovery-codes",
      ({ principal, request, server }) => {
        if (!mfa.hasTotp(principal.userId)) throw mfaNotEnrolled();
        const codes = mfa.replaceRecoveryCodes(principal.userId, principal.sessionId);
        audit.record({ event: "recovery_codes_generated", userId: principal.userId, ...readClient(request, server) });
        return { recovery_codes: codes };
      },
      {
        auth: true,
        response: { 200: RecoveryCodesBody, ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["mfa_not_enrolled"] }) },
        detail: { summary: "Replace the recovery codes (the old ones stop working)", security: SESSION_SECURITY },
      },
    )
    .delete(
      "/mfa/totp",
      async ({ principal, body, request, server }) => {
        const client = readClient(request, server);
        if (!mfa.hasTotp(principal.userId)) throw mfaNotEnrolled();
        if ((body.password === undefined) === (body.code === undefined))
          throw new ApiError(422, "validation_failed", "The request is not valid.", [{ field: "password", message: "Give either password or code." }]);
        const proven =
          body.password !== undefined ? await auth.confirmPassword(principal, body.password, client) : auth.confirmTotp(principal, body.code!, client);
        if (!proven) throw new ApiError(403, "invalid_password_or_code", "The password or code is incorrect.");
        mfa.removeAll(principal.userId, principal.sessionId);
        audit.record({ event: "totp_removed", userId: principal.userId, ...client });
        return { message: "Authenticator and recovery codes removed." };
      },
      {
        auth: true,
        secretCheck: true,
        body: t.Object({
          password: t.Optional(t.String({ description: "The current password" })),
          code: t.Optional(t.String({ description: "Or the authenticator's current code", maxLength: 32 })),
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
