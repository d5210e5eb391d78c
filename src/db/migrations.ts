/**
 * What the database has seen of the migrations, on either engine (issue 22): a binary refuses a database that a
 * newer binary migrated, since serving a schema it does not know loses what the newer one added (a roll-back let
 * users who enrolled TOTP sign in with the password alone). drizzle's own migrator would see nothing to apply and
 * carry on: the check runs before it.
 *
 * drizzle records each applied migration as (hash, created_at = the migration's `when`) and applies those whose
 * `when` is later than the last one recorded; a recorded `when` later than this binary's last migration is one
 * this binary does not have. Which Latchkey applied it is kept beside drizzle's table in `latchkey_versions`
 * (migration count → version of the binary that first brought the database there), which belongs to the
 * migration machinery, like drizzle's table, and so is in neither schema file nor copied by migrate-db.
 */
import { ConfigError } from "../errors";
import { VERSION } from "../version";
import type { EmbeddedMigration } from "./migrations.macro";

/** One row of drizzle's migrations table. */
export interface AppliedMigration {
  hash: string;
  createdAt: number;
}

export interface MigrationPlan {
  /** This binary's migrations the database has not seen, in order. */
  pending: EmbeddedMigration[];
  /** The database's migration count when a newer binary migrated it (some `when` later than all of ours). */
  newer: number | undefined;
}

/** drizzle's rule, as a pure function: pending = later than the last applied; newer = the database is ahead. */
export function planMigrations(embedded: readonly EmbeddedMigration[], applied: readonly AppliedMigration[]): MigrationPlan {
  const last = Math.max(-Infinity, ...applied.map((row) => row.createdAt));
  const ours = Math.max(-Infinity, ...embedded.map((migration) => migration.folderMillis));
  return {
    pending: embedded.filter((migration) => migration.folderMillis > last),
    newer: applied.length > 0 && last > ours ? applied.length : undefined,
  };
}

/** The refusal: exit 2 with what happened and the two ways out. */
export function newerDatabaseError(migration: number, migratedBy: string | undefined, ours: number): ConfigError {
  return new ConfigError(
    `this database was migrated by Latchkey ${migratedBy ?? "(a newer version)"} (migration ${migration}); this is ${VERSION} (migration ${ours}): ` +
      `run that version or a newer one, or restore the backup taken before the upgrade (README "Upgrading")`,
  );
}

/** What a migration run did: the tags it applied, in order, and the database's migration count after it. */
export interface MigrationReport {
  applied: string[];
  total: number;
}

export const reportOf = (pending: readonly EmbeddedMigration[], total: number): MigrationReport => ({ applied: pending.map((migration) => migration.tag), total });

/** The start-up line: which migrations this start applied, or that there were none. */
export function appliedLine({ applied, total }: MigrationReport): string {
  return applied.length === 0
    ? `latchkey: database schema up to date (migration ${total})`
    : `latchkey: applied migration${applied.length > 1 ? "s" : ""} ${applied.join(", ")} (database now at migration ${total})`;
}

/** `latchkey migrate --status`: one line per migration, this binary's and any the database has that it does not. */
export function statusLines(embedded: readonly EmbeddedMigration[], applied: readonly AppliedMigration[], migratedBy: string | undefined): string[] {
  const plan = planMigrations(embedded, applied);
  const lines = embedded.map((migration) => `${plan.pending.includes(migration) ? "pending" : "applied"}  ${migration.tag}`);
  const ours = new Set(embedded.map((migration) => migration.folderMillis));
  for (const row of applied.filter((entry) => !ours.has(entry.createdAt)))
    lines.push(`unknown  migrated ${new Date(row.createdAt).toISOString().slice(0, 10)}, not in this binary`);
  lines.push(
    plan.newer !== undefined
      ? newerDatabaseError(plan.newer, migratedBy, embedded.length).message
      : `${embedded.length - plan.pending.length} applied, ${plan.pending.length} pending (Latchkey ${VERSION}); "latchkey migrate" or the next start applies what is pending`,
  );
  return lines;
}

// ---- The version record (SQL shared by both engines; PostgreSQL keeps it in drizzle's schema, beside its table)

/** Creates the record; `table` is latchkey_versions (SQLite) or drizzle.latchkey_versions (PostgreSQL). */
export const versionsTableSql = (table: string) =>
  `CREATE TABLE IF NOT EXISTS ${table} (migration integer PRIMARY KEY, version text NOT NULL, migrated_at bigint NOT NULL)`;
