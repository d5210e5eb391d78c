import { Database } from "bun:sqlite";
import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { count, type TablesRelationalConfig } from "drizzle-orm";
import type { MigrationMeta } from "drizzle-orm/migrator";
import type { SQLiteSession, SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import { type Config } from "../config";
import { ConfigError, databaseUnavailable } from "../errors";
import { embeddedMigrations } from "./migrations.macro" with { type: "macro" };
import * as schema from "./schema";
import { isPostgres } from "./atomic";
import { migratePostgres, openPostgres, postgresMigrationStatus } from "./postgres";
import { newerDatabaseError, planMigrations, reportOf, statusLines, versionsTableSql, type AppliedMigration, type MigrationReport } from "./migrations";
import { VERSION } from "../version";
import { useEngineTables, users } from "./tables";

/**
 * The database, on either engine: SQLite's drizzle instance, or PostgreSQL's typed as it (db/tables.ts says why
 * that holds). Services await its queries, or run them through db/atomic.ts; `$client` is SQLite's connection
 * only where `isPostgres(db)` is false.
 */
export type Db = BunSQLiteDatabase<typeof schema> & { $client: Database };

/** The configured SQLite database; an unusable path stops the start naming the variable that set it. */
export function openConfiguredDatabase(config: Pick<Config, "databasePath" | "databasePathVariable">): Db {
  return openDatabase(config.databasePath, config.databasePathVariable);
}

/**
 * The configured database, migrated: PostgreSQL when DATABASE_URL is set (its tables bound for the services,
 * db/tables.ts), otherwise the SQLite file. The server and every CLI command open it this way.
 */
export async function openMigratedDatabase(config: Config, report?: (report: MigrationReport) => void): Promise<Db> {
  if (config.databaseUrl === undefined) {
    const db = openConfiguredDatabase(config);
    try {
      // Not report?.(migrate(db)): an optional call skips evaluating its argument.
      const applied = migrate(db);
      report?.(applied);
    } catch (error) {
      db.$client.close();
      throw error;
    }
    return db;
  }
  const applied = await onPostgres(config.databaseUrl, migratePostgres);
  report?.(applied);
  useEngineTables("postgres");
  return openPostgres(config.databaseUrl, config.databasePoolSize);
}

/**
 * `latchkey migrate --status`: this binary's migrations, applied or pending, and any the database has that it
 * does not. Applies nothing (an SQLite file that does not exist yet is not created).
 */
export async function migrationStatus(config: Config): Promise<string[]> {
  if (config.databaseUrl !== undefined) return onPostgres(config.databaseUrl, postgresMigrationStatus);
  const migrations = embeddedMigrations("sqlite");
  if (!existsSync(config.databasePath)) return statusLines(migrations, [], undefined);
  const db = openConfiguredDatabase(config);
  try {
    const applied = sqliteApplied(db.$client);
    const plan = planMigrations(migrations, applied);
    return statusLines(migrations, applied, plan.newer === undefined ? undefined : sqliteMigratedBy(db.$client, plan.newer));
  } finally {
    db.$client.close();
  }
}

/** Runs `work` on the PostgreSQL database at `url`; a connection failure stops the start naming DATABASE_URL. */
async function onPostgres<T>(url: string, work: (url: string) => Promise<T>): Promise<T> {
  try {
    return await work(url);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const { host, pathname } = new URL(url);
    const reason = databaseUnavailable(error) ?? (error as Error).message;
    // The address without the user and password, which must not reach a log.
    throw new ConfigError(`DATABASE_URL=postgres://${host}${pathname}: cannot connect (${reason})`);
  }
}

/** Closes the connection (SQLite) or the pool (PostgreSQL, letting running queries finish). */
export async function closeDatabase(db: Db): Promise<void> {
  if (isPostgres(db)) await (db.$client as unknown as { end(options: { timeout: number }): Promise<void> }).end({ timeout: 5 });
  else db.$client.close();
}

/** Opens (creating if needed) the SQLite file with the pragmas every connection needs. */
export function openDatabase(path: string, variable: Config["databasePathVariable"] = "DATABASE_PATH"): Db {
  try {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const client = new Database(path, { create: true, strict: true });
    client.exec("PRAGMA journal_mode = WAL");
    client.exec("PRAGMA foreign_keys = ON");
    // A CLI command (`latchkey user add`) may write while the server runs: wait for the lock instead of failing.
    client.exec("PRAGMA busy_timeout = 5000");
    client.exec("PRAGMA synchronous = NORMAL");
    // Reads through a memory map instead of read() calls: an uncached API-key lookup among 100,000 keys went from
    // 10.6 to 8.0 µs (bench/README.md). The WAL is unaffected; pages are the OS's file cache, not the heap.
    client.exec("PRAGMA mmap_size = 268435456");
    return drizzle({ client, schema }) as Db;
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError(
      variable === "DATA_DIR"
        ? `DATA_DIR=${dirname(path)}: cannot open the database ${path} there (${reason})`
        : `DATABASE_PATH=${path} cannot be opened (${reason})`,
    );
  }
}

/** The two members drizzle's own migrator uses, which its types mark internal: the dialect and the session. */
interface MigratorInternals {
  dialect: SQLiteSyncDialect;
  session: SQLiteSession<"sync", unknown, Record<string, unknown>, TablesRelationalConfig>;
}

/**
 * Applies every migration embedded at build time that the database has not seen yet, after refusing a database a
 * newer binary migrated (db/migrations.ts); returns what it applied.
 */
export function migrate(db: Db): MigrationReport {
  const migrations = embeddedMigrations("sqlite");
  const plan = planMigrations(migrations, sqliteApplied(db.$client));
  if (plan.newer !== undefined) throw newerDatabaseError(plan.newer, sqliteMigratedBy(db.$client, plan.newer), migrations.length);
  // drizzle's own migrator reads drizzle/ from disk; its dialect accepts the same list from memory.
  const { dialect, session } = db as unknown as MigratorInternals;
  // A migration that rebuilds a table (drizzle-kit's copy, DROP, RENAME: SQLite alters no column in place) would
  // cascade its DROP into every table that refers to it, and drizzle's `PRAGMA foreign_keys=OFF` is a no-op inside
  // the migrator's transaction. So the checks are off around the transaction, and what it left is checked before
  // they are on again (the procedure of https://www.sqlite.org/lang_altertable.html#otheralter).
  db.$client.exec("PRAGMA foreign_keys = OFF");
  try {
    dialect.migrate(migrations satisfies MigrationMeta[], session);
    const broken = db.$client.query("PRAGMA foreign_key_check").all();
    if (broken.length > 0) throw new Error(`the migrations left ${broken.length} row(s) referring to nothing: ${JSON.stringify(broken.slice(0, 3))}`);
  } finally {
    db.$client.exec("PRAGMA foreign_keys = ON");
  }
  db.$client.exec(versionsTableSql(VERSIONS_TABLE));
  db.$client.prepare(`INSERT OR IGNORE INTO ${VERSIONS_TABLE} (migration, version, migrated_at) VALUES (?, ?, ?)`).run(migrations.length, VERSION, Date.now());
  return reportOf(plan.pending, migrations.length);
}

const VERSIONS_TABLE = "latchkey_versions";

/** drizzle's record of the applied migrations (none in a new file). */
function sqliteApplied(client: Database): AppliedMigration[] {
  if (!client.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'").get()) return [];
  return client
    .query<{ hash: string; created_at: number }, []>("SELECT hash, created_at FROM __drizzle_migrations")
    .all()
    .map((row) => ({ hash: row.hash, createdAt: Number(row.created_at) }));
}

/** The version of the binary that brought the database to `migration`, if one recorded it. */
function sqliteMigratedBy(client: Database, migration: number): string | undefined {
  if (!client.query(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '${VERSIONS_TABLE}'`).get()) return undefined;
  return client.query<{ version: string }, [number]>(`SELECT version FROM ${VERSIONS_TABLE} WHERE migration = ?`).get(migration)?.version;
}

/** How many accounts exist (the start-up hint for an instance with none). */
export async function countUsers(db: Db): Promise<number> {
  return (await db.select({ n: count() }).from(users))[0]?.n ?? 0;
}

/** A real round trip, for /health. */
export async function ping(db: Db): Promise<boolean> {
  try {
    await db.select({ id: users.id }).from(users).limit(1);
    return true;
  } catch {
    return false;
  }
}
