/**
 * Issue 11, first part: the PostgreSQL schema, migrated for real. A PostgreSQL server from Debian's package
 * (test/support/postgres.ts) gets the migrations embedded for it; instances that start together migrate once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { getTableConfig } from "drizzle-orm/pg-core";
import postgres from "postgres";
import { migratePostgres } from "../../src/db/postgres";
import * as pgSchema from "../../src/db/schema-postgres";
import { startPostgres, type TestPostgres } from "../support/postgres";

const TABLES = Object.values(pgSchema).map((table) => getTableConfig(table).name).sort();
/** How many migrations drizzle/postgres holds: each is applied exactly once. */
const MIGRATIONS = (JSON.parse(readFileSync(join(import.meta.dir, "../../drizzle/postgres/meta/_journal.json"), "utf8")) as { entries: unknown[] }).entries.length;

describe("PostgreSQL migrations", () => {
  let server: TestPostgres;
  beforeAll(async () => {
    server = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  const withClient = async <T>(run: (sql: postgres.Sql) => Promise<T>): Promise<T> => {
    const sql = postgres(server.url, { max: 1, onnotice: () => {} });
    try {
      return await run(sql);
    } finally {
      await sql.end();
    }
  };

  test("three instances migrating at once: every table of the schema exists, each migration applied exactly once", async () => {
    await Promise.all([migratePostgres(server.url), migratePostgres(server.url), migratePostgres(server.url)]);
    const tables = await withClient((sql) => sql<{ table_name: string }[]>`select table_name from information_schema.tables where table_schema = 'public' order by table_name`);
    expect(tables.map((row) => row.table_name)).toEqual(TABLES);
    const applied = await withClient((sql) => sql<{ n: number }[]>`select count(*)::int as n from drizzle.__drizzle_migrations`);
    expect(applied[0]!.n).toBe(MIGRATIONS);
  });

  test("a second start finds nothing to do, and the columns have PostgreSQL's own types", async () => {
    await migratePostgres(server.url);
    const columns = await withClient(
      (sql) => sql<{ column_name: string; data_type: string; is_nullable: string }[]>`
        select column_name, data_type, is_nullable from information_schema.columns
        where table_schema = 'public' and table_name = 'users' order by ordinal_position`,
    );
    expect(columns.map((column) => [column.column_name, column.data_type, column.is_nullable])).toEqual([
      ["id", "text", "NO"],
      ["username", "text", "NO"],
      ["email", "text", "YES"],
      ["email_verified", "boolean", "NO"],
      ["password_hash", "text", "YES"],
      ["roles", "jsonb", "NO"],
      ["disabled", "boolean", "NO"],
      ["metadata", "jsonb", "NO"],
      ["created_at", "timestamp with time zone", "NO"],
      ["updated_at", "timestamp with time zone", "NO"],
    ]);
    const applied = await withClient((sql) => sql<{ n: number }[]>`select count(*)::int as n from drizzle.__drizzle_migrations`);
    expect(applied[0]!.n).toBe(MIGRATIONS);
  });
});
