/**
 * Issue 25's owed test: an account with one password and one passkey receives, at the same moment, the removal
 * of its password (DELETE /auth/password) and the delete of its only passkey. Exactly one may succeed, the other
 * is 409 last_sign_in_method, and the account keeps one way in.
 *
 * Honest by construction, not by luck: the test holds, on its own PostgreSQL connection, the row lock that the
 * first request's write needs (the users row for the password's UPDATE, the passkey row for its DELETE), waits
 * until pg_stat_activity shows that request's transaction blocked on exactly that write (so its check, read in
 * the same transaction, is done), then runs the second request to its end, and only then lets the first one write.
 * The first request decided on what it read before the second committed: only the rule being re-decided in the
 * write's SERIALIZABLE transaction (db/atomic.ts: the conflict aborts it with 40001, it runs again and reads the
 * committed state) makes it refuse. Planted bugs this fails on: the check moved out of either transaction, or the
 * transactions run at READ COMMITTED.
 *
 * PostgreSQL only: on SQLite the transaction's body runs synchronously inside BEGIN IMMEDIATE (db/atomic.ts), so
 * nothing, in this process or another (SQLite's single writer), can run between its check and its write: there is
 * no point at which a test could pause it without changing the code under test: the interleaving this test
 * forces cannot happen there. test/unit/ways-in-race.test.ts holds the removal in its one window on SQLite (the
 * password's verification, before its transaction).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { AUTH, Client, waitFor } from "../support/client";
import { SoftwareAuthenticator } from "../support/passkeys";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { removeDataDir, startServer, type RunningServer } from "../support/server";

const PASSWORD = "a long passphrase";
const ORIGIN = "http://localhost";

let cluster: TestPostgres;
let server: RunningServer;
let sql: postgres.Sql;

beforeAll(async () => {
  cluster = await startPostgres();
  const url = await cluster.createDatabase("ways_in_race");
  server = await startServer({ DATABASE_URL: url, ALLOW_REGISTRATION: "true", PUBLIC_URL: ORIGIN, RATE_LIMIT_IP_BURST: "1000" });
  sql = postgres(url, { max: 3, onnotice: () => {} });
}, 120_000);

afterAll(async () => {
  await sql?.end();
  if (server) {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  }
  await cluster?.stop();
});

let n = 0;
/** A signed-in account with its password and exactly one passkey. */
async function accountWithOneOfEach() {
  const client = new Client(server.url, "bearer", { origin: ORIGIN });
  const name = `race-${++n}`;
  expect((await client.register(name, PASSWORD)).status).toBe(201);
  const key = new SoftwareAuthenticator({ rpId: "localhost", origin: ORIGIN });
  const options = await client.request("POST", `${AUTH}/passkeys/register/options`);
  expect(options.status).toBe(200);
  const added = await client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: key.register(options.body) } });
  expect(added.status).toBe(201);
  const [user] = await sql<{ id: string }[]>`select id from users where username = ${name}`;
  return { client, name, key, userId: user!.id, passkeyId: added.body.id as string };
}

/**
 * Runs `first` while the test holds the row lock its write needs (`lock`), waits until its transaction is blocked
 * on `write` (a statement's start, as drizzle sends it), runs `second` to its end, then releases the lock.
 */
async function interleaved<A, B>(lock: string, lockParams: unknown[], write: string, first: () => Promise<A>, second: () => Promise<B>): Promise<[A, B]> {
  const held = await sql.reserve();
  try {
    await held`begin`;
    expect(await held.unsafe(lock, lockParams as never[])).toHaveLength(1);
    const firstDone = first();
    await waitFor(
      () => sql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like ${`${write}%`}`,
      (rows) => rows[0]!.n === 1,
      20_000,
    );
    const secondAnswer = await second();
    await held`rollback`;
    return [await firstDone, secondAnswer];
  } finally {
    held.release();
  }
}

async function waysIn(userId: string) {
  const [row] = await sql<{ password_hash: string | null; passkeys: number }[]>`
    select password_hash, (select count(*)::int from passkeys where user_id = ${userId}) as passkeys from users where id = ${userId}`;
  return { hasPassword: row!.password_hash !== null, passkeys: row!.passkeys };
}

describe("the password's removal and the only passkey's delete at the same moment: one succeeds, the other is 409 last_sign_in_method", () => {
  test("the removal checked first and is held before its write; the passkey's delete commits meanwhile: the removal is refused, the password stays", async () => {
    const { client, name, userId, passkeyId } = await accountWithOneOfEach();
    const [removal, deletion] = await interleaved(
      "select id from users where id = $1 for no key update",
      [userId],
      'update "users" set "password_hash"',
      () => client.request("DELETE", `${AUTH}/password`, { json: { current_password: PASSWORD } }),
      () => client.request("DELETE", `${AUTH}/passkeys/${passkeyId}`),
    );
    expect(deletion.status).toBe(204);
    expect(removal.status).toBe(409);
    expect(removal.body).toEqual({ error: "last_sign_in_method", message: expect.stringContaining("add a passkey") });
    expect(await waysIn(userId)).toEqual({ hasPassword: true, passkeys: 0 });
    // The way in that remains works.
    expect((await new Client(server.url, "bearer", { origin: ORIGIN }).login(name, PASSWORD)).status).toBe(200);
  }, 60_000);

  test("the passkey's delete checked first and is held before its write; the password's removal commits meanwhile: the delete is refused, the passkey stays", async () => {
    const { client, key, name, userId, passkeyId } = await accountWithOneOfEach();
    const [deletion, removal] = await interleaved(
      "select id from passkeys where id = $1 for update",
      [passkeyId],
      'delete from "passkeys"',
      () => client.request("DELETE", `${AUTH}/passkeys/${passkeyId}`),
      () => client.request("DELETE", `${AUTH}/password`, { json: { current_password: PASSWORD } }),
    );
    expect(removal.status).toBe(200);
    expect(deletion.status).toBe(409);
    expect(deletion.body).toEqual({ error: "last_sign_in_method", message: expect.stringContaining("only passkey") });
    expect(await waysIn(userId)).toEqual({ hasPassword: false, passkeys: 1 });
    // The way in that remains works.
    const signIn = new Client(server.url, "bearer", { origin: ORIGIN });
    const options = await signIn.request("POST", `${AUTH}/login/passkey/options`);
    expect((await signIn.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(options.body) } })).status).toBe(200);
    expect((await signIn.me()).body.user.username).toBe(name);
  }, 60_000);
});
