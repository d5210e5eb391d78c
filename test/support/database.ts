/**
 * The database behind a test's server, on whichever engine the suite runs (test/support/engine.ts), for the
 * assertions that read or change rows directly. A query is written once, in SQL both engines take, with `?`
 * placeholders. Rows come back in SQLite's shapes on both engines (a boolean as 0 or 1, a time as epoch
 * milliseconds, JSON as its compact text), so an assertion reads the same whichever engine ran. `time(ms)` is a
 * time to write; `minus(column, ms)` moves a time column back.
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import postgres from "postgres";
import { engineEnv, TEST_ENGINE } from "./engine";

export interface TestDatabase {
  all<T = Record<string, unknown>>(query: string, ...params: unknown[]): Promise<T[]>;
  get<T = Record<string, unknown>>(query: string, ...params: unknown[]): Promise<T | undefined>;
  run(query: string, ...params: unknown[]): Promise<void>;
  close(): Promise<void>;
}

/** A time as a query parameter: epoch milliseconds on SQLite, a timestamp on PostgreSQL. */
export const time = (ms: number): unknown => (TEST_ENGINE === "postgres" ? new Date(ms) : ms);

/** SQL for `column` moved `ms` milliseconds back. */
export const minus = (column: string, ms: number): string =>
  TEST_ENGINE === "postgres" ? `${column} - interval '${ms} milliseconds'` : `${column} - ${ms}`;

/** SQLite's shape of a PostgreSQL value. */
function likeSqlite(value: unknown): unknown {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof Date) return value.getTime();
  if (value !== null && typeof value === "object") return JSON.stringify(value);
  return value;
}

/** Opens the database of the instance whose DATA_DIR is `dataDir` (read-only unless `writable`). */
export async function openTestDatabase(dataDir: string, { writable = false } = {}): Promise<TestDatabase> {
  if (TEST_ENGINE === "sqlite") {
    const db = new Database(join(dataDir, "latchkey.db"), writable ? { readwrite: true } : { readonly: true });
    return {
      all: async <T>(query: string, ...params: unknown[]) => db.query(query).all(...(params as never[])) as T[],
      get: async <T>(query: string, ...params: unknown[]) => (db.query(query).get(...(params as never[])) ?? undefined) as T | undefined,
      run: async (query: string, ...params: unknown[]) => void db.query(query).run(...(params as never[])),
      close: async () => db.close(),
    };
  }
  const { DATABASE_URL } = await engineEnv({ DATA_DIR: dataDir });
  const sql = postgres(DATABASE_URL!, { max: 1, onnotice: () => {} });
  let n = 0;
  const numbered = (query: string) => query.replace(/\?/g, () => `$${++n}`);
  const all = async <T>(query: string, ...params: unknown[]) => {
    n = 0;
    const rows = await sql.unsafe(numbered(query), params as never[]);
    return rows.map((row) => Object.fromEntries(Object.entries(row).map(([key, value]) => [key, likeSqlite(value)]))) as T[];
  };
  return {
    all,
    get: async <T>(query: string, ...params: unknown[]) => (await all<T>(query, ...params))[0],
    run: async (query: string, ...params: unknown[]) => void (await all(query, ...params)),
    close: () => sql.end(),
  };
}

/** The JWT secret an instance generated (no JWT_SECRET): DATA_DIR/jwt_secret on SQLite, instance_secret on PostgreSQL. */
export async function generatedSecret(dataDir: string): Promise<string> {
  if (TEST_ENGINE === "sqlite") return (await Bun.file(join(dataDir, "jwt_secret")).text()).trim();
  const db = await openTestDatabase(dataDir);
  try {
    return (await db.get<{ secret: string }>("SELECT secret FROM instance_secret"))!.secret;
  } finally {
    await db.close();
  }
}
