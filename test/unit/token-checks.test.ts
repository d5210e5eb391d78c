import { expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { eq } from "drizzle-orm";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { sessions, users } from "../../src/db/schema";
import { deriveSecrets } from "../../src/secrets";

/**
 * Checks the mutation review found untested (issue 16): each test fails if its check is dropped from the code.
 * In process, with the server's real signing key.
 */

const SECRET = "k".repeat(32);
const PASSWORD = "correct horse battery staple";

function setUp(env: Record<string, string> = {}) {
  const db = openDatabase(":memory:");
  migrate(db);
  const app = createApp(loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", ALLOW_REGISTRATION: "true", ...env }), db, deriveSecrets(SECRET));
  const post = async (path: string, body: unknown) => {
    const response = await app.handle(new Request(`http://localhost${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }));
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  const validate = async (token: string) => {
    const response = await app.handle(new Request("http://localhost/api/v1/auth/validate", { headers: { authorization: `Bearer ${token}` } }));
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  const register = async (username: string) => {
    const reply = await post("/api/v1/auth/register", { username, password: PASSWORD });
    expect(reply.status).toBe(201);
    return reply.body as { access_token: string; refresh_token: string; user: { id: string } };
  };
  return { db, post, validate, register };
}

const part = (token: string, index: number) => JSON.parse(Buffer.from(token.split(".")[index]!, "base64url").toString());

/** Re-signs `token` with the server's own HS256 key after changing its claims: a valid signature, other claims. */
function resign(token: string, change: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${encode(part(token, 0))}.${encode({ ...part(token, 1), ...change })}`;
  return `${input}.${createHmac("sha256", SECRET).update(input).digest("base64url")}`;
}

test("a token signed with the real key whose sid is another user's session is refused (sub must match)", async () => {
  const { validate, register } = setUp();
  const alice = await register("alice");
  const bob = await register("bob");
  // Control: re-signing without a change is accepted, so the refusal below is the sub check's.
  expect((await validate(resign(bob.access_token, {}))).body.username).toBe("bob");
  const forged = resign(bob.access_token, { sub: alice.user.id });
  const reply = await validate(forged);
  expect(reply.status).toBe(401);
  expect(reply.body.error).toBe("invalid_token");
});

test("a session past its expires_at is refused while its access token is still unexpired", async () => {
  const { db, validate, register } = setUp({ ACCESS_TOKEN_TTL: "15m" });
  const alice = await register("alice");
  const sid = part(alice.access_token, 1).sid as string;
  expect(part(alice.access_token, 1).exp * 1000).toBeGreaterThan(Date.now() + 60_000);
  // Not yet looked up, so not cached: the next request reads the row.
  db.update(sessions).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(sessions.id, sid)).run();
  const reply = await validate(alice.access_token);
  expect(reply.status).toBe(401);
  expect(reply.body.error).toBe("invalid_token");
});

test("a disabled user's refresh token is not rotated: after re-enabling, the same token still works", async () => {
  // No grace window: had the refused refresh spent the token, using it again would be reuse and end the session.
  const { db, post, register } = setUp({ REFRESH_REUSE_INTERVAL: "0" });
  const alice = await register("alice");
  db.update(users).set({ disabled: true }).where(eq(users.id, alice.user.id)).run();
  const refused = await post("/api/v1/auth/refresh", { refresh_token: alice.refresh_token });
  expect(refused.status).toBe(401);
  expect(refused.body.error).toBe("invalid_refresh_token");
  db.update(users).set({ disabled: false }).where(eq(users.id, alice.user.id)).run();
  const again = await post("/api/v1/auth/refresh", { refresh_token: alice.refresh_token });
  expect(again.status).toBe(200);
  expect(again.body.user.username).toBe("alice");
});
