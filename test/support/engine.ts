/**
 * Which database engine the suite's servers run on (issue 11). `make test` runs the end-to-end suite twice: on
 * SQLite (the default), then with LATCHKEY_TEST_ENGINE=postgres on a real PostgreSQL that this module starts once
 * per test process (test/support/postgres.ts) and stops after the last file (test/support/suite-end.ts). Each instance gets its own
 * database, keyed by its DATA_DIR: a restart with the same DATA_DIR, or a CLI command given it, finds the same
 * data, exactly as with the SQLite file in that folder.
 */
import { test } from "bun:test";
import { createHash } from "node:crypto";
import { atSuiteEnd } from "./suite-end";
import { startPostgres, type TestPostgres } from "./postgres";

export const TEST_ENGINE: "sqlite" | "postgres" = process.env.LATCHKEY_TEST_ENGINE === "postgres" ? "postgres" : "sqlite";

/**
 * `test`, or in the PostgreSQL pass a skipped test: for what only the SQLite file has (its path and mode, its
 * copy by `latchkey backup`, its pragmas); each such test says what covers the same ground on PostgreSQL.
 */
export const sqliteOnlyTest = TEST_ENGINE === "postgres" ? test.skip : test;

let cluster: Promise<TestPostgres> | undefined;
const databases = new Map<string, Promise<string>>();

/** The shared test cluster, started on first use and stopped after the last test file. */
export function testCluster(): Promise<TestPostgres> {
  cluster ??= startPostgres().then((started) => {
    atSuiteEnd(() => started.stop());
    return started;
  });
  return cluster;
}

/** The environment that points an instance with this DATA_DIR at its database: nothing on SQLite. */
export async function engineEnv(env: Record<string, string | undefined>): Promise<Record<string, string>> {
  const dataDir = env.DATA_DIR;
  if (TEST_ENGINE === "sqlite" || dataDir === undefined || env.DATABASE_URL !== undefined) return {};
  let url = databases.get(dataDir);
  if (!url) {
    const name = `lk_${createHash("sha256").update(dataDir).digest("hex").slice(0, 24)}`;
    url = testCluster().then((cluster) => cluster.createDatabase(name));
    databases.set(dataDir, url);
  }
  return { DATABASE_URL: await url };
}
