import { expect, test } from "bun:test";
import { migrate, openDatabase } from "../../src/db/client";
import { users } from "../../src/db/schema";
import { SPENT_TOKENS_KEPT } from "../../src/modules/sessions/rotation";
import { createSessionService, RefreshTokenReused } from "../../src/modules/sessions/service";

const client = { ip: "192.0.2.1", userAgent: "test" };

function setUp() {
  const db = openDatabase(":memory:");
  migrate(db);
  db.insert(users).values({ id: "u1", username: "someone", passwordHash: "unused" }).run();
  const settings = { refreshTokenTtl: 3600, refreshReuseInterval: 10, refreshRotationKey: new Uint8Array(32) };
  return { db, settings, sessions: createSessionService(db, settings) };
}

const lastSeenOf = (db: ReturnType<typeof setUp>["db"], sessionId: string) =>
  (db.$client.query("SELECT last_seen_at AS at FROM sessions WHERE id = ?").get(sessionId) as { at: number }).at;

test("the session cache stays bounded however many distinct sessions are checked", async () => {
  const { sessions } = setUp();
  const ids: string[] = [];
  for (let i = 0; i < 10_050; i++) ids.push((await sessions.create({ userId: "u1" }, client, ["pwd"])).sessionId);
  for (const id of ids) expect((await sessions.principal(id))?.userId).toBe("u1");
  expect(sessions.cachedSessions()).toBeLessThanOrEqual(10_000);
  expect(sessions.cachedSessions()).toBeGreaterThan(0);
});

test("a revoked session is refused at once, even while cached", async () => {
  const { sessions } = setUp();
  const { sessionId } = await sessions.create({ userId: "u1" }, client, ["pwd"]);
  expect((await sessions.principal(sessionId))?.sessionId).toBe(sessionId);
  await sessions.revoke(sessionId);
  expect(await sessions.principal(sessionId)).toBeUndefined();
});

test("last_seen_at is written when a session is used after more than a minute, and not sooner", async () => {
  const { db, settings, sessions } = setUp();
  const stale = (await sessions.create({ userId: "u1" }, client, ["pwd"])).sessionId;
  const recent = (await sessions.create({ userId: "u1" }, client, ["pwd"])).sessionId;
  const now = Date.now();
  db.$client.query("UPDATE sessions SET last_seen_at = ? WHERE id = ?").run(now - 120_000, stale);
  db.$client.query("UPDATE sessions SET last_seen_at = ? WHERE id = ?").run(now - 30_000, recent);

  // A fresh service: nothing cached, so both are read from the database.
  const fresh = createSessionService(db, settings);
  expect((await fresh.principal(stale))?.sessionId).toBe(stale);
  expect((await fresh.principal(recent))?.sessionId).toBe(recent);
  expect(lastSeenOf(db, stale)).toBeGreaterThanOrEqual(now);
  expect(lastSeenOf(db, recent)).toBe(now - 30_000);
});

test("spent refresh tokens are bounded per session, and a replay of a kept one still revokes the session", async () => {
  const { db, sessions } = setUp();
  const rowsOf = (sessionId: string) => (db.$client.query("SELECT count(*) AS n FROM refresh_tokens WHERE session_id = ?").get(sessionId) as { n: number }).n;
  const { sessionId, refreshToken } = await sessions.create({ userId: "u1" }, client, ["pwd"]);
  const chain = [refreshToken];
  for (let i = 0; i < 2000; i++) chain.push((await sessions.rotate(chain.at(-1)!)).refreshToken);
  // 2,001 tokens were issued; the live one and the newest SPENT_TOKENS_KEPT spent ones remain.
  expect(rowsOf(sessionId)).toBe(SPENT_TOKENS_KEPT + 1);
  // One pruned long ago is merely unknown: it grants nothing and ends nothing.
  await expect(sessions.rotate(chain[5]!)).rejects.toThrow(expect.objectContaining({ code: "invalid_refresh_token" }));
  expect((await sessions.principal(sessionId))?.sessionId).toBe(sessionId);
  // One spent 20 rotations ago is recognised: replaying it revokes the whole session (RFC 9700 §4.14.2).
  await expect(sessions.rotate(chain.at(-21)!)).rejects.toThrow(RefreshTokenReused);
  expect(await sessions.principal(sessionId)).toBeUndefined();
  expect(rowsOf(sessionId)).toBe(0);
});
