/**
 * PostgreSQL (issue 11), for instances that share one database: its migration at start and its connection pool.
 * The services run on it through the same code as on SQLite (db/atomic.ts, db/tables.ts).
 */
import { drizzle } from "drizzle-orm/postgres-js";
import type { PgDialect, PgSession } from "drizzle-orm/pg-core";
import postgres from "postgres";
import { embeddedMigrations } from "./migrations.macro" with { type: "macro" };
import { isPostgres } from "./atomic";
import type { Db } from "./client";
import * as schema from "./schema-postgres";
import { newerDatabaseError, planMigrations, reportOf, statusLines, versionsTableSql, type AppliedMigration, type MigrationReport } from "./migrations";
import { VERSION } from "../version";

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

/**
 * Applies every PostgreSQL migration embedded at build time that the database at `url` has not seen yet, after
 * refusing a database a newer binary migrated (db/migrations.ts); returns what it applied.
 */
export async function migratePostgres(url: string): Promise<MigrationReport> {
  // One connection: the advisory lock belongs to the session that takes it.
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK})`;
    try {
      const migrations = embeddedMigrations("postgres");
      const plan = planMigrations(migrations, await applied(client));
      if (plan.newer !== undefined) throw newerDatabaseError(plan.newer, await migratedBy(client, plan.newer), migrations.length);
      const { dialect, session } = drizzle({ client, schema }) as unknown as MigratorInternals;
      await dialect.migrate(migrations, session, { migrationsFolder: "drizzle/postgres (embedded)" });
      await client.unsafe(versionsTableSql(VERSIONS_TABLE));
      await client.unsafe(`insert into ${VERSIONS_TABLE} (migration, version, migrated_at) values ($1, $2, $3) on conflict do nothing`, [
        migrations.length,
        VERSION,
        Date.now(),
      ]);
      return reportOf(plan.pending, migrations.length);
    } finally {
      await client`select pg_advisory_unlock(${MIGRATION_LOCK})`;
    }
  } finally {
    await client.end();
  }
}

/** `latchkey migrate --status` on PostgreSQL (db/client.ts migrationStatus). */
export async function postgresMigrationStatus(url: string): Promise<string[]> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const migrations = embeddedMigrations("postgres");
    const rows = await applied(client);
    const plan = planMigrations(migrations, rows);
    return statusLines(migrations, rows, plan.newer === undefined ? undefined : await migratedBy(client, plan.newer));
  } finally {
    await client.end();
  }
}

/** Beside drizzle's own table, in its schema: not Latchkey's data, so neither schema file nor migrate-db has it. */
const VERSIONS_TABLE = "drizzle.latchkey_versions";

/** drizzle's record of the applied migrations (none in a new database). */
async function applied(client: postgres.Sql): Promise<AppliedMigration[]> {
  const [exists] = await client`select to_regclass('drizzle.__drizzle_migrations') is not null as present`;
  if (!exists?.present) return [];
  const rows = await client<{ hash: string; created_at: string }[]>`select hash, created_at from drizzle.__drizzle_migrations`;
  return rows.map((row) => ({ hash: row.hash, createdAt: Number(row.created_at) }));
}

/** The version of the binary that brought the database to `migration`, if one recorded it. */
async function migratedBy(client: postgres.Sql, migration: number): Promise<string | undefined> {
  const [exists] = await client`select to_regclass(${VERSIONS_TABLE}) is not null as present`;
  if (!exists?.present) return undefined;
  const [row] = await client.unsafe<{ version: string }[]>(`select version from ${VERSIONS_TABLE} where migration = $1`, [migration]);
  return row?.version;
}

/**
 * How long a request waits for a connection, or for a query, before it fails (503 database_unavailable) rather
 * than hang while the database is away; postgres.js reconnects by itself when it is back.
 */
const CONNECT_TIMEOUT_SECONDS = 5;
const QUERY_TIMEOUT_MS = 10_000;

/**
 * This process's connections' `application_name`: "latchkey" and a tag of its own, so that /metrics can count
 * this instance's connections in pg_stat_activity apart from the other instances' (postgres.js keeps its pool's
 * state to itself).
 */
const APPLICATION_NAME = `latchkey ${process.pid}-${Bun.randomUUIDv7().slice(-8)}`;

/** The pool every request of this instance draws on (DATABASE_POOL_SIZE connections). */
export function openPostgres(url: string, poolSize: number): Db {
  const client = postgres(url, {
    max: poolSize,
    onnotice: () => {},
    connect_timeout: CONNECT_TIMEOUT_SECONDS,
    // A statement that waits longer (a lock held by a dead peer, a database under water) is cancelled.
    connection: { statement_timeout: QUERY_TIMEOUT_MS, application_name: APPLICATION_NAME },
  });
  return drizzle({ client, schema }) as unknown as Db;
}

/**
 * Runs `work` unless another instance is running it (PostgreSQL: a session advisory lock named after `name`,
 * tried, not waited for; the lock belongs to one reserved connection). On SQLite one server owns the file: it runs.
 */
export async function onOneInstance(db: Db, name: string, work: () => Promise<void>): Promise<void> {
  if (!isPostgres(db)) return work();
  const client = db.$client as unknown as postgres.Sql;
  const reserved = await client.reserve();
  try {
    const [row] = await reserved`select pg_try_advisory_lock(${LOCK_SPACE}, ${lockKey(name)}) as locked`;
    if (!row?.locked) return;
    try {
      await work();
    } finally {
      await reserved`select pg_advisory_unlock(${LOCK_SPACE}, ${lockKey(name)})`;
    }
  } finally {
    reserved.release();
  }
}

/** The two-key advisory locks (a space apart from MIGRATION_LOCK's one key): "lk" and a hash of the name. */
const LOCK_SPACE = 0x6c6b;
const lockKey = (name: string) => Bun.hash.crc32(name) | 0;

/**
 * This instance's PostgreSQL connections by state (`active`, `idle`, `idle in transaction`, ...): its pool, the
 * LISTEN connection of db/peers.ts, and the one asking. For /metrics.
 */
export async function connectionsByState(db: Db): Promise<{ state: string; connections: number }[]> {
  const client = db.$client as unknown as postgres.Sql;
  const rows = await client`select coalesce(state, 'unknown') as state, count(*)::int as connections from pg_stat_activity where application_name = ${APPLICATION_NAME} group by 1`;
  return rows.map((row) => ({ state: String(row.state), connections: Number(row.connections) }));
}
