import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex, type AnySQLiteColumn } from "drizzle-orm/sqlite-core";

const createdAt = () =>
  integer("created_at", { mode: "timestamp_ms" })
    .notNull()
    .default(sql`(unixepoch('subsec') * 1000)`);

export const users = sqliteTable("users", {
  id: text("id").primaryKey(),
  /** NFKC, lower-cased; see normalizeUsername. */
  username: text("username").notNull().unique(),
  /** Lower-cased; unique when present. */
  email: text("email").unique(),
  emailVerified: integer("email_verified", { mode: "boolean" }).notNull().default(false),
  /** Null for a passwordless account (passkeys only): a password sign-in to it fails like a wrong password. */
  passwordHash: text("password_hash"),
  roles: text("roles", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
  disabled: integer("disabled", { mode: "boolean" }).notNull().default(false),
  metadata: text("metadata", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
  createdAt: createdAt(),
  updatedAt: integer("updated_at", { mode: "timestamp_ms" })
    .notNull()
    .default(sql`(unixepoch('subsec') * 1000)`),
});

/** A login: one refresh-token chain. Access JWTs carry its id as `sid`; deleting the row revokes them all. */
export const sessions = sqliteTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    createdAt: createdAt(),
    lastSeenAt: integer("last_seen_at", { mode: "timestamp_ms" }).notNull(),
    /** Sliding: each refresh moves it to now + REFRESH_TOKEN_TTL. */
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    ip: text("ip"),
    userAgent: text("user_agent"),
    /**
     * A browser session (the `latchkey_session` cookie) has no refresh tokens: the cookie's SHA-256 is stored
     * here, and expires_at slides by SESSION_IDLE_TTL, capped at created_at + REFRESH_TOKEN_TTL.
     */
    browserTokenHash: text("browser_token_hash").unique(),
    /**
     * A browser session opened on another sign-in host by a cross-domain handoff: it ends with the session it
     * was handed off from (and signing out of it ends that one too).
     */
    parentId: text("parent_id").references((): AnySQLiteColumn => sessions.id, { onDelete: "cascade" }),
    /**
     * The last real authentication behind the session (OIDC auth_time): set when a password (and second factor)
     * was checked, copied by a handoff; null for sessions from before it was recorded (then created_at).
     */
    authTime: integer("auth_time", { mode: "timestamp_ms" }),
    /** How that authentication was made (RFC 8176 amr values: pwd, otp, mfa). */
    amr: text("amr", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /**
     * The OpenID Connect client this session is a grant of (its tokens are the client's, never first-party
     * credentials); null for Latchkey's own sessions.
     */
    clientId: text("client_id"),
  },
  (table) => [
    index("sessions_user_id_idx").on(table.userId),
    index("sessions_expires_at_idx").on(table.expiresAt),
    index("sessions_parent_id_idx").on(table.parentId),
  ],
);

/**
 * Every refresh token a session has been given, stored only as SHA-256. The live one has spentAt null;
 * spent ones are kept while the session lives so that presenting one again is recognised as reuse.
 */
export const refreshTokens = sqliteTable(
  "refresh_tokens",
  {
    tokenHash: text("token_hash").primaryKey(),
    sessionId: text("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    createdAt: createdAt(),
    spentAt: integer("spent_at", { mode: "timestamp_ms" }),
  },
  (table) => [index("refresh_tokens_session_id_idx").on(table.sessionId)],
);

/** Long-lived, session-less credentials. The key itself is stored only as SHA-256; `prefix` is for display. */
export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    prefix: text("prefix").notNull(),
    keyHash: text("key_hash").notNull().unique(),
    scopes: text("scopes", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    createdAt: createdAt(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }),
    lastUsedAt: integer("last_used_at", { mode: "timestamp_ms" }),
  },
  (table) => [uniqueIndex("api_keys_user_id_name_unique").on(table.userId, table.name)],
);

/**
 * Failed-password counters for brute-force throttling, keyed by a SHA-256 of "account|ip" or "account"
 * (the login as typed, so unknown names count like known ones). In SQLite so a restart resets nothing.
 */
export const loginThrottles = sqliteTable("login_throttles", {
  key: text("key").primaryKey(),
  failures: integer("failures").notNull().default(0),
  blockedUntil: integer("blocked_until", { mode: "timestamp_ms" }),
  updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
});

/**
 * Where an account signed in successfully, as the SHA-256 of (account, address group), until `expires_at`: a
 * client there is exempt from the account-wide backstop (limits/index.ts), like one holding a device cookie.
 */
export const trustedSignIns = sqliteTable("trusted_sign_ins", {
  key: text("key").primaryKey(),
  expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
});

/**
 * Consecutive wrong answers to a second step (TOTP, recovery or emailed code) for one account, from every address
 * and challenge (limits/second-factor.ts). Ended only by a completed sign-in; `notified_at` is when the owner was
 * told that someone has the password (once per run).
 */
export const secondFactorFailures = sqliteTable("second_factor_failures", {
  userId: text("user_id")
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  failures: integer("failures").notNull().default(0),
  blockedUntil: integer("blocked_until", { mode: "timestamp_ms" }),
  notifiedAt: integer("notified_at", { mode: "timestamp_ms" }),
  updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
});

/** Security events. user_id has no foreign key: the trail outlives a deleted user. */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    createdAt: createdAt(),
    event: text("event").notNull(),
    userId: text("user_id"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    detail: text("detail", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
  },
  (table) => [
    index("audit_events_user_id_idx").on(table.userId, table.id),
    index("audit_events_event_idx").on(table.event, table.id),
    index("audit_events_created_at_idx").on(table.createdAt),
  ],
);

export type User = typeof users.$inferSelect;

/**
 * Mail waiting to be sent (issue 13): the request that causes a mail only inserts here; the sender in the server
 * process delivers it in the background, retrying with backoff, so a restart or an SMTP outage loses nothing.
 * `payload` is sealed with the data key (it carries codes and links until it is sent, then the row is deleted).
 */
export const mailOutbox = sqliteTable(
  "mail_outbox",
  {
    id: text("id").primaryKey(),
    /** Which template (password_reset, verify_email, ...): for the drop log line and audit event. */
    kind: text("kind").notNull(),
    userId: text("user_id"),
    payload: text("payload").notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: integer("next_attempt_at", { mode: "timestamp_ms" }).notNull(),
    lastError: text("last_error"),
    createdAt: createdAt(),
  },
  (table) => [index("mail_outbox_next_attempt_at_idx").on(table.nextAttemptAt)],
);

/**
 * Emailed one-time codes and link tokens: at most one live row per (user, purpose). The code is stored as an
 * HMAC (a 6-digit code has too few values for a plain hash), the link token as SHA-256 (it has 256 bits).
 */
export const oneTimeCodes = sqliteTable(
  "one_time_codes",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    purpose: text("purpose").notNull(),
    codeHash: text("code_hash").notNull(),
    tokenHash: text("token_hash").unique(),
    /** Email change: the address the code was sent to. */
    newEmail: text("new_email"),
    /** Wrong codes against this row: it dies at 5 (the account's count is the limiter's). */
    failures: integer("failures").notNull().default(0),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    createdAt: createdAt(),
  },
  (table) => [uniqueIndex("one_time_codes_user_purpose_unique").on(table.userId, table.purpose)],
);

/** A sign-in waiting for its second step (emailed code, TOTP or a recovery code). */
export const loginChallenges = sqliteTable("login_challenges", {
  id: text("id").primaryKey(),
  userId: text("user_id")
    .notNull()
    .references(() => users.id, { onDelete: "cascade" }),
  methods: text("methods", { mode: "json" }).$type<string[]>().notNull(),
  /** HMAC of the emailed code, when email_code is among the methods. */
  codeHash: text("code_hash"),
  /**
   * The challenge whose mail carried that code (its id is in the HMAC), when it is not this one: a sign-in within
   * the minute of a mail gets a new challenge that takes the code already sent (auth/challenges.ts).
   */
  codeChallengeId: text("code_challenge_id"),
  failures: integer("failures").notNull().default(0),
  expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
  createdAt: createdAt(),
});

/** A user's TOTP authenticator (RFC 6238). The secret is sealed with the data key; confirmedAt null = enrolling. */
export const totpFactors = sqliteTable("totp_factors", {
  userId: text("user_id")
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  secret: text("secret").notNull(),
  confirmedAt: integer("confirmed_at", { mode: "timestamp_ms" }),
  /** The last time step whose code was accepted: a code of that step or earlier is refused (replay). */
  lastStep: integer("last_step").notNull().default(0),
  createdAt: createdAt(),
});

/** Single-use recovery codes, SHA-256 of the normalised code (50 random bits each). */
export const recoveryCodes = sqliteTable(
  "recovery_codes",
  {
    codeHash: text("code_hash").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    usedAt: integer("used_at", { mode: "timestamp_ms" }),
    createdAt: createdAt(),
  },
  (table) => [index("recovery_codes_user_id_idx").on(table.userId)],
);

/**
 * Keys that sign JWTs (issue 15). An asymmetric key's pair is kept as JWKs, so a backup and a second instance
 * have it; the private half never leaves the server. An HS256 row holds no key material: it marks when tokens
 * signed with JWT_SECRET (kid derived from it) are accepted. The current key of an algorithm has retired_at null;
 * a retired key verifies until live_until, the latest `exp` a token it signed can carry.
 */
export const signingKeys = sqliteTable(
  "signing_keys",
  {
    kid: text("kid").primaryKey(),
    alg: text("alg").notNull(),
    publicJwk: text("public_jwk", { mode: "json" }).$type<Record<string, unknown>>(),
    privateJwk: text("private_jwk", { mode: "json" }).$type<Record<string, unknown>>(),
    createdAt: createdAt(),
    retiredAt: integer("retired_at", { mode: "timestamp_ms" }),
    liveUntil: integer("live_until", { mode: "timestamp_ms" }),
  },
  // Two servers creating the first key of an algorithm at once: one insert wins, the other reads it back.
  (table) => [uniqueIndex("signing_keys_current_alg_unique").on(table.alg).where(sql`retired_at is null`)],
);

/**
 * OpenID Connect relying parties (issue 15). `clientId` is the name the admin chose (e.g. "grafana"); the secret
 * is stored only as SHA-256 (it is 256 random bits); a public client has none and must use PKCE.
 */
export const oidcClients = sqliteTable("oidc_clients", {
  clientId: text("client_id").primaryKey(),
  secretHash: text("secret_hash"),
  redirectUris: text("redirect_uris", { mode: "json" }).$type<string[]>().notNull(),
  postLogoutRedirectUris: text("post_logout_redirect_uris", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
  public: integer("public", { mode: "boolean" }).notNull().default(false),
  /** A trusted client skips the consent page. */
  trusted: integer("trusted", { mode: "boolean" }).notNull().default(false),
  /** Empty lists allow everyone; otherwise a user needs one of the roles or to be listed. */
  allowedRoles: text("allowed_roles", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
  allowedUsers: text("allowed_users", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
  createdAt: createdAt(),
  /** Where logout tokens are POSTed (OpenID Connect Back-Channel Logout 1.0), or null. */
  backchannelLogoutUri: text("backchannel_logout_uri"),
  /** Always issue a refresh token (for apps that never ask for offline_access). */
  refresh: integer("refresh", { mode: "boolean" }).notNull().default(false),
  /** A machine client: client_credentials only, no user, no redirect URIs. */
  machine: integer("machine", { mode: "boolean" }).notNull().default(false),
  /** How its ID tokens are signed; null: OIDC_ID_TOKEN_ALG. */
  idTokenAlg: text("id_token_alg"),
  /** Sign-ins for this client must be made with a passkey (`--require passkey`; amr hwk, acr phr). */
  requirePasskey: integer("require_passkey", { mode: "boolean" }).notNull().default(false),
});

/** A user's consent to a client, remembered until revoked from the account page. */
export const oidcConsents = sqliteTable(
  "oidc_consents",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    clientId: text("client_id")
      .notNull()
      .references(() => oidcClients.clientId, { onDelete: "cascade" }),
    scope: text("scope").notNull(),
    createdAt: createdAt(),
  },
  (table) => [uniqueIndex("oidc_consents_user_client_unique").on(table.userId, table.clientId)],
);

/**
 * Authorization codes, stored as SHA-256, bound to client, redirect URI and PKCE challenge. A used code is kept
 * (with the session it started) so that presenting it again revokes what it issued (RFC 6749 §4.1.2).
 */
export const oidcCodes = sqliteTable(
  "oidc_codes",
  {
    codeHash: text("code_hash").primaryKey(),
    clientId: text("client_id")
      .notNull()
      .references(() => oidcClients.clientId, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    redirectUri: text("redirect_uri").notNull(),
    codeChallenge: text("code_challenge"),
    nonce: text("nonce"),
    scope: text("scope").notNull(),
    authTime: integer("auth_time", { mode: "timestamp_ms" }).notNull(),
    amr: text("amr", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    usedAt: integer("used_at", { mode: "timestamp_ms" }),
    /** The session (refresh-token chain) the exchange started. */
    sessionId: text("session_id"),
    /** The browser session that signed in (copied to the grant: its sign-out logs the client out). */
    browserSessionId: text("browser_session_id"),
  },
  (table) => [index("oidc_codes_expires_at_idx").on(table.expiresAt)],
);

/** A session started by a client's code exchange: its refresh tokens belong to that client only. */
export const oidcGrants = sqliteTable(
  "oidc_grants",
  {
    sessionId: text("session_id")
      .primaryKey()
      .references(() => sessions.id, { onDelete: "cascade" }),
    clientId: text("client_id")
      .notNull()
      .references(() => oidcClients.clientId, { onDelete: "cascade" }),
    scope: text("scope").notNull(),
    authTime: integer("auth_time", { mode: "timestamp_ms" }).notNull(),
    /** The browser session the user signed in with (no foreign key: the grant outlives its sign-out). */
    browserSessionId: text("browser_session_id"),
    amr: text("amr", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
  },
  (table) => [index("oidc_grants_client_id_idx").on(table.clientId)],
);

/**
 * An invitation (issue 24): a link that opens a sign-up while registration is closed. The link's token is stored
 * only as SHA-256; `uses` counts the accounts made with it, up to `max_uses`, in the sign-up's own transaction.
 */
export const invitations = sqliteTable("invitations", {
  id: text("id").primaryKey(),
  tokenHash: text("token_hash").notNull().unique(),
  /** The address the new account gets (pinned), if the invitation names one. */
  email: text("email"),
  /** The address was sent the link: an account made with it starts with a verified address. */
  mailed: integer("mailed", { mode: "boolean" }).notNull().default(false),
  roles: text("roles", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
  maxUses: integer("max_uses").notNull(),
  uses: integer("uses").notNull().default(0),
  expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
  revokedAt: integer("revoked_at", { mode: "timestamp_ms" }),
  /** The admin who made it (no foreign key: the row outlives the admin); null from the CLI. */
  createdBy: text("created_by"),
  createdAt: createdAt(),
});

/**
 * WebAuthn credentials (issue 25): the public key only (COSE, as the authenticator gave it), the signature
 * counter (a regression means a cloned authenticator: W3C WebAuthn Level 3 §6.1.1), the backup flags of a synced
 * passkey, its transports and AAGUID. The credential id is unique across accounts (a usernameless sign-in finds
 * the account by it).
 */
export const passkeys = sqliteTable(
  "passkeys",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    /** The credential id, base64url. */
    credentialId: text("credential_id").notNull(),
    /** The COSE public key, base64url. */
    publicKey: text("public_key").notNull(),
    signCount: integer("sign_count").notNull().default(0),
    transports: text("transports", { mode: "json" }).$type<string[]>().notNull(),
    backupEligible: integer("backup_eligible", { mode: "boolean" }).notNull().default(false),
    backupState: integer("backup_state", { mode: "boolean" }).notNull().default(false),
    aaguid: text("aaguid").notNull(),
    name: text("name").notNull(),
    createdAt: createdAt(),
    lastUsedAt: integer("last_used_at", { mode: "timestamp_ms" }),
  },
  (table) => [uniqueIndex("passkeys_credential_id_idx").on(table.credentialId), index("passkeys_user_id_idx").on(table.userId)],
);

/**
 * WebAuthn options handed out and not yet answered: the challenge (256 random bits) as its SHA-256, what it is for
 * and for whom. Verifying spends the row with one conditional DELETE, so options work once and for 5 minutes.
 */
export const passkeyChallenges = sqliteTable("passkey_challenges", {
  challengeHash: text("challenge_hash").primaryKey(),
  /** "register", "login" or "second_step". */
  purpose: text("purpose").notNull(),
  /** The account registering, or the one whose second step this is; null for a usernameless sign-in. */
  userId: text("user_id").references(() => users.id, { onDelete: "cascade" }),
  expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
  createdAt: createdAt(),
});
