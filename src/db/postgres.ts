/**
 * PostgreSQL (issue 11), for instances that share one database. So far this file migrates it; the services still
 * run on SQLite only, so config.ts refuses DATABASE_URL (README: "PostgreSQL").
 */
import { drizzle } from "drizzle-orm/postgres-js";
import type { PgDialect, PgSession } from "drizzle-orm/pg-core";
import postgres from "postgres";
import { embeddedMigrations } from "./migrations.macro" with { type: "macro" };
import * as schema from "./schema-postgres";

/**
 * The advisory lock every instance takes to migrate ("lkmg"): instances started together migrate one after the
 * other, and each after the first finds nothing left to do. Session-level, on the one connection that migrates.
 */
const MIGRATION_LOCK = 0x6c6b6d67;

/** The members drizzle's own migrator uses, which its types mark internal: the dialect and the session. */
interface MigratorInternals {
  dialect: PgDialect;
  session: PgSession;
}

/** Applies every PostgreSQL migration embedded at build time that the database at `url` has not seen yet. */
export async function migratePostgres(url: string): Promise<void> {
  // One connection: the advisory lock belongs to the session that takes it.
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK})`;
    try {
      const { dialect, session } = drizzle({ client, schema }) as unknown as MigratorInternals;
      await dialect.migrate(embeddedMigrations("postgres"), session, { migrationsFolder: "drizzle/postgres (embedded)" });
    } finally {
      await client`select pg_advisory_unlock(${MIGRATION_LOCK})`;
    }
  } finally {
    await client.end();
  }
}
