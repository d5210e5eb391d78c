import { t, type TSchema } from "elysia";
import { withHeaders } from "@elysiajs/openapi";
import { Type, type IntegerOptions } from "@sinclair/typebox";

/** OpenAPI security requirements, naming the schemes declared in modules/system. */
export const SESSION_SECURITY: Record<string, string[]>[] = [{ bearer: [] }, { cookie: [] }];
export const SESSION_OR_KEY_SECURITY: Record<string, string[]>[] = [...SESSION_SECURITY, { apiKey: [] }];

/**
 * A JSON integer and nothing else. Elysia's own `t.Integer` is a number-or-numeric-string union (it is built for
 * query strings and path parameters, elysiajs/elysia#1532), so in a JSON body it lets "3600", "1e3" or "0x100"
 * through and documents `anyOf: [string, integer]` with a default of 0. TypeBox's Integer (Elysia's required peer
 * dependency, the type `t.Integer` wraps) is checked as is: a string is 422 validation_failed.
 */
export const JsonInteger = (options?: IntegerOptions) => Type.Integer(options);

/** A 204 response: no body. modules/system removes the `content` the OpenAPI generator gives a void schema. */
export const NoContent = (description: string) => t.Void({ description });

/**
 * Every error code a route can answer, with what it means. Each route documents, per status, the codes it
 * really returns (see errorResponses), so a client can tell `key_name_taken` from `validation_failed` without
 * reading the source.
 */
export const ERROR_CODES = {
  // Request shape (the global body parser and Elysia's validation)
  invalid_json: "the body is not valid JSON",
  payload_too_large: "the body is over 64 KiB (the connection is closed)",
  unsupported_media_type: "the body is not application/json (/token also takes application/x-www-form-urlencoded)",
  validation_failed:
    "a field is missing, of the wrong type or out of range, or the JSON body is not an object; `details` lists each field with a message",
  // Credentials on protected routes (modules/auth/guard)
  unauthorized: "no credential was presented",
  invalid_token: "the access token is malformed, expired, signed with another key, or its session has ended",
  invalid_api_key: "the API key is malformed, fails its checksum, is unknown, expired or deleted, or its user is disabled",
  session_required: "an API key was presented: this route needs a signed-in session",
  forbidden: "the signed-in user does not have the admin role",
  csrf_rejected:
    "cookie mode (and /token in every mode): the request's Origin (or Referer) is neither `PUBLIC_URL` nor in `ALLOWED_ORIGINS`, or it carries Sec-Fetch-Site: cross-site",
  rate_limited:
    "too many requests: per client IP or failed passwords per account on routes that check a secret, per API key when `API_KEY_RATE_LIMIT` is set, or API keys created per user and hour; retry after `Retry-After` seconds",
  // Accounts and sign-in
  registration_disabled: "registration is closed (`ALLOW_REGISTRATION` is not true)",
  username_taken: "another account has this username",
  email_taken: "another account has this email address",
  weak_password: "the password is the username, the email (or its local part) or a common password; `details` names the field",
  invalid_credentials: "unknown user or wrong password (the same answer for both)",
  account_disabled: "the password is right but an admin has disabled the account",
  invalid_refresh_token: "no refresh token was presented, or it is unknown, expired or revoked",
  refresh_token_reused: "a spent refresh token was presented after the grace window: its whole session is now revoked",
  invalid_current_password: "current_password is wrong (counts toward the brute-force limits like a failed login)",
  session_not_found: "no live session with this id belongs to you",
  // Mail and second factors
  mail_disabled: "this server sends no mail: neither `SMTP_URL` nor `MAIL_TRANSPORT=log` is set",
  invalid_code: "the code or link token is wrong, already used, expired, or was answered wrongly 5 times (ask for a new one)",
  challenge_expired: "the sign-in challenge is unknown, expired (`EMAIL_CODE_TTL`), already answered, or had 5 wrong codes: sign in again",
  invalid_mfa_code: "the second-step code (emailed, TOTP or recovery code) is wrong or already used; it counts toward the brute-force limits",
  mfa_not_enrolled: "the account has no authenticator (or no enrolment was started)",
  mfa_already_enrolled: "the account already has a confirmed authenticator: remove it first",
  invalid_password_or_code: "neither the password nor the authenticator code given is right",
  user_not_verified:
    "the password is right but the email address is not verified yet (`REQUIRE_EMAIL_VERIFICATION=true`): follow the mailed link or POST /verify-email",
  // API keys
  key_limit_reached: "you already hold `API_KEYS_MAX_PER_USER` keys",
  key_name_taken: "you already have a key with this name",
  key_not_found: "no key with this id belongs to you",
  // Admin
  user_not_found: "no user has this id",
  last_admin: "this is the last enabled admin: it cannot be disabled, demoted or deleted",
  // OpenID Connect (issue 15)
  oidc_client_exists: "a client with this client_id is already registered",
  oidc_client_not_found: "no OpenID Connect client has this client_id",
  oidc_client_public: "a public client has no secret to rotate",
  consent_not_found: "you have not allowed this application",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429;
/** Which error codes a route answers with each status. */
export type ErrorSpec = { readonly [S in ErrorStatus]?: readonly ErrorCode[] };

const errorShape = {
  message: t.String({ description: "A sentence for a human" }),
  details: t.Optional(
    t.Array(t.Object({ field: t.String(), message: t.String() }), {
      description: "validation_failed and weak_password only: each field at fault (never the submitted value)",
    }),
  ),
};

/** The shape of every error; routes use errorResponses, which says which codes each status carries. */
export const ErrorBody = t.Object(
  { error: t.String({ description: "snake_case error code" }), ...errorShape },
  { description: "Every error has this shape." },
);

const WWW_AUTHENTICATE = t.String({ description: 'Bearer realm="latchkey", with error="invalid_token" for a bad token or API key' });

/** Response headers that come with some codes. */
const HEADERS_BY_CODE: Partial<Record<ErrorCode, Record<string, TSchema>>> = {
  unauthorized: { "WWW-Authenticate": WWW_AUTHENTICATE },
  invalid_token: { "WWW-Authenticate": WWW_AUTHENTICATE },
  invalid_api_key: { "WWW-Authenticate": WWW_AUTHENTICATE },
  rate_limited: { "Retry-After": t.String({ description: "Seconds to wait before trying again" }) },
  payload_too_large: { Connection: t.String({ description: "close" }) },
};

/** `- \`code\`: meaning` lines (Markdown, which OpenAPI descriptions allow). */
const describeCodes = (codes: readonly string[], meaning: (code: string) => string) =>
  codes.map((code) => `- \`${code}\`: ${meaning(code)}`).join("\n");

/**
 * One error response whose description names the codes it carries. `error` stays a plain string (no enum):
 * responses are validated, and a code added later must not turn into a 500.
 */
export function errorBody(codes: readonly ErrorCode[]): typeof ErrorBody {
  const unique = [...new Set(codes)];
  const schema = t.Object(
    { error: t.String({ description: `snake_case error code: ${unique.join(", ")}` }), ...errorShape },
    { description: describeCodes(unique, (code) => ERROR_CODES[code as ErrorCode]) },
  );
  const headers = Object.assign({}, ...unique.map((code) => HEADERS_BY_CODE[code] ?? {})) as Record<string, TSchema>;
  return Object.keys(headers).length ? withHeaders(schema, headers) : schema;
}

type StatusesOf<S extends readonly ErrorSpec[]> = Extract<{ [I in keyof S]: keyof S[I] }[number], ErrorStatus>;

/**
 * The error responses of a route: the code lists of several specs (e.g. its guard's and its own) merged into one
 * response per status, typed with exactly those statuses.
 */
export function errorResponses<const S extends readonly ErrorSpec[]>(...specs: S): { [K in StatusesOf<S>]: typeof ErrorBody } {
  const merged = new Map<number, ErrorCode[]>();
  for (const spec of specs)
    for (const [status, codes] of Object.entries(spec) as [string, readonly ErrorCode[]][])
      merged.set(Number(status), [...(merged.get(Number(status)) ?? []), ...codes]);
  return Object.fromEntries([...merged].map(([status, codes]) => [status, errorBody(codes)])) as { [K in StatusesOf<S>]: typeof ErrorBody };
}

/**
 * Any request with a body passes the global parser (src/http/body.ts) first, even on a route that takes none:
 * it must be a JSON object.
 */
export const BODY_ERRORS = {
  400: ["invalid_json"],
  413: ["payload_too_large"],
  415: ["unsupported_media_type"],
  422: ["validation_failed"],
} as const satisfies ErrorSpec;
export const INVALID_INPUT = { 422: ["validation_failed"] } as const satisfies ErrorSpec;
/** `secretCheck` routes: the per-IP limit (and, where a password is checked, the per-account delays). */
export const SECRET_CHECK = { 429: ["rate_limited"] } as const satisfies ErrorSpec;
/** A state-changing route that accepts the access cookie (cookie mode): the Origin check. */
export const CSRF_CHECK = { 403: ["csrf_rejected"] } as const satisfies ErrorSpec;
const CREDENTIAL_ERRORS = { 401: ["unauthorized", "invalid_token", "invalid_api_key"] } as const satisfies ErrorSpec;
/** The `authOrApiKey` guard: a session or an API key; a key over API_KEY_RATE_LIMIT is 429. */
export const SESSION_OR_KEY_GUARD = { ...CREDENTIAL_ERRORS, 429: ["rate_limited"] } as const satisfies ErrorSpec;
/**
 * The `auth` guard: a session. An API key is checked (a bad one is 401 invalid_api_key), then refused with
 * session_required without spending its quota.
 */
export const SESSION_GUARD = { ...CREDENTIAL_ERRORS, 403: ["session_required"] } as const satisfies ErrorSpec;
/** The `admin` guard: a session whose user has the admin role. */
export const ADMIN_GUARD = { ...CREDENTIAL_ERRORS, 403: ["session_required", "forbidden"] } as const satisfies ErrorSpec;

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

export const UserBody = t.Object({
  id: t.String(),
  username: t.String(),
  email: t.Nullable(t.String()),
  email_verified: t.Boolean(),
  roles: t.Array(t.String()),
  created_at: t.String({ format: "date-time" }),
});

export const RegisterBody = t.Object({
  username: t.String({ description: "3-32 of a-z 0-9 . _ -, starting with a letter or digit; stored lower-cased" }),
  password: t.String({ description: "At least `PASSWORD_MIN_LENGTH` characters, at most 1024 bytes" }),
  email: t.Optional(t.Union([t.String(), t.Null()], { description: "Stored lower-cased; unique. `null` or absent: no email" })),
});

export const LoginBody = t.Object({
  username: t.Optional(t.String({ description: "A username or an email address, case-insensitive" })),
  email: t.Optional(t.String({ description: "Same as username: either field may carry either value" })),
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
  refresh_token: t.Optional(t.String({ description: "bearer and header modes; cookie mode reads the refresh cookie" })),
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
      t.Array(t.String(), { description: "After a totp_enrollment challenge only: 10 single-use recovery codes, shown this once" }),
    ),
  },
  "Token response of the delivery mode (`TOKEN_DELIVERY`)",
);

export const MessageBody = t.Object({ message: t.String() });

export const PendingVerificationResponse = t.Object(
  { message: t.String(), user: UserBody },
  { title: "REQUIRE_EMAIL_VERIFICATION=true: no tokens until the address is verified" },
);

export const SecondFactorsBody = t.Object(
  {
    totp: t.Boolean({ description: "A confirmed TOTP authenticator" }),
    recovery_codes_left: JsonInteger({ description: "Unused recovery codes" }),
  },
  { description: "The user's second factors" },
);

export const MeResponse = t.Object({ user: UserBody, second_factors: SecondFactorsBody });

export const ChallengeResponse = t.Object(
  {
    challenge_id: t.String({ description: "Send it to POST /login/verify" }),
    methods: t.Array(t.Union([t.Literal("totp"), t.Literal("recovery_code"), t.Literal("email_code"), t.Literal("totp_enrollment")]), {
      description: "What the challenge may be answered with",
    }),
    expires_in: JsonInteger({ description: "Seconds the challenge lives" }),
  },
  { description: "The password was right; a second step is due" },
);

export const LoginVerifyBody = t.Object({
  challenge_id: t.String(),
  code: t.Optional(t.String({ description: "The emailed 6-digit code, or the authenticator's current code", maxLength: 32 })),
  recovery_code: t.Optional(t.String({ description: "One of the recovery codes (dashes and case do not matter)", maxLength: 64 })),
});

export const RecoveryCodesBody = t.Object({
  recovery_codes: t.Array(t.String(), { description: "10 single-use codes, shown this once (only their hashes are stored)" }),
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

export const PasswordChangeBody = t.Object({
  current_password: t.String(),
  new_password: t.String({ description: "At least `PASSWORD_MIN_LENGTH` characters, at most 1024 bytes, not a common password" }),
});
