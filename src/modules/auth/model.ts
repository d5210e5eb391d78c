import { t, type TSchema } from "elysia";
import { describeCodes } from "../../http/error-catalogue";
import { JsonInteger, PlainText } from "../../http/schema";
import { UserBody } from "../users/model";
import { RECOVERY_CODE_COUNT, SecondFactorsBody } from "../mfa/model";
import { AuthenticationCredential } from "../passkeys/model";

export const OAuthErrorBody = t.Object(
  {
    error: t.Union([t.Literal("invalid_request"), t.Literal("invalid_grant"), t.Literal("unsupported_grant_type")]),
    error_description: t.String(),
    message: t.String(),
  },
  {
    description: describeCodes(["invalid_request", "invalid_grant", "unsupported_grant_type"], (code) =>
      code === "invalid_request"
        ? "a parameter is missing or malformed, or the body is not a valid JSON object or form"
        : code === "invalid_grant"
          ? "wrong username or password, a disabled account, or an unknown, expired, revoked or reused refresh token"
          : "grant_type is neither password nor refresh_token",
    ) + "\n\n(RFC 6749 §5.2 error response)",
  },
);

export const OAuthForbiddenBody = t.Object(
  {
    error: t.Union([t.Literal("user_not_verified"), t.Literal("mfa_required"), t.Literal("csrf_rejected")]),
    error_description: t.Optional(t.String()),
    message: t.String(),
  },
  {
    description: describeCodes(["user_not_verified", "mfa_required", "csrf_rejected"], (code) =>
      code === "user_not_verified"
        ? "the password is right but the email address is not verified (`REQUIRE_EMAIL_VERIFICATION=true`); told only to a client that sent the right password"
        : code === "mfa_required"
          ? "the password is right but the account signs in with a second step (TOTP, a recovery code or an emailed code), which this grant cannot carry: use POST /api/v1/auth/login and POST /api/v1/auth/login/verify. No token is issued; told only to a client that sent the right password."
          : "a browser request from another site's page (a foreign `Origin` or `Referer`, or `Sec-Fetch-Site: cross-site` without a trusted Origin), in every delivery mode: refused before any limit counts it. `{error, message}` only.",
    ),
  },
);

export const RegisterBody = t.Object({
  username: PlainText({ description: "3-32 of a-z 0-9 . _ -, starting with a letter or digit; stored lower-cased" }),
  password: t.String({ description: "At least `PASSWORD_MIN_LENGTH` characters, at most 1024 bytes" }),
  email: t.Optional(t.Union([PlainText(), t.Null()], { description: "Stored lower-cased; unique. `null` or absent: no email" })),
});

export const LoginBody = t.Object({
  username: t.Optional(PlainText({ description: "A username or an email address, case-insensitive" })),
  email: t.Optional(PlainText({ description: "Same as username: either field may carry either value" })),
  password: t.String(),
});

// Loosely typed on purpose: the token endpoint reports a malformed request as RFC 6749 invalid_request, not 422.
export const TokenRequestBody = t.Object({
  grant_type: t.Optional(t.Unknown({ description: "string: password or refresh_token" })),
  username: t.Optional(t.Unknown({ description: "string: username or email (password grant)" })),
  password: t.Optional(t.Unknown({ description: "string (password grant)" })),
  refresh_token: t.Optional(t.Unknown({ description: "string (refresh_token grant)" })),
});

export const RefreshBody = t.Object({
  refresh_token: t.Optional(PlainText({ description: "bearer and header modes; cookie mode reads the refresh cookie" })),
});

const tokenFields = {
  access_token: t.String(),
  token_type: t.Literal("bearer"),
  expires_in: JsonInteger({ description: "Seconds until the access token expires" }),
  refresh_token: t.String(),
};

export const OAuthTokenResponse = t.Object(tokenFields, { description: "RFC 6749 §5.1 token response" });

const tokenResponse = (extra: Record<string, TSchema> = {}, description = "Token response; its shape depends on `TOKEN_DELIVERY`") =>
  t.Union(
    [
      t.Object({ ...tokenFields, user: UserBody, ...extra }, { title: "bearer / header mode" }),
      t.Object({ message: t.String(), expires_in: JsonInteger(), user: UserBody, ...extra }, { title: "cookie mode (tokens in cookies)" }),
    ],
    { description },
  );

export const TokenResponse = tokenResponse();

/** POST /login/verify: a sign-in that enrolled TOTP (totp_enrollment) also gets its recovery codes. */
export const VerifiedTokenResponse = tokenResponse(
  {
    recovery_codes: t.Optional(
      t.Array(t.String(), { description: `After a totp_enrollment challenge only: ${RECOVERY_CODE_COUNT} single-use recovery codes, shown this once` }),
    ),
  },
  "Token response of the delivery mode (`TOKEN_DELIVERY`)",
);

export const MessageBody = t.Object({ message: t.String() });

export const PendingVerificationResponse = t.Object(
  { message: t.String(), user: UserBody },
  { title: "REQUIRE_EMAIL_VERIFICATION=true: no tokens until the address is verified" },
);

export const MeResponse = t.Object({ user: UserBody, second_factors: SecondFactorsBody });

export const ChallengeResponse = t.Object(
  {
    challenge_id: t.String({ description: "Send it to POST /login/verify" }),
    methods: t.Array(t.Union([t.Literal("totp"), t.Literal("recovery_code"), t.Literal("email_code"), t.Literal("totp_enrollment"), t.Literal("passkey")]), {
      description: "What the challenge may be answered with",
    }),
    expires_in: JsonInteger({ description: "Seconds the challenge lives" }),
  },
  { description: "The password was right; a second step is due" },
);

export const LoginVerifyBody = t.Object({
  challenge_id: PlainText(),
  code: t.Optional(PlainText({ description: "The emailed 6-digit code, or the authenticator's current code", maxLength: 32 })),
  recovery_code: t.Optional(PlainText({ description: "One of the recovery codes (dashes and case do not matter)", maxLength: 64 })),
  passkey: t.Optional(AuthenticationCredential),
});

export const RecoveryCodesBody = t.Object({
  recovery_codes: t.Array(t.String(), { description: `${RECOVERY_CODE_COUNT} single-use codes, shown this once (only their hashes are stored)` }),
});

export const TotpEnrollmentResponse = t.Object({
  secret: t.String({ description: "The TOTP secret, base32 (for typing into an authenticator app)" }),
  otpauth_uri: t.String({ description: "otpauth://totp/... (RFC 6238: SHA-1, 6 digits, 30 s)" }),
  qr_svg: t.String({ description: "The otpauth URI as a QR code (SVG)" }),
});

const identityFields = {
  user_id: t.String(),
  username: t.String(),
  email: t.Nullable(t.String()),
  roles: t.Array(t.String()),
  metadata: t.Record(t.String(), t.Unknown(), { description: "Free JSON set by an admin (e.g. a licensing tier)" }),
};

export const ValidateResponse = t.Union([
  t.Object(
    {
      ...identityFields,
      session_id: t.String(),
      expires_at: t.String({ format: "date-time", description: "When the presented access token expires (its `exp`)" }),
      session_expires_at: t.String({
        format: "date-time",
        description: "When the session behind it ends unless it is refreshed (or, in header mode, used) before then",
      }),
    },
    { title: "access token" },
  ),
  t.Object(
    { ...identityFields, key_id: t.String(), scopes: t.Array(t.String()), auth: t.Literal("api_key") },
    { title: "API key" },
  ),
]);

export const LogoutQuery = t.Object({
  scope: t.Optional(t.Union([t.Literal("current"), t.Literal("others"), t.Literal("global")], { description: "Default current" })),
});

export const PasswordRemoveBody = t.Object({ current_password: t.String({ description: "The password being removed" }) });

export const PasswordChangeBody = t.Object({
  current_password: t.Optional(t.String({ description: "Required when the account has a password; an account without one (passkeys only) sets its first without it" })),
  new_password: t.String({ description: "At least `PASSWORD_MIN_LENGTH` characters, at most 1024 bytes, not a common password" }),
});
