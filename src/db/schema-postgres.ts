/**
 * The PostgreSQL twin of schema.ts (issue 11): the same tables, columns, keys and indexes, in PostgreSQL's own
 * types (timestamptz for times, boolean, jsonb). test/unit/schema-twins.test.ts keeps the two in step: a column
 * added to one and not the other fails it. drizzle-kit generates drizzle/postgres from this file.
 */
import { sql } from "drizzle-orm";
import { bigint, boolean, check, index, integer, jsonb, pgTable, smallint, text, timestamp, uniqueIndex, type AnyPgColumn } from "drizzle-orm/pg-core";

/** Milliseconds, like SQLite's integer timestamps (which are `timestamp_ms`). */
const time = (name: string) => timestamp(name, { mode: "date", withTimezone: true, precision: 3 });
const createdAt = () => time("created_at").notNull().defaultNow();
const jsonList = (name: string) => jsonb(name).$type<string[]>();

export const users = pgTable("users", {
  id: text("id").primaryKey(),
  username: text("username").notNull().unique(),
  email: text("email").unique(),
  emailVerified: boolean("email_verified").notNull().default(false),
  /** Null for a passwordless account (passkeys only): a password sign-in to it fails like a wrong password. */
  passwordHash: text("password_hash"),
  roles: jsonList("roles").notNull().default(sql`'[]'::jsonb`),
  disabled: boolean("disabled").notNull().default(false),
  metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
  createdAt: createdAt(),
  updatedAt: time("updated_at").notNull().defaultNow(),
});

export const sessions = pgTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    createdAt: createdAt(),
    lastSeenAt: time("last_seen_at").notNull(),
    expiresAt: time("expires_at").notNull(),
    ip: text("ip"),
    userAgent: text("user_agent"),
    browserTokenHash: text("browser_token_hash").unique(),
    parentId: text("parent_id").references((): AnyPgColumn => sessions.id, { onDelete: "cascade" }),
    authTime: time("auth_time"),
    amr: jsonList("amr").notNull().default(sql`'[]'::jsonb`),
    clientId: text("client_id"),
  },
  (table) => [
    index("sessions_user_id_idx").on(table.userId),
    index("sessions_expires_at_idx").on(table.expiresAt),
    index("sessions_parent_id_idx").on(table.parentId),
  ],
);

export const refreshTokens = pgTable(
  "refresh_tokens",
  {
    tokenHash: text("token_hash").primaryKey(),
    sessionId: text("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    createdAt: createdAt(),
    spentAt: time("spent_at"),
  },
  (table) => [index("refresh_tokens_session_id_idx").on(table.sessionId)],
);

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    prefix: text("prefix").notNull(),
    keyHash: text("key_hash").notNull().unique(),
    scopes: jsonList("scopes").notNull().default(sql`'[]'::jsonb`),
    createdAt: createdAt(),
    expiresAt: time("expires_at"),
    lastUsedAt: time("last_used_at"),
  },
  (table) => [uniqueIndex("api_keys_user_id_name_unique").on(table.userId, table.name)],
);

export const loginThrottles = pgTable("login_throttles", {
  key: text("key").primaryKey(),
  failures: integer("failures").notNull().default(0),
  blockedUntil: time("blocked_until"),
  updatedAt: time("updated_at").notNull(),
});

export const trustedSignIns = pgTable("trusted_sign_ins", {
  key: text("key").primaryKey(),
  expiresAt: time("expires_at").notNull(),
});

export const secondFactorFailures = pgTable("second_factor_failures", {
  userId: text("user_id")
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  failures: integer("failures").notNull().default(0),
  blockedUntil: time("blocked_until"),
  notifiedAt: time("notified_at"),
  updatedAt: time("updated_at").notNull(),
});

export const auditEvents = pgTable(
  "audit_events",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    createdAt: createdAt(),
    event: text("event").notNull(),
    userId: text("user_id"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    detail: jsonb("detail").$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
  },
  (table) => [
    index("audit_events_user_id_idx").on(table.userId, table.id),
    index("audit_events_event_idx").on(table.event, table.id),
    index("audit_events_created_at_idx").on(table.createdAt),
  ],
);

export const mailOutbox = pgTable(
  "mail_outbox",
  {
    id: text("id").primaryKey(),
    kind: text("kind").notNull(),
    userId: text("user_id"),
    payload: text("payload").notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: time("next_attempt_at").notNull(),
    lastError: text("last_error"),
    createdAt: createdAt(),
  },
  (table) => [index("mail_outbox_next_attempt_at_idx").on(table.nextAttemptAt)],
);

export const oneTimeCodes = pgTable(
  "one_time_codes",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    purpose: text("purpose").notNull(),
    codeHash: text("code_hash").notNull(),
    tokenHash: text("token_hash").unique(),
    newEmail: text("new_email"),
    failures: integer("failures").notNull().default(0),
    expiresAt: time("expires_at").notNull(),
    createdAt: createdAt(),
  },
  (table) => [uniqueIndex("one_time_codes_user_purpose_unique").on(table.userId, table.purpose)],
);

export const loginChallenges = pgTable("login_challenges", {
  id: text("id").primaryKey(),
  userId: text("user_id")
    .notNull()
    .references(() => users.id, { onDelete: "cascade" }),
  methods: jsonList("methods").notNull(),
  codeHash: text("code_hash"),
  codeChallengeId: text("code_challenge_id"),
  failures: integer("failures").notNull().default(0),
  expiresAt: time("expires_at").notNull(),
  createdAt: createdAt(),
});

export const totpFactors = pgTable("totp_factors", {
  userId: text("user_id")
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  secret: text("secret").notNull(),
  confirmedAt: time("confirmed_at"),
  lastStep: integer("last_step").notNull().default(0),
  createdAt: createdAt(),
});

export const recoveryCodes = pgTable(
  "recovery_codes",
  {
    codeHash: text("code_hash").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    usedAt: time("used_at"),
    createdAt: createdAt(),
  },
  (table) => [index("recovery_codes_user_id_idx").on(table.userId)],
);

export const signingKeys = pgTable(
  "signing_keys",
  {
    kid: text("kid").primaryKey(),
    alg: text("alg").notNull(),
    publicJwk: jsonb("public_jwk").$type<Record<string, unknown>>(),
    privateJwk: jsonb("private_jwk").$type<Record<string, unknown>>(),
    createdAt: createdAt(),
    retiredAt: time("retired_at"),
    liveUntil: time("live_until"),
  },
  (table) => [uniqueIndex("signing_keys_current_alg_unique").on(table.alg).where(sql`retired_at is null`)],
);

export const oidcClients = pgTable("oidc_clients", {
  clientId: text("client_id").primaryKey(),
  secretHash: text("secret_hash"),
  redirectUris: jsonList("redirect_uris").notNull(),
  postLogoutRedirectUris: jsonList("post_logout_redirect_uris").notNull().default(sql`'[]'::jsonb`),
  public: boolean("public").notNull().default(false),
  trusted: boolean("trusted").notNull().default(false),
  allowedRoles: jsonList("allowed_roles").notNull().default(sql`'[]'::jsonb`),
  allowedUsers: jsonList("allowed_users").notNull().default(sql`'[]'::jsonb`),
  createdAt: createdAt(),
  backchannelLogoutUri: text("backchannel_logout_uri"),
  refresh: boolean("refresh").notNull().default(false),
  machine: boolean("machine").notNull().default(false),
  idTokenAlg: text("id_token_alg"),
  requirePasskey: boolean("require_passkey").notNull().default(false),
});

export const oidcConsents = pgTable(
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

export const oidcCodes = pgTable(
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
    authTime: time("auth_time").notNull(),
    amr: jsonList("amr").notNull().default(sql`'[]'::jsonb`),
    expiresAt: time("expires_at").notNull(),
    usedAt: time("used_at"),
    sessionId: text("session_id"),
    browserSessionId: text("browser_session_id"),
  },
  (table) => [index("oidc_codes_expires_at_idx").on(table.expiresAt)],
);

export const oidcGrants = pgTable(
  "oidc_grants",
  {
    sessionId: text("session_id")
      .primaryKey()
      .references(() => sessions.id, { onDelete: "cascade" }),
    clientId: text("client_id")
      .notNull()
      .references(() => oidcClients.clientId, { onDelete: "cascade" }),
    scope: text("scope").notNull(),
    authTime: time("auth_time").notNull(),
    browserSessionId: text("browser_session_id"),
    amr: jsonList("amr").notNull().default(sql`'[]'::jsonb`),
  },
  (table) => [index("oidc_grants_client_id_idx").on(table.clientId)],
);

/**
 * PostgreSQL only: the generated JWT secret (when JWT_SECRET is not set), shared by every instance through the
 * database, as SQLite's one instance keeps it in the file DATA_DIR/jwt_secret (src/secrets.ts). One row: `id` is
 * always 1. `latchkey migrate-db` carries an SQLite instance's file here.
 */
export const instanceSecret = pgTable(
  "instance_secret",
  {
    id: smallint("id").primaryKey().default(1),
    secret: text("secret").notNull(),
    createdAt: createdAt(),
  },
  (table) => [check("instance_secret_one_row", sql`${table.id} = 1`)],
);

export const invitations = pgTable("invitations", {
  id: text("id").primaryKey(),
  tokenHash: text("token_hash").notNull().unique(),
  email: text("email"),
  mailed: boolean("mailed").notNull().default(false),
  roles: jsonList("roles").notNull().default(sql`'[]'::jsonb`),
  maxUses: integer("max_uses").notNull(),
  uses: integer("uses").notNull().default(0),
  expiresAt: time("expires_at").notNull(),
  revokedAt: time("revoked_at"),
  createdBy: text("created_by"),
  createdAt: createdAt(),
});

export const passkeys = pgTable(
  "passkeys",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    credentialId: text("credential_id").notNull(),
    publicKey: text("public_key").notNull(),
    signCount: bigint("sign_count", { mode: "number" }).notNull().default(0),
    transports: jsonList("transports").notNull(),
    backupEligible: boolean("backup_eligible").notNull().default(false),
    backupState: boolean("backup_state").notNull().default(false),
    aaguid: text("aaguid").notNull(),
    name: text("name").notNull(),
    createdAt: createdAt(),
    lastUsedAt: time("last_used_at"),
  },
  (table) => [uniqueIndex("passkeys_credential_id_idx").on(table.credentialId), index("passkeys_user_id_idx").on(table.userId)],
);

export const passkeyChallenges = pgTable("passkey_challenges", {
  challengeHash: text("challenge_hash").primaryKey(),
  purpose: text("purpose").notNull(),
  userId: text("user_id").references(() => users.id, { onDelete: "cascade" }),
  expiresAt: time("expires_at").notNull(),
  createdAt: createdAt(),
});
