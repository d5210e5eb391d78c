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
  passwordHash: text("password_hash").notNull(),
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
export type Session = typeof sessions.$inferSelect;
