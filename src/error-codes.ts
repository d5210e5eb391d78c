/**
 * Every error code a route can answer: its one HTTP status, and what it means (for the API docs). One list,
 * typed, as Supabase Auth's apierrors/errorcode.go: `apiErrors` in errors.ts has a constructor per code, so a
 * code cannot be thrown with another status, and each route documents, per status, the codes it really returns
 * (http/error-catalogue.ts), so a client can tell `key_name_taken` from `validation_failed` without the source.
 */
export const ERROR_CODES = {
  // Request shape (the global body parser and Elysia's validation)
  invalid_json: [400, "the body is not valid JSON"],
  payload_too_large: [413, "the body is over 64 KiB (the connection is closed)"],
  unsupported_media_type: [
    415,
    "the body is not application/json (/token also takes application/x-www-form-urlencoded)",
  ],
  validation_failed: [
    422,
    "a field is missing, of the wrong type or out of range, or the JSON body is not an object; `details` lists each field with a message",
  ],
  // Credentials on protected routes (modules/auth/guard)
  unauthorized: [401, "no credential was presented"],
  invalid_token: [401, "the access token is malformed, expired, signed with another key, or its session has ended"],
  invalid_api_key: [
    401,
    "the API key is malformed, fails its checksum, is unknown, expired or deleted, or its user is disabled",
  ],
  session_required: [403, "an API key was presented: this route needs a signed-in session"],
  forbidden: [403, "the signed-in user does not have the admin role"],
  csrf_rejected: [
    403,
    "cookie mode (and /token in every mode): the request's Origin (or Referer) is neither `PUBLIC_URL` nor in `ALLOWED_ORIGINS`, or it carries Sec-Fetch-Site: cross-site",
  ],
  rate_limited: [
    429,
    "too many requests: per client IP or failed passwords per account on routes that check a secret, per API key when `API_KEY_RATE_LIMIT` is set, or API keys created per user and hour; retry after `Retry-After` seconds",
  ],
  // Accounts and sign-in
  registration_disabled: [403, "registration is closed (`ALLOW_REGISTRATION` is not true)"],
  username_taken: [409, "another account has this username"],
  email_taken: [409, "another account has this email address"],
  weak_password: [
    422,
    "the password is the username, the email (or its local part) or a common password; `details` names the field",
  ],
  invalid_credentials: [401, "unknown user or wrong password (the same answer for both)"],
  account_disabled: [403, "the password is right but an admin has disabled the account"],
  invalid_refresh_token: [401, "no refresh token was presented, or it is unknown, expired or revoked"],
  refresh_token_reused: [
    401,
    "a spent refresh token was presented after the grace window: its whole session is now revoked",
  ],
  invalid_current_password: [
    403,
    "current_password is wrong (counts toward the brute-force limits like a failed login)",
  ],
  session_not_found: [404, "no live session with this id belongs to you"],
  // Mail and second factors
  mail_disabled: [403, "this server sends no mail: neither `SMTP_URL` nor `MAIL_TRANSPORT=log` is set"],
  invalid_code: [
    400,
    "the code or link token is wrong, already used, expired, or was answered wrongly 5 times (ask for a new one)",
  ],
  challenge_expired: [
    401,
    "the sign-in challenge is unknown, expired (`EMAIL_CODE_TTL`), already answered, or had 5 wrong codes: sign in again",
  ],
  invalid_mfa_code: [
    401,
    "the second-step code (emailed, TOTP or recovery code) is wrong or already used; it counts toward the brute-force limits",
  ],
  mfa_not_enrolled: [404, "the account has no authenticator (or no enrolment was started)"],
  mfa_already_enrolled: [409, "the account already has a confirmed authenticator: remove it first"],
  invalid_password_or_code: [403, "neither the password nor the authenticator code given is right"],
  user_not_verified: [
    403,
    "the password is right but the email address is not verified yet (`REQUIRE_EMAIL_VERIFICATION=true`): follow the mailed link or POST /verify-email",
  ],
  // API keys
  key_limit_reached: [403, "you already hold `API_KEYS_MAX_PER_USER` keys"],
  key_name_taken: [409, "you already have a key with this name"],
  key_not_found: [404, "no key with this id belongs to you"],
  // Admin
  user_not_found: [404, "no user has this id"],
  last_admin: [409, "this is the last enabled admin: it cannot be disabled, demoted or deleted"],
  // OpenID Connect (issue 15)
  oidc_client_exists: [409, "a client with this client_id is already registered"],
  oidc_client_not_found: [404, "no OpenID Connect client has this client_id"],
  oidc_client_public: [409, "a public client has no secret to rotate"],
  consent_not_found: [404, "you have not allowed this application"],
  // Invitations (issue 24)
  invitation_not_found: [404, "no invitation has this id, or the invitation link's token is unknown"],
  invitation_expired: [410, "the invitation link is past its expiry"],
  invitation_spent: [410, "the invitation link has been used as many times as it allows"],
  invitation_revoked: [410, "an admin revoked the invitation link"],
  // PostgreSQL (issue 11)
  database_unavailable: [503, "the database (PostgreSQL) did not answer in time: try again shortly"],
  // Observability (issue 22)
  not_ready: [
    503,
    "/ready: the database did not answer, or (PostgreSQL) this instance does not hear other instances' revocations (its LISTEN connection is down); send it no traffic yet",
  ],
  invalid_metrics_token: [401, "/metrics on the main listener: no `Authorization: Bearer` with `METRICS_TOKEN` was presented, or another token"],
  // Passkeys (issue 25): every WebAuthn failure the server can see (a cancelled prompt never reaches it)
  passkey_challenge_expired: [
    401,
    "the passkey options are unknown, older than 5 minutes, already used, or were issued for another ceremony: ask for new options",
  ],
  passkey_unknown_credential: [401, "no account has this passkey (it was deleted, or registered on another server)"],
  passkey_already_registered: [409, "this authenticator already holds a passkey of an account (excludeCredentials)"],
  passkey_wrong_origin: [400, "the ceremony ran on an origin that is not a sign-in origin of this server (`PUBLIC_URL`, `SIGN_IN_URLS`)"],
  passkey_wrong_rp_id: [400, "the authenticator signed for another relying party than `PASSKEY_RP_ID` (or PUBLIC_URL's host)"],
  passkey_counter_regression: [
    401,
    "the authenticator's signature counter went back: it may be a clone. Refused and audited; the passkey still exists",
  ],
  passkey_verification_failed: [400, "the attestation or assertion is malformed, of the wrong type, or its signature does not verify"],
  passkey_not_found: [404, "no passkey with this id belongs to you"],
  // Requiring a passkey (issue 25): forward auth's `require = "passkey"`, the step-up page
  passkey_required: [
    401,
    "forward auth: a rule requires a session made with a passkey (`require = \"passkey\"`); this session was not, or the caller is an API key, which never is. Sign in with a passkey, or confirm one at /login/passkey-step",
  ],
  last_sign_in_method: [
    409,
    "this would leave the account no way to sign in: a password goes only while the account has a passkey, and the last passkey only while it has a password",
  ],
  no_password: [409, "the account has no password to remove"],
  reauthentication_required: [
    403,
    "an account without a password changes its email address only from a passkey sign-in of the last 5 minutes: sign in again with a passkey (in a browser, /login/passkey-step)",
  ],
} as const satisfies Record<string, readonly [ErrorStatus, string]>;

export type ErrorCode = keyof typeof ERROR_CODES;
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 410 | 413 | 415 | 422 | 429 | 503;
