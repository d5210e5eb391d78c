/**
 * Issue 22, upgrades and roll-backs, on the engine the suite runs (SQLite, then PostgreSQL): a binary refuses a
 * database that a newer binary migrated, its start says which migrations it applied, `latchkey migrate --status`
 * lists applied and pending ones, and `--version` and /health name the version and the commit.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { openTestDatabase } from "../support/database";
import { TEST_ENGINE } from "../support/engine";
import { freePort, removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";

const ROOT = resolve(import.meta.dir, "../..");
const VERSION: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
/** This binary's migrations on the engine under test, from the journal the build embedded. */
const JOURNAL: { tag: string; when: number }[] = JSON.parse(readFileSync(join(ROOT, "drizzle", TEST_ENGINE, "meta", "_journal.json"), "utf8")).entries;
const TAGS = JOURNAL.map((entry) => entry.tag);
const COUNT = TAGS.length;
/** drizzle's table of applied migrations, and Latchkey's record of which version applied them. */
const MIGRATIONS_TABLE = TEST_ENGINE === "postgres" ? "drizzle.__drizzle_migrations" : "__drizzle_migrations";
const VERSIONS_TABLE = TEST_ENGINE === "postgres" ? "drizzle.latchkey_versions" : "latchkey_versions";

let server: RunningServer | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await server?.stop();
  server = undefined;
  for (const dir of dirs.splice(0)) removeDataDir(dir);
});

function dataDir(): string {
  const dir = tempDataDir();
  dirs.push(dir);
  return dir;
}

/** What a newer binary leaves: one more migration, later than all of ours, and (when it records it) its version. */
async function plantNewerMigration(dir: string, version: string | undefined): Promise<void> {
  const db = await openTestDatabase(dir, { writable: true });
  try {
    await db.run(`INSERT INTO ${MIGRATIONS_TABLE} (hash, created_at) VALUES (?, ?)`, "f".repeat(64), JOURNAL.at(-1)!.when + 86_400_000);
    if (version !== undefined) await db.run(`INSERT INTO ${VERSIONS_TABLE} (migration, version, migrated_at) VALUES (?, ?, ?)`, COUNT + 1, version, Date.now());
  } finally {
    await db.close();
  }
}

describe(`migrations on ${TEST_ENGINE}`, () => {
  test("migrate --status lists every migration pending, then applied; migrate and the start say what they applied", async () => {
    const dir = dataDir();
    const pending = await runCli(["migrate", "--status"], { DATA_DIR: dir });
    expect(pending).toEqual({
      code: 0,
      stdout: [...TAGS.map((tag) => `pending  ${tag}`), `0 applied, ${COUNT} pending (Latchkey ${VERSION}); "latchkey migrate" or the next start applies what is pending`, ""].join("\n"),
      stderr: "",
    });
    // --status applies nothing (and creates no SQLite file).
    if (TEST_ENGINE === "sqlite") expect(existsSync(join(dir, "latchkey.db"))).toBe(false);

    const migrated = await runCli(["migrate"], { DATA_DIR: dir });
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toBe(
      TEST_ENGINE === "sqlite"
        ? `created the database ${join(dir, "latchkey.db")} and applied every migration\n`
        : `the PostgreSQL database (DATABASE_URL): applied ${TAGS.join(", ")}\n`,
    );

    const applied = await runCli(["migrate", "--status"], { DATA_DIR: dir });
    expect(applied.stdout).toBe(
      [...TAGS.map((tag) => `applied  ${tag}`), `${COUNT} applied, 0 pending (Latchkey ${VERSION}); "latchkey migrate" or the next start applies what is pending`, ""].join("\n"),
    );

    server = await startServer({}, dir);
    expect(server.output()).toContain(`latchkey: database schema up to date (migration ${COUNT})\n`);
    // The binary recorded that it brought the database to its last migration.
    const db = await openTestDatabase(dir);
    try {
      expect(await db.all(`SELECT migration, version FROM ${VERSIONS_TABLE}`)).toEqual([{ migration: COUNT, version: VERSION }]);
    } finally {
      await db.close();
    }
  });

  test("a first start logs the migrations it applied", async () => {
    server = await startServer({}, dataDir());
    expect(server.output()).toContain(`latchkey: applied migrations ${TAGS.join(", ")} (database now at migration ${COUNT})\n`);
  });

  test("a database a newer binary migrated is refused (exit 2 naming both versions) by the server and every command; --status shows it", async () => {
    const dir = dataDir();
    expect((await runCli(["migrate"], { DATA_DIR: dir })).code).toBe(0);
    await plantNewerMigration(dir, "9.9.9");
    const refusal =
      `latchkey: configuration error: this database was migrated by Latchkey 9.9.9 (migration ${COUNT + 1}); this is ${VERSION} (migration ${COUNT}): ` +
      `run that version or a newer one, or restore the backup taken before the upgrade (README "Upgrading")\n`;
    const serve = await runCli(["serve"], { DATA_DIR: dir, HOST: "127.0.0.1", PORT: String(freePort()) });
    expect({ code: serve.code, stderr: serve.stderr }).toEqual({ code: 2, stderr: refusal });
    for (const command of [["migrate"], ["user", "list"]]) {
      const result = await runCli(command, { DATA_DIR: dir });
      expect({ command, code: result.code, stderr: result.stderr }).toEqual({ command, code: 2, stderr: refusal });
    }
    const status = await runCli(["migrate", "--status"], { DATA_DIR: dir });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`applied  ${TAGS.at(-1)}\nunknown  migrated `);
    expect(status.stdout).toEndWith(`${refusal.replace("latchkey: configuration error: ", "")}`);
    // Nothing was applied or recorded by the refused starts.
    const db = await openTestDatabase(dir);
    try {
      expect(Number((await db.get<{ n: number }>(`SELECT count(*) AS n FROM ${MIGRATIONS_TABLE}`))!.n)).toBe(COUNT + 1);
    } finally {
      await db.close();
    }
  });

  test("a newer migration without a recorded version (a binary of today's kind) is refused too", async () => {
    const dir = dataDir();
    expect((await runCli(["migrate"], { DATA_DIR: dir })).code).toBe(0);
    await plantNewerMigration(dir, undefined);
    const serve = await runCli(["serve"], { DATA_DIR: dir, HOST: "127.0.0.1", PORT: String(freePort()) });
    expect(serve.code).toBe(2);
    expect(serve.stderr).toStartWith(`latchkey: configuration error: this database was migrated by Latchkey (a newer version) (migration ${COUNT + 1}); this is ${VERSION}`);
  });
});

describe("version and commit", () => {
  test("latchkey --version and /health name the version and the commit the binary was built from", async () => {
    const version = await runCli(["--version"], {});
    const match = /^latchkey (\S+) \(bun-linux-(x64|arm64)[^,]*, commit ([0-9a-f]{7,40}|unknown)\)\n$/.exec(version.stdout);
    expect(match?.[1]).toBe(VERSION);
    const commit = match![3]!;
    // Built by `make build` in this checkout: a commit of this repository, not "unknown".
    const known = Bun.spawnSync(["git", "-C", ROOT, "cat-file", "-e", `${commit}^{commit}`]);
    expect({ commit, exists: known.exitCode }).toEqual({ commit, exists: 0 });
    server = await startServer({}, dataDir());
    const health = await fetch(`${server.url}/health`);
    expect({ status: health.status, body: await health.json() }).toEqual({ status: 200, body: { status: "ok", version: VERSION, commit } });
  });
});
