/**
 * Issue 11: `latchkey migrate-db --to postgres://...` moves an SQLite instance into an empty PostgreSQL database
 * without losing a row or the generated secret. An instance is populated through the compiled binary's API and
 * CLI, copied by the binary into a real PostgreSQL (test/support/postgres.ts), and every table is compared row by
 * row, both read with drizzle. The copy's edges (batches, a row before the row it refers to, the audit identity,
 * a row PostgreSQL refuses) are driven in process against the same server.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateHOTP } from "@oslojs/otp";
import { eq, getTableName, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import { PgTable } from "drizzle-orm/pg-core";
import { SQLiteTable } from "drizzle-orm/sqlite-core";
import postgres from "postgres";
import { migrate, openDatabase, type Db } from "../../src/db/client";
import { COPY_LOCK, copyToPostgres } from "../../src/db/copy";
import * as pgSchema from "../../src/db/schema-postgres";
import * as sqliteSchema from "../../src/db/schema";
import { waitFor } from "../support/client";
import { bearer, call } from "../support/http";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { removeDataDir, runCli, startServer, tempDataDir } from "../support/server";

const PASSWORD = "a long passphrase";
const AUTH = "/api/v1/auth";

const sqliteTables = (Object.values(sqliteSchema) as unknown[]).filter((value): value is SQLiteTable => value instanceof SQLiteTable);
const pgTables = (Object.values(pgSchema) as unknown[]).filter((value): value is PgTable => value instanceof PgTable);
const twinOf = (table: SQLiteTable) => pgTables.find((candidate) => getTableName(candidate) === getTableName(table))!;

/** A value as text with object keys sorted: jsonb keeps its own key order, so rows are ordered by this. */
function canonical(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}
const inOrder = (rows: Record<string, unknown>[]) => [...rows].sort((a, b) => canonical(a).localeCompare(canonical(b)));

let server: TestPostgres;
let databases = 0;

/** A new, empty database on the suite's PostgreSQL server: its URL. */
async function newDatabase(): Promise<string> {
  const name = `copy_${++databases}`;
  return server.createDatabase(name);
}

async function withPostgres<T>(url: string, run: (client: postgres.Sql) => Promise<T>): Promise<T> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** Every table of the PostgreSQL database at `url` with its row count. */
const targetCounts = (url: string) =>
  withPostgres(url, async (client) => {
    const counts: Record<string, number> = {};
    for (const table of pgTables) counts[getTableName(table)] = (await client.unsafe(`select count(*)::int as n from ${getTableName(table)}`))[0]!.n;
    return counts;
  });

beforeAll(async () => {
  server = await startPostgres();
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

describe("latchkey migrate-db, through the compiled binary", () => {
  test("a populated instance: every row of every table and the generated secret arrive unchanged; the counts are printed; a second run is refused", async () => {
    const dataDir = tempDataDir();
    try {
      const env = { DATA_DIR: dataDir };
      /** What a client of the SQLite instance holds, to present to the PostgreSQL instances after the move. */
      const held = { access: "", refresh: "", apiKey: "", totpSecret: "" };
      expect((await runCli(["user", "add", "root", "--admin", "--email", "root@example.test"], env, PASSWORD)).code).toBe(0);
      const running = await startServer({ ALLOW_REGISTRATION: "true", RATE_LIMIT: "off", PUBLIC_URL: "http://auth.example.test" }, dataDir);
      try {
        expect((await call(running.url, "POST", `${AUTH}/register`, { username: "ada", password: PASSWORD, email: "ada@example.test" })).status).toBe(201);
        expect((await call(running.url, "POST", `${AUTH}/register`, { username: "bob", password: PASSWORD })).status).toBe(201);
        // Sessions with refresh tokens, one of them rotated (a spent token and its successor).
        const ada = (await call(running.url, "POST", `${AUTH}/login`, { username: "ada", password: PASSWORD })).body;
        const rotated = await call(running.url, "POST", `${AUTH}/refresh`, { refresh_token: ada.refresh_token });
        expect(rotated.status).toBe(200);
        const root = (await call(running.url, "POST", `${AUTH}/login`, { username: "root", password: PASSWORD })).body;
        const key = await call(running.url, "POST", `${AUTH}/keys`, { name: "nas" }, bearer(rotated.body.access_token));
        expect(key.status).toBe(201);
        Object.assign(held, { access: rotated.body.access_token, refresh: rotated.body.refresh_token, apiKey: key.body.api_key });
        expect((await call(running.url, "POST", `${AUTH}/login`, { username: "bob", password: "not the password" })).status).toBe(401);
        // A confirmed TOTP factor (its secret encrypted with the generated secret) and its ten recovery codes.
        const started = await call(running.url, "POST", `${AUTH}/mfa/totp`, undefined, bearer(root.access_token));
        expect(started.status).toBe(200);
        held.totpSecret = started.body.secret;
        const code = generateHOTP(decodeBase32IgnorePadding(started.body.secret), BigInt(Math.floor(Date.now() / 30_000)), 6);
        expect((await call(running.url, "POST", `${AUTH}/mfa/totp/confirm`, { code }, bearer(root.access_token))).status).toBe(200);
        // A sign-in waiting for its second factor.
        expect((await call(running.url, "POST", `${AUTH}/login`, { username: "root", password: PASSWORD })).body.challenge_id).toBeString();
        const client = await runCli(["oidc", "client", "add", "grafana", "--redirect-uri", "https://grafana.example.test/login/generic_oauth", "--roles", "admin"], env);
        expect(client.code).toBe(0);
        expect((await runCli(["keys", "rotate"], env)).code).toBe(0);
      } finally {
        expect(await running.stop()).toBe(0);
      }

      const url = await newDatabase();
      const copied = await runCli(["migrate-db", "--to", url], env);
      expect(copied.stderr).toBe("");
      expect(copied.code).toBe(0);

      const source = openDatabase(join(dataDir, "latchkey.db"));
      const target = drizzle({ client: postgres(url, { max: 1, onnotice: () => {} }), schema: pgSchema });
      try {
        // One printed line per table with the snapshot's count, which is the source's count.
        const printed = Object.fromEntries([...copied.stdout.matchAll(/^(\w+) +(\d+)$/gm)].map(([, name, rows]) => [name, Number(rows)]));
        const expected: Record<string, number> = {};
        for (const table of sqliteTables) expected[getTableName(table)] = source.select().from(table).all().length;
        expect(printed).toEqual(expected);
        // The populated tables are not vacuously equal.
        expect(expected).toMatchObject({ users: 3, api_keys: 1, totp_factors: 1, recovery_codes: 10, oidc_clients: 1, login_challenges: 1 });
        expect(expected.sessions).toBeGreaterThanOrEqual(2);
        expect(expected.refresh_tokens).toBeGreaterThanOrEqual(3);
        expect(expected.signing_keys).toBeGreaterThanOrEqual(2);
        expect(expected.audit_events).toBeGreaterThanOrEqual(8);
        expect(copied.stdout).toContain("the row counts of every table match\n");
        expect(copied.stdout).toContain(`copied the generated JWT secret ${join(dataDir, "jwt_secret")} into the database (instance_secret)\n`);

        for (const table of sqliteTables) {
          const rows = inOrder(source.select().from(table).all() as Record<string, unknown>[]);
          const copies = inOrder((await target.select().from(twinOf(table))) as Record<string, unknown>[]);
          expect({ table: getTableName(table), rows: copies }).toEqual({ table: getTableName(table), rows });
        }
        // JSON arrived as JSON, not as a JSON string inside jsonb (which drizzle would decode back the same).
        const jsonb = await target.execute<{ table_name: string; column_name: string }>(
          sql`select table_name, column_name from information_schema.columns where table_schema = 'public' and data_type = 'jsonb'`,
        );
        expect(jsonb.length).toBeGreaterThanOrEqual(10);
        for (const { table_name, column_name } of jsonb) {
          const [row] = await target.execute<{ n: number }>(sql`select count(*)::int as n from ${sql.identifier(table_name)} where jsonb_typeof(${sql.identifier(column_name)}) = 'string'`);
          expect({ table_name, column_name, strings: row!.n }).toEqual({ table_name, column_name, strings: 0 });
        }
        const [secret] = await target.select().from(pgSchema.instanceSecret);
        expect(secret).toMatchObject({ id: 1, secret: readFileSync(join(dataDir, "jwt_secret"), "utf8").trim() });
        // New audit rows continue after the copied ids.
        const [highest] = await target.execute<{ id: number }>(sql`select max(id)::int as id from audit_events`);
        const [next] = await target.insert(pgSchema.auditEvents).values({ event: "after_copy" }).returning({ id: pgSchema.auditEvents.id });
        expect(next!.id).toBe(highest!.id + 1);
        await target.delete(pgSchema.auditEvents).where(eq(pgSchema.auditEvents.id, next!.id));
      } finally {
        source.$client.close();
        await target.$client.end();
      }

      // The move: an instance on the PostgreSQL database (no SQLite file in its DATA_DIR) honours everything the
      // SQLite instance issued, because the secret came along: tokens, the refresh token, the API key, the
      // authenticator (its secret is encrypted with a key derived from the generated secret).
      const moved = await startServer({ DATABASE_URL: url, RATE_LIMIT: "off", PUBLIC_URL: "http://auth.example.test" });
      try {
        expect((await call(moved.url, "GET", `${AUTH}/validate`, undefined, bearer(held.access))).body.username).toBe("ada");
        expect((await call(moved.url, "GET", `${AUTH}/validate`, undefined, bearer(held.apiKey))).body.username).toBe("ada");
        expect((await call(moved.url, "POST", `${AUTH}/refresh`, { refresh_token: held.refresh })).status).toBe(200);
        const challenge = await call(moved.url, "POST", `${AUTH}/login`, { username: "root", password: PASSWORD });
        expect(challenge.status).toBe(202);
        // The next 30-second step: the step used at enrolment is spent (RFC 6238 §5.2).
        const code = generateHOTP(decodeBase32IgnorePadding(held.totpSecret), BigInt(Math.floor(Date.now() / 30_000) + 1), 6);
        const signedIn = await call(moved.url, "POST", `${AUTH}/login/verify`, { challenge_id: challenge.body.challenge_id, code });
        expect(signedIn.status).toBe(200);
        expect(signedIn.body.user.username).toBe("root");
      } finally {
        expect(await moved.stop()).toBe(0);
        removeDataDir(moved.dataDir);
      }

      const before = await targetCounts(url);
      const again = await runCli(["migrate-db", "--to", url], env);
      const filled = Object.keys(before).filter((name) => before[name]! > 0).sort();
      expect(filled).toContain("instance_secret");
      expect(again).toEqual({
        code: 2,
        stdout: "",
        stderr: `latchkey: the PostgreSQL database is not empty (rows in ${filled.join(", ")}): migrate-db copies into an empty database only\n`,
      });
      expect(await targetCounts(url)).toEqual(before);
    } finally {
      removeDataDir(dataDir);
    }
  }, 120_000);

  test("with JWT_SECRET set nothing generated is carried, and the output says the instances need the same JWT_SECRET", async () => {
    const dataDir = tempDataDir();
    try {
      const env = { DATA_DIR: dataDir, JWT_SECRET: "s".repeat(40) };
      expect((await runCli(["user", "add", "solo"], env, PASSWORD)).code).toBe(0);
      const url = await newDatabase();
      const copied = await runCli(["migrate-db", "--to", url], env);
      expect(copied.code).toBe(0);
      expect(copied.stdout).toMatch(/^users +1$/m);
      expect(copied.stdout).toEndWith("the JWT secret comes from JWT_SECRET: start the PostgreSQL instances with the same JWT_SECRET\n");
      expect((await targetCounts(url)).instance_secret).toBe(0);
    } finally {
      removeDataDir(dataDir);
    }
  }, 60_000);

  test("a missing, malformed or non-PostgreSQL --to is refused with exit 2 and one line that does not repeat the URL", async () => {
    const dataDir = tempDataDir();
    try {
      const usage = "usage: latchkey migrate-db --to postgres://user:password@host:5432/database\n";
      expect(await runCli(["migrate-db"], { DATA_DIR: dataDir })).toEqual({
        code: 2,
        stdout: "",
        stderr: `latchkey: migrate-db needs --to, the PostgreSQL database to copy into; ${usage}`,
      });
      expect(await runCli(["migrate-db", "--to", "mysql://admin:hunter2@db.example.test/auth"], { DATA_DIR: dataDir })).toEqual({
        code: 2,
        stdout: "",
        stderr: `latchkey: --to must be a postgres:// or postgresql:// URL, not mysql://; ${usage}`,
      });
      expect(await runCli(["migrate-db", "--to", "hunter2 at db"], { DATA_DIR: dataDir })).toEqual({ code: 2, stdout: "", stderr: `latchkey: --to is not a URL; ${usage}` });
      // A password with @ / # left as it is would be read in part as the host: refused before connecting (PGPASSWORD
      // or percent-encoding instead).
      expect(await runCli(["migrate-db", "--to", "postgres://latchkey:hunter2@db/x#y@127.0.0.1:5432/auth"], { DATA_DIR: dataDir })).toEqual({
        code: 2,
        stdout: "",
        stderr: `latchkey: --to is invalid: a character of its user or password (@ / # ? %) is not percent-encoded; encode it, or leave the password out of the URL and set PGPASSWORD; ${usage}`,
      });
    } finally {
      removeDataDir(dataDir);
    }
  });
});

describe("the copy's edges, in process", () => {
  /** An SQLite database of the current schema in a temporary folder, closed and removed after `run`. */
  async function withSource(run: (db: Db, path: string) => Promise<void>): Promise<void> {
    const dataDir = tempDataDir();
    const path = join(dataDir, "latchkey.db");
    const db = openDatabase(path);
    try {
      migrate(db);
      await run(db, path);
    } finally {
      db.$client.close();
      removeDataDir(dataDir);
    }
  }
  const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);

  test("thousands of rows in batches; a session listed before the session it was handed off from; the audit identity continues after SQLite's highest id ever", async () => {
    await withSource(async (db) => {
      const users = Array.from({ length: 2500 }, (_, i) => ({ id: `u${i}`, username: `user${i}`, passwordHash: "$argon2id$x", createdAt: at(i), updatedAt: at(i + 0.5) }));
      db.insert(sqliteSchema.users).values(users.slice(0, 1000)).run();
      db.insert(sqliteSchema.users).values(users.slice(1000, 2000)).run();
      db.insert(sqliteSchema.users).values(users.slice(2000)).run();
      // The child row gets the lowest rowid and its parent the highest, a whole batch later.
      const session = (id: string, parentId: string | null) => ({ id, userId: "u1", lastSeenAt: at(1), expiresAt: at(2), parentId, createdAt: at(3) });
      db.$client.exec("PRAGMA foreign_keys = OFF");
      db.insert(sqliteSchema.sessions).values(session("child", "parent")).run();
      db.insert(sqliteSchema.sessions)
        .values(Array.from({ length: 1200 }, (_, i) => session(`s${i}`, null)))
        .run();
      db.insert(sqliteSchema.sessions).values(session("parent", null)).run();
      db.$client.exec("PRAGMA foreign_keys = ON");
      // Ids 1-3 handed out, 3 deleted: PostgreSQL must not hand out 3 again.
      for (const event of ["a", "b", "c"]) db.insert(sqliteSchema.auditEvents).values({ event, createdAt: at(4) }).run();
      db.delete(sqliteSchema.auditEvents).where(eq(sqliteSchema.auditEvents.event, "c")).run();

      const url = await newDatabase();
      const result = await copyToPostgres(db, url, undefined);
      expect(result.secretCarried).toBe(false);
      expect(result.tables.find((table) => table.name === "users")!.rows).toBe(2500);
      expect(result.tables.find((table) => table.name === "sessions")!.rows).toBe(1202);
      // Referenced tables come first.
      const order = result.tables.map((table) => table.name);
      expect(order.indexOf("users")).toBeLessThan(order.indexOf("sessions"));
      expect(order.indexOf("sessions")).toBeLessThan(order.indexOf("refresh_tokens"));

      const target = drizzle({ client: postgres(url, { max: 1, onnotice: () => {} }), schema: pgSchema });
      try {
        expect(inOrder(await target.select().from(pgSchema.users))).toEqual(inOrder(db.select().from(sqliteSchema.users).all()));
        expect(inOrder(await target.select().from(pgSchema.sessions))).toEqual(inOrder(db.select().from(sqliteSchema.sessions).all()));
        const [child] = await target.select().from(pgSchema.sessions).where(eq(pgSchema.sessions.id, "child"));
        expect(child!.parentId).toBe("parent");
        const [next] = await target.insert(pgSchema.auditEvents).values({ event: "d" }).returning({ id: pgSchema.auditEvents.id });
        expect(next!.id).toBe(4);
      } finally {
        await target.$client.end();
      }
    });
  }, 60_000);

  test("a row PostgreSQL refuses (a NUL character in text) fails the copy and leaves the target empty: nothing half-copied", async () => {
    await withSource(async (db) => {
      db.insert(sqliteSchema.users).values({ id: "u1", username: "ada", passwordHash: "$argon2id$x" }).run();
      db.insert(sqliteSchema.trustedSignIns).values({ key: "bad\u0000key", expiresAt: at(1) }).run();
      const url = await newDatabase();
      let failure: unknown;
      await copyToPostgres(db, url, "a generated secret").catch((error) => (failure = error));
      // The reason, not drizzle's failed statement with its parameters (password hashes, the secret).
      expect((failure as Error).message).toBe('copying trusted_sign_ins failed, nothing was copied: invalid byte sequence for encoding "UTF8": 0x00');
      expect(Object.values(await targetCounts(url)).every((n) => n === 0)).toBe(true);
      // Once the row is fixed, the same target takes the copy.
      db.update(sqliteSchema.trustedSignIns).set({ key: "good key" }).run();
      const result = await copyToPostgres(db, url, "a generated secret");
      expect(result.tables.find((table) => table.name === "trusted_sign_ins")!.rows).toBe(1);
      expect(await targetCounts(url)).toMatchObject({ users: 1, trusted_sign_ins: 1, instance_secret: 1 });
    });
  }, 60_000);

  test("a live instance: the copy is the snapshot taken when it started; what the server writes meanwhile is not copied", async () => {
    await withSource(async (db, path) => {
      db.insert(sqliteSchema.users).values({ id: "u1", username: "ada", passwordHash: "$argon2id$x", roles: ["admin"] }).run();
      db.insert(sqliteSchema.sessions).values({ id: "s1", userId: "u1", lastSeenAt: at(1), expiresAt: at(2) }).run();
      const url = await newDatabase();
      // The test holds the lock copies take after fixing the snapshot: the copy waits there, in plain sight.
      const holder = postgres(url, { max: 2, onnotice: () => {} });
      const held = await holder.reserve();
      await held`select pg_advisory_lock(${COPY_LOCK})`;
      const copy = copyToPostgres(db, url, undefined);
      await waitFor(
        () => holder`select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`,
        (rows) => rows[0]!.n === 1,
        10_000,
      );
      // The server writes meanwhile: a new user, a deleted session, a changed row.
      const server = openDatabase(path);
      server.insert(sqliteSchema.users).values({ id: "u2", username: "bob", passwordHash: "$argon2id$y" }).run();
      server.delete(sqliteSchema.sessions).where(eq(sqliteSchema.sessions.id, "s1")).run();
      server.update(sqliteSchema.users).set({ roles: [] }).where(eq(sqliteSchema.users.id, "u1")).run();
      server.$client.close();
      await held`select pg_advisory_unlock(${COPY_LOCK})`;
      held.release();
      await holder.end();

      const result = await copy;
      expect(result.tables.filter((table) => table.rows > 0)).toEqual([
        { name: "users", rows: 1 },
        { name: "sessions", rows: 1 },
      ]);
      const target = drizzle({ client: postgres(url, { max: 1, onnotice: () => {} }), schema: pgSchema });
      try {
        expect((await target.select().from(pgSchema.users)).map((user) => [user.id, user.roles])).toEqual([["u1", ["admin"]]]);
        expect((await target.select().from(pgSchema.sessions)).map((session) => session.id)).toEqual(["s1"]);
      } finally {
        await target.$client.end();
      }
      // The source has moved on: those writes are what a move without loss avoids by stopping the server first.
      expect(db.select().from(sqliteSchema.users).all().map((user) => [user.id, user.roles])).toEqual([
        ["u1", []],
        ["u2", []],
      ]);
    });
  }, 60_000);
});
