/**
 * Issue 25's owed race, on SQLite, in-process: the removal of the password (DELETE /auth/password) and the delete
 * of the only passkey, interleaved at the one point where SQLite lets anything run between the removal's first
 * reading of the rule and its write: the verification of the current password (argon2id, awaited). There the test
 * holds the removal, deletes the passkey to its end, then lets the removal go on: its early check (made before
 * the hashing, so that a refusal costs nothing) has gone stale, and only the rule decided again in the write's
 * transaction refuses it. Fails when that re-check is planted out.
 *
 * The other order, and a pause inside either transaction, cannot happen on SQLite: a transaction's body runs
 * synchronously inside BEGIN IMMEDIATE (db/atomic.ts), so nothing can run between its check and its write. On
 * PostgreSQL, where transactions do interleave, test/postgres/ways-in-race.test.ts holds each one there.
 */
import { afterEach, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { passkeys, users } from "../../src/db/schema";
import { createPasswordHasher } from "../../src/lib/passwords";
import { deriveSecrets } from "../../src/secrets";
import { SoftwareAuthenticator } from "../support/passkeys";

const ORIGIN = "https://auth.example.com";
const AUTH = `${ORIGIN}/api/v1/auth`;
const PASSWORD = "correct horse battery staple";

const config = loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", PUBLIC_URL: ORIGIN });
const db = openDatabase(":memory:");
migrate(db);
const app = createApp(config, db, deriveSecrets("w".repeat(32)));

const verify = Bun.password.verify;
afterEach(() => {
  Bun.password.verify = verify;
});

async function call(method: string, url: string, token?: string, json?: unknown) {
  const headers: Record<string, string> = { origin: ORIGIN };
  if (token) headers.authorization = `Bearer ${token}`;
  if (json !== undefined) headers["content-type"] = "application/json";
  const response = await app.handle(new Request(url, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) }));
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

test("the password's removal, held while its password is verified, and the only passkey deleted meanwhile: the removal is refused (409 last_sign_in_method), the password stays", async () => {
  const hash = await createPasswordHasher(config.passwordHash).hash(PASSWORD);
  db.insert(users).values({ id: "u-ada", username: "ada", email: null, emailVerified: false, passwordHash: hash, roles: [] }).run();
  const signedIn = await call("POST", `${AUTH}/login`, undefined, { username: "ada", password: PASSWORD });
  expect(signedIn.status).toBe(200);
  const token = signedIn.body.access_token as string;
  const options = await call("POST", `${AUTH}/passkeys/register/options`, token);
  expect(options.status).toBe(200);
  const key = new SoftwareAuthenticator({ rpId: "auth.example.com", origin: ORIGIN });
  const added = await call("POST", `${AUTH}/passkeys/register/verify`, token, { credential: key.register(options.body) });
  expect(added.status).toBe(201);

  // The removal enters the verification of its password, after its early check, and waits there.
  let entered!: () => void;
  const inVerification = new Promise<void>((resolve) => (entered = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  Bun.password.verify = async (...args: Parameters<typeof verify>) => {
    entered();
    await released;
    return verify(...args);
  };
  const removal = call("DELETE", `${AUTH}/password`, token, { current_password: PASSWORD });
  await inVerification;
  const deletion = await call("DELETE", `${AUTH}/passkeys/${added.body.id}`, token);
  expect(deletion.status).toBe(204);
  release();

  const refused = await removal;
  expect(refused.status).toBe(409);
  expect(refused.body).toEqual({ error: "last_sign_in_method", message: expect.stringContaining("add a passkey") });
  expect(db.select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, "u-ada")).get()!.passwordHash).toBe(hash);
  expect(db.select().from(passkeys).where(eq(passkeys.userId, "u-ada")).all()).toEqual([]);
});
