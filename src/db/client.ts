import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
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
import { migratePostgres, openPostgres } from "./postgres";
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
export async function openMigratedDatabase(config: Config): Promise<Db> {
  if (config.databaseUrl === undefined) {
    const db = openConfiguredDatabase(config);
    migrate(db);
    return db;
  }
  try {
    await migratePostgres(config.databaseUrl);
  } catch (error) {
    const { host, pathname } = new URL(config.databaseUrl);
    const reason = databaseUnavailable(error) ?? (error as Error).message;
    // The address without the user and password, which must not reach a log.
    throw new ConfigError(`DATABASE_URL=postgres://${host}${pathname}: cannot connect (${reason})`);
  }
  useEngineTables("postgres");
  return openPostgres(config.databaseUrl, config.databasePoolSize);
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

/** Applies every migration embedded at build time that the database has not seen yet. */
export function migrate(db: Db): void {
  const migrations: MigrationMeta[] = embeddedMigrations("sqlite");
  // drizzle's own migrator reads drizzle/ from disk; its dialect accepts the same list from memory.
  const { dialect, session } = db as unknown as MigratorInternals;
  dialect.migrate(migrations, session);
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
