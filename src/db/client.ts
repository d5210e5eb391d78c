import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { sql, type TablesRelationalConfig } from "drizzle-orm";
import type { MigrationMeta } from "drizzle-orm/migrator";
import type { SQLiteSession, SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import { type Config } from "../config";
import { ConfigError } from "../errors";
import { embeddedMigrations } from "./migrations.macro" with { type: "macro" };
import * as schema from "./schema";

export type Db = BunSQLiteDatabase<typeof schema> & { $client: Database };
/** The handle a `db.transaction(...)` callback receives. */
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/** The configured database; an unusable path stops the start naming the variable that set it. */
export function openConfiguredDatabase(config: Pick<Config, "databasePath" | "databasePathVariable">): Db {
  return openDatabase(config.databasePath, config.databasePathVariable);
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

/** Rows changed by a write's `.run()` (drizzle's bun-sqlite types say void; bun:sqlite returns the count). */
export function changedRows(result: unknown): number {
  return (result as { changes: number }).changes;
}

/** How many accounts exist (the start-up hint for an instance with none). */
export function countUsers(db: Db): number {
  return db.all<{ n: number }>(sql`select count(*) as n from users`)[0]?.n ?? 0;
}

/** A real round trip, for /health. */
export function ping(db: Db): boolean {
  try {
    return db.all<{ ok: number }>(sql`select 1 as ok`)[0]?.ok === 1;
  } catch {
    return false;
  }
}
