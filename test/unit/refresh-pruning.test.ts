import { expect, test } from "bun:test";
import { migrate, openDatabase } from "../../src/db/client";
import { users } from "../../src/db/schema";
import { SPENT_TOKENS_KEPT } from "../../src/modules/sessions/rotation";
import { createSessionService, RefreshTokenReused } from "../../src/modules/sessions/service";

/**
 * Pruning spent refresh tokens is per session: a busy session's rotations must not delete another session's
 * spent tokens, or a thief's replay of that other session's token would no longer revoke it (RFC 9700 §4.14.2).
 * A mutation run showed sessions.test.ts passes with the pruning's session filter removed.
 */

const client = { ip: "192.0.2.1", userAgent: "test" };

test("a busy session's pruning leaves every other session's spent tokens, so their replay still revokes", async () => {
  const db = openDatabase(":memory:");
  migrate(db);
  db.insert(users).values({ id: "u1", username: "someone", passwordHash: "unused" }).run();
  // No grace window: any replay of a spent token is reuse.
  const sessions = createSessionService(db, { refreshTokenTtl: 3600, refreshReuseInterval: 0, refreshRotationKey: new Uint8Array(32) });
  const rowsOf = (sessionId: string) => (db.$client.query("SELECT count(*) AS n FROM refresh_tokens WHERE session_id = ?").get(sessionId) as { n: number }).n;

  const quiet = await sessions.create({ userId: "u1" }, client, ["pwd"]);
  const quietChild = (await sessions.rotate(quiet.refreshToken)).refreshToken;
  expect(rowsOf(quiet.sessionId)).toBe(2);

  const busy = await sessions.create({ userId: "u1" }, client, ["pwd"]);
  let token = busy.refreshToken;
  for (let i = 0; i < SPENT_TOKENS_KEPT * 2; i++) token = (await sessions.rotate(token)).refreshToken;
  expect(rowsOf(busy.sessionId)).toBe(SPENT_TOKENS_KEPT + 1);
  // The quiet session still holds its spent token and its live one.
  expect(rowsOf(quiet.sessionId)).toBe(2);

  // A replay of the quiet session's first token is recognised and ends that session (and only that one).
  await expect(sessions.rotate(quiet.refreshToken)).rejects.toThrow(RefreshTokenReused);
  expect(await sessions.principal(quiet.sessionId)).toBeUndefined();
  await expect(sessions.rotate(quietChild)).rejects.toThrow(expect.objectContaining({ code: "invalid_refresh_token" }));
  expect((await sessions.principal(busy.sessionId))?.sessionId).toBe(busy.sessionId);
});
