import { and, asc, eq, gt, ne, or, sql, type SQL } from "drizzle-orm";
import { normalizeUsername, ROLE_PATTERN } from "../../lib/names";
import { changes, isPostgres, row, transaction, type Atomic } from "../../db/atomic";
import type { Db } from "../../db/client";
import type { User } from "../../db/schema";
import { apiKeys, sessions, users } from "../../db/tables";
import { apiErrors, type FieldError, validationFailed } from "../../errors";
import { emailError, normalizeEmail } from "../users/service";
import { CONTROL_IN_FREE_TEXT } from "../../http/schema";

/**
 * Account changes an administrator makes, shared by the admin API and the CLI so that both obey the same
 * rules (role syntax, metadata size, email uniqueness, and never losing the last admin). Plain database
 * work: ending sessions and writing the audit trail are the caller's job.
 */

export const ADMIN_ROLE = "admin";
export const MAX_ROLES = 32;
/** `metadata` is returned by /validate on every call: kept small. Measured as UTF-8 bytes of its JSON. */
export const METADATA_MAX_BYTES = 4096;

export const userNotFound = () => apiErrors.user_not_found("No such user.");

export const lastAdmin = () =>
  apiErrors.last_admin("This is the last enabled admin: make another user an admin before disabling, demoting or deleting it.");

export interface AccountPatch {
  disabled?: boolean;
  roles?: string[];
  /** null clears it. */
  email?: string | null;
  emailVerified?: boolean;
  /** Must be a JSON object (checked here: it arrives unchecked from the request). */
  metadata?: unknown;
}

/** The fields a patch may name, as the API spells them (for audit details and messages). */
export type AccountField = "disabled" | "roles" | "email" | "email_verified" | "metadata";

/** Why a role list is not acceptable, or undefined. */
export function rolesProblem(roles: readonly unknown[]): string | undefined {
  if (roles.length > MAX_ROLES) return `At most ${MAX_ROLES} roles.`;
  if (roles.some((role) => typeof role !== "string" || !ROLE_PATTERN.test(role)))
    return "Each role must be 1-32 characters of a-z, 0-9, '_' or '-'.";
  return undefined;
}

/** Checks a role list (422 validation_failed) and returns it de-duplicated, in the order given. */
export function validateRoles(roles: readonly unknown[], field = "roles"): string[] {
  const problem = rolesProblem(roles);
  if (problem) throw validationFailed([{ field, message: problem }]);
  return [...new Set(roles as string[])];
}

/** A control character (but tab, LF, CR) anywhere in a JSON value's strings, keys included. */
function hasControlCharacter(value: unknown): boolean {
  if (typeof value === "string") return CONTROL_IN_FREE_TEXT.test(value);
  if (typeof value !== "object" || value === null) return false;
  return Object.entries(value).some(([key, item]) => CONTROL_IN_FREE_TEXT.test(key) || hasControlCharacter(item));
}

function metadataProblem(metadata: unknown): string | undefined {
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) return "Must be a JSON object.";
  if (Buffer.byteLength(JSON.stringify(metadata)) > METADATA_MAX_BYTES) return `Must be at most ${METADATA_MAX_BYTES} bytes as JSON.`;
  // PostgreSQL's jsonb refuses NUL (a 500 where SQLite stored it): no control character in a key or a value, the
  // line breaks and tabs of free text aside (issue 22).
  if (hasControlCharacter(metadata))
    return "Must not contain control characters (tabs and line breaks aside).";
  return undefined;
}

/** Validates every field of a patch at once (all problems reported together) and normalises email and roles. */
export function validatePatch(patch: AccountPatch): AccountPatch & { metadata?: Record<string, unknown> } {
  const details: FieldError[] = [];
  const normalized = { ...patch } as AccountPatch & { metadata?: Record<string, unknown> };
  if (patch.roles !== undefined) {
    const problem = rolesProblem(patch.roles);
    if (problem) details.push({ field: "roles", message: problem });
    else normalized.roles = [...new Set(patch.roles)];
  }
  if (patch.email !== undefined && patch.email !== null) {
    normalized.email = normalizeEmail(patch.email);
    const problem = emailError(normalized.email);
    if (problem) details.push({ field: "email", message: problem });
  }
  if (patch.metadata !== undefined) {
    const problem = metadataProblem(patch.metadata);
    if (problem) details.push({ field: "metadata", message: problem });
  }
  if (details.length) throw validationFailed(details);
  return normalized;
}

const isEnabledAdmin = (user: Pick<User, "disabled" | "roles">) => !user.disabled && user.roles.includes(ADMIN_ROLE);

/** `roles` is a JSON array column: match the admin role inside it (SQLite's json_each, PostgreSQL's jsonb `?`). */
const hasAdminRole = (db: Db): SQL =>
  isPostgres(db)
    ? sql`${users.roles} ? ${ADMIN_ROLE}`
    : sql`exists (select 1 from json_each(${users.roles}) where json_each.value = ${ADMIN_ROLE})`;

/** True if any enabled user holds the admin role (`excludeId` left out of the count). */
export function* enabledAdminExists(db: Db, excludeId?: string): Atomic<boolean> {
  const conditions = [eq(users.disabled, false), hasAdminRole(db)];
  if (excludeId !== undefined) conditions.push(ne(users.id, excludeId));
  return (yield* row(db.select({ id: users.id }).from(users).where(and(...conditions)).limit(1))) !== undefined;
}

/**
 * The last-admin rule: an enabled admin may stop being one (disabled, demoted or deleted; `after` undefined
 * means deleted) only while another enabled admin remains. Otherwise nobody could administer the instance.
 */
function* assertKeepsAnAdmin(db: Db, before: User, after: Pick<User, "disabled" | "roles"> | undefined): Atomic<void> {
  if (!isEnabledAdmin(before)) return;
  if (after !== undefined && isEnabledAdmin(after)) return;
  if (!(yield* enabledAdminExists(db, before.id))) throw lastAdmin();
}

const userById = (db: Db, id: string) => row(db.select().from(users).where(eq(users.id, id)));

export async function findUser(db: Db, id: string): Promise<User | undefined> {
  return (await db.select().from(users).where(eq(users.id, id)))[0];
}

export interface AccountUpdate {
  before: User;
  after: User;
  /** The fields whose values actually changed. */
  changed: AccountField[];
  /** Credentials ended because the account was disabled. */
  ended: { sessions: number; apiKeys: number };
}

/**
 * Applies a validated patch in one transaction, so the last-admin check and the write cannot be split by a
 * concurrent change (from this server, another instance or the CLI). On PostgreSQL, SERIALIZABLE (db/atomic.ts)
 * matters here beyond row locks: two admins demoting each other at once each change only their own row, a write
 * skew that only serializable isolation refuses. Disabling an account ends its sessions and deletes its API keys
 * in the same transaction: re-enabling it brings none of them back.
 */
export function updateAccount(db: Db, id: string, rawPatch: AccountPatch, precondition?: (tx: Db) => Atomic<void>): Promise<AccountUpdate> {
  const patch = validatePatch(rawPatch);
  return transaction(db, function* (tx) {
      if (precondition) yield* precondition(tx);
      const before = yield* userById(tx, id);
      if (!before) throw userNotFound();

      const next = {
        disabled: patch.disabled ?? before.disabled,
        roles: patch.roles ?? before.roles,
        email: patch.email === undefined ? before.email : patch.email,
        emailVerified: patch.emailVerified ?? before.emailVerified,
        metadata: patch.metadata ?? before.metadata,
      };
      // A new (or no) address has not been verified, unless the same request says it has.
      if (next.email !== before.email && patch.emailVerified === undefined) next.emailVerified = false;
      if (next.email === null) next.emailVerified = false;

      const changed: AccountField[] = [];
      if (next.disabled !== before.disabled) changed.push("disabled");
      if (JSON.stringify(next.roles) !== JSON.stringify(before.roles)) changed.push("roles");
      if (next.email !== before.email) changed.push("email");
      if (next.emailVerified !== before.emailVerified) changed.push("email_verified");
      if (JSON.stringify(next.metadata) !== JSON.stringify(before.metadata)) changed.push("metadata");
      if (changed.length === 0) return { before, after: before, changed, ended: { sessions: 0, apiKeys: 0 } };

      yield* assertKeepsAnAdmin(tx, before, next);
      if (next.email !== null && next.email !== before.email && (yield* row(tx.select({ id: users.id }).from(users).where(eq(users.email, next.email)))))
        throw apiErrors.email_taken("That email address is already registered.");

      const after = (yield* row(tx.update(users).set({ ...next, updatedAt: new Date() }).where(eq(users.id, id)).returning()))!;
      const ended = { sessions: 0, apiKeys: 0 };
      if (after.disabled && !before.disabled) {
        ended.sessions = yield* changes(tx.delete(sessions).where(eq(sessions.userId, id)));
        ended.apiKeys = yield* changes(tx.delete(apiKeys).where(eq(apiKeys.userId, id)));
      }
      return { before, after, changed, ended };
  });
}

/**
 * What an audit row says of an update: the names of the changed fields, and values only where they are short
 * and not personal (never metadata or email), plus the credentials that disabling ended.
 */
export function updateAuditDetail({ after, changed, ended }: AccountUpdate): Record<string, unknown> {
  const detail: Record<string, unknown> = { changed };
  if (changed.includes("disabled")) detail.disabled = after.disabled;
  if (changed.includes("roles")) detail.roles = after.roles;
  if (changed.includes("email_verified")) detail.email_verified = after.emailVerified;
  if (ended.sessions) detail.sessions_ended = ended.sessions;
  if (ended.apiKeys) detail.api_keys_deleted = ended.apiKeys;
  return detail;
}

/** Deletes a user (sessions and API keys go with it: ON DELETE CASCADE), unless it is the last admin. */
export function deleteAccount(db: Db, id: string, precondition?: (tx: Db) => Atomic<void>): Promise<User> {
  // Serial order with other admin changes: the last-admin rule, as in updateAccount.
  return transaction(db, function* (tx) {
    if (precondition) yield* precondition(tx);
    const user = yield* userById(tx, id);
    if (!user) throw userNotFound();
    yield* assertKeepsAnAdmin(tx, user, undefined);
    yield* changes(tx.delete(users).where(eq(users.id, id)));
    return user;
  });
}

export interface AccountQuery {
  /** Case-insensitive substring of the username or the email. */
  query?: string;
  limit: number;
  /** The id of the last user of the previous page. */
  cursor?: string;
}

/** Oldest first: ids are UUIDv7, so id order is creation order and a cursor on id is stable. */
export async function listAccounts(db: Db, { query, limit, cursor }: AccountQuery): Promise<{ users: User[]; nextCursor: string | null }> {
  const conditions: SQL[] = [];
  const needle = query === undefined ? undefined : normalizeUsername(query);
  // A plain substring (no LIKE wildcards to escape): SQLite's instr, PostgreSQL's strpos.
  const contains = (haystack: SQL.Aliased | SQL | typeof users.username, text: string) =>
    isPostgres(db) ? sql`strpos(${haystack}, ${text}) > 0` : sql`instr(${haystack}, ${text}) > 0`;
  if (needle) conditions.push(or(contains(users.username, needle), contains(sql`coalesce(${users.email}, '')`, needle))!);
  if (cursor) conditions.push(gt(users.id, cursor));
  const rows = await db
    .select()
    .from(users)
    .where(and(...conditions))
    .orderBy(asc(users.id))
    .limit(limit + 1);
  const page = rows.slice(0, limit);
  return { users: page, nextCursor: rows.length > limit ? page.at(-1)!.id : null };
}
