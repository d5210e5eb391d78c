/**
 * Refresh-token rotation (RFC 9700 §4.14.2), in-process with a mocked clock: each token is spent once for a
 * child derived from it; presented again within REFRESH_REUSE_INTERVAL while that child is live it answers the
 * same child; any other reuse revokes the whole session. Fast enough to run under mutation testing.
 */
import { afterEach, expect, setSystemTime, test } from "bun:test";
import { transaction } from "../../src/db/atomic";
import { migrate, openDatabase } from "../../src/db/client";
import { users } from "../../src/db/schema";
import { ApiError } from "../../src/errors";
import { createSessionService } from "../../src/modules/sessions/service";

const T0 = Date.parse("2026-03-01T10:00:00Z");
const GRACE_S = 10;
const TTL_S = 3600;
const client = { ip: "192.0.2.1", userAgent: "test" };

afterEach(() => setSystemTime());

async function setUp(grace = GRACE_S) {
  setSystemTime(new Date(T0));
  const db = openDatabase(":memory:");
  migrate(db);
  db.insert(users).values({ id: "u1", username: "someone", passwordHash: "unused" }).run();
  const sessions = createSessionService(db, { refreshTokenTtl: TTL_S, refreshReuseInterval: grace, refreshRotationKey: new Uint8Array(32).fill(9) });
  const opened = await sessions.create({ userId: "u1" }, client, ["pwd"]);
  const alive = () => db.$client.query("SELECT count(*) AS n FROM sessions WHERE id = ?").get(opened.sessionId) as { n: number };
  return { db, sessions, opened, alive };
}

const code = (promise: Promise<unknown>) => promise.then(() => "ok", (error: { code?: string }) => error.code);
const at = (ms: number) => setSystemTime(new Date(T0 + ms));

test("a rotation spends the token for a new one, and slides the session's expiry", async () => {
  const { db, sessions, opened } = await setUp();
  at(5000);
  const { principal, refreshToken } = await sessions.rotate(opened.refreshToken);
  expect(principal.sessionId).toBe(opened.sessionId);
  expect(refreshToken).not.toBe(opened.refreshToken);
  expect(refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
  const row = db.$client.query("SELECT expires_at AS expires, last_seen_at AS seen FROM sessions WHERE id = ?").get(opened.sessionId) as { expires: number; seen: number };
  expect(row).toEqual({ expires: T0 + 5000 + TTL_S * 1000, seen: T0 + 5000 });
  // The child rotates in turn, to another token.
  const next = await sessions.rotate(refreshToken);
  expect(next.refreshToken).not.toBe(refreshToken);
});

test("within the reuse interval a spent token answers its same child, up to the last millisecond", async () => {
  const { sessions, opened, alive } = await setUp();
  const first = await sessions.rotate(opened.refreshToken);
  at(GRACE_S * 1000);
  expect((await sessions.rotate(opened.refreshToken)).refreshToken).toBe(first.refreshToken);
  expect(alive().n).toBe(1);
});

test("after the reuse interval, a spent token revokes the session (refresh_token_reused) and its child stops working", async () => {
  const { sessions, opened, alive } = await setUp();
  const first = await sessions.rotate(opened.refreshToken);
  at(GRACE_S * 1000 + 1);
  expect(await code(sessions.rotate(opened.refreshToken))).toBe("refresh_token_reused");
  expect(alive().n).toBe(0);
  expect(await code(sessions.rotate(first.refreshToken))).toBe("invalid_refresh_token");
});

test("within the interval, a spent token whose child was spent too is reuse: the session ends", async () => {
  const { sessions, opened, alive } = await setUp();
  const first = await sessions.rotate(opened.refreshToken);
  await sessions.rotate(first.refreshToken);
  at(1000);
  expect(await code(sessions.rotate(opened.refreshToken))).toBe("refresh_token_reused");
  expect(alive().n).toBe(0);
});

test("REFRESH_REUSE_INTERVAL=0: any replay is reuse, even at once", async () => {
  const { sessions, opened, alive } = await setUp(0);
  await sessions.rotate(opened.refreshToken);
  expect(await code(sessions.rotate(opened.refreshToken))).toBe("refresh_token_reused");
  expect(alive().n).toBe(0);
});

test("an unknown token, an expired session's or a disabled user's is invalid_refresh_token and revokes nothing", async () => {
  const { db, sessions, opened, alive } = await setUp();
  expect(await code(sessions.rotate("not-a-token"))).toBe("invalid_refresh_token");
  at(TTL_S * 1000);
  expect(await code(sessions.rotate(opened.refreshToken))).toBe("invalid_refresh_token");
  expect(alive().n).toBe(1);
  at(TTL_S * 1000 - 1);
  db.$client.query("UPDATE users SET disabled = 1 WHERE id = 'u1'").run();
  expect(await code(sessions.rotate(opened.refreshToken))).toBe("invalid_refresh_token");
  db.$client.query("UPDATE users SET disabled = 0 WHERE id = 'u1'").run();
  expect(await code(sessions.rotate(opened.refreshToken))).toBe("ok");
});

test("a client's refresh token rotates only for that client; Latchkey's own only without one; refused before anything is spent", async () => {
  const { db, sessions, opened } = await setUp();
  const granted = await transaction(db, (tx) => sessions.opening(tx, { userId: "u1" }, client, { clientId: "wiki", authTime: T0, amr: ["pwd"] }));
  const spent = () => (db.$client.query("SELECT count(*) AS n FROM refresh_tokens WHERE spent_at IS NOT NULL").get() as { n: number }).n;
  // A client's token at /refresh (no client): invalid_token, saying where it works.
  const atRefresh = await sessions.rotate(granted.refreshToken).then(() => undefined, (error: ApiError) => error);
  expect(atRefresh).toBeInstanceOf(ApiError);
  expect(atRefresh!.toBody()).toMatchObject({ error: "invalid_token", message: "This refresh token was issued to an OpenID Connect client: it works only at /oidc/token, with that client's authentication." });
  // Another client's, or Latchkey's own token presented by a client: as if unknown.
  expect(await code(sessions.rotate(granted.refreshToken, "gitea"))).toBe("invalid_refresh_token");
  expect(await code(sessions.rotate(opened.refreshToken, "wiki"))).toBe("invalid_refresh_token");
  expect(spent()).toBe(0);
  // Each at its own door rotates.
  expect((await sessions.rotate(granted.refreshToken, "wiki")).principal).toMatchObject({ sessionId: granted.sessionId, clientId: "wiki" });
  expect((await sessions.rotate(opened.refreshToken)).principal).toMatchObject({ sessionId: opened.sessionId, clientId: null });
  expect(spent()).toBe(2);
});
