import { t, type TSchema } from "elysia";
import { withHeaders } from "@elysiajs/openapi";

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
export const describeCodes = (codes: readonly string[], meaning: (code: string) => string) =>
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
