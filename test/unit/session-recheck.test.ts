import { expect, test } from "bun:test";
import { transaction } from "../../src/db/atomic";
import { migrate, openDatabase } from "../../src/db/client";
import { users } from "../../src/db/schema";
import { assertSessionLive, createSessionService } from "../../src/modules/sessions/service";

/**
 * assertSessionLive is the in-transaction re-check behind every session-authorised write (keys, password, second
 * factors, email change, admin changes). A mutation run showed no test notices it losing its expiry or its
 * disabled condition (disabling through the API also deletes the sessions, so the flag alone was never met):
 * each condition is pinned here on rows written as another process (or time) would leave them.
 */

async function setUp() {
  const db = openDatabase(":memory:");
  migrate(db);
  db.insert(users).values({ id: "u1", username: "someone", passwordHash: "unused", roles: ["admin"] }).run();
  const sessions = createSessionService(db, { refreshTokenTtl: 3600, refreshReuseInterval: 10, refreshRotationKey: new Uint8Array(32) });
  const { sessionId } = await sessions.create({ userId: "u1" }, { ip: "192.0.2.1", userAgent: "test" }, ["pwd"]);
  const check = (id: string, role?: string) => transaction(db, (tx) => assertSessionLive(tx, id, role));
  return { db, sessionId, check };
}

const ended = expect.objectContaining({ status: 401, code: "invalid_token" });

test("a live session of an enabled user passes, with a role it has", async () => {
  const { sessionId, check } = await setUp();
  await check(sessionId);
  await check(sessionId, "admin");
});

test("a session row past its expires_at is refused as ended", async () => {
  const { db, sessionId, check } = await setUp();
  db.$client.query("UPDATE sessions SET expires_at = ? WHERE id = ?").run(Date.now() - 1000, sessionId);
  await expect(check(sessionId)).rejects.toThrow(ended);
});

test("a disabled user's session is refused even while its row is still there", async () => {
  const { db, sessionId, check } = await setUp();
  db.$client.query("UPDATE users SET disabled = 1 WHERE id = 'u1'").run();
  await expect(check(sessionId)).rejects.toThrow(ended);
});

test("an unknown or deleted session is refused; a role the user lost is 403 forbidden", async () => {
  const { db, sessionId, check } = await setUp();
  await expect(check("no-such-session")).rejects.toThrow(ended);
  db.$client.query(`UPDATE users SET roles = '["family"]' WHERE id = 'u1'`).run();
  await expect(check(sessionId, "admin")).rejects.toThrow(expect.objectContaining({ status: 403, code: "forbidden" }));
  db.$client.query("DELETE FROM sessions WHERE id = ?").run(sessionId);
  await expect(check(sessionId)).rejects.toThrow(ended);
});
