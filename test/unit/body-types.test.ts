import { beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { users } from "../../src/db/schema";
import { deriveSecrets } from "../../src/secrets";

/**
 * JSON bodies take JSON types only. Elysia's `t.Integer` accepts a numeric string ("3600", "1e3", "0x100") and
 * converts it; the body schemas must not, and a string "true" must not pass as a boolean either.
 */

const PASSWORD = "correct horse battery staple";

function setUp() {
  const db = openDatabase(":memory:");
  migrate(db);
  const app = createApp(loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", ALLOW_REGISTRATION: "true" }), db, deriveSecrets("k".repeat(32)));
  return { db, app };
}

type App = ReturnType<typeof setUp>["app"];

async function call(app: App, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await app.handle(
    new Request(`http://localhost${path}`, {
      method,
      headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("POST /api/v1/auth/keys expires_in", () => {
  let app: App;
  let token: string;
  beforeAll(async () => {
    ({ app } = setUp());
    const registered = await call(app, "POST", "/api/v1/auth/register", { username: "keyholder", password: PASSWORD });
    expect(registered.status).toBe(201);
    token = registered.body.access_token;
  });

  let n = 0;
  const create = (expires_in: unknown) => call(app, "POST", "/api/v1/auth/keys", { name: `key-${++n}`, expires_in }, bearer(token));

  for (const value of ["3600", "1e3", "0x100", " 3600", "", 3600.5, true, null, [3600], { seconds: 3600 }])
    test(`${JSON.stringify(value)} is 422 validation_failed naming expires_in`, async () => {
      const reply = await create(value);
      expect(reply.status).toBe(422);
      expect(reply.body.error).toBe("validation_failed");
      expect(reply.body.details.map((detail: { field: string }) => detail.field)).toContain("expires_in");
    });

  test("a JSON integer from 60 to 315360000 is taken as is", async () => {
    for (const seconds of [60, 3600, 315360000]) {
      const reply = await create(seconds);
      expect(reply.status).toBe(201);
      expect(Date.parse(reply.body.expires_at) - Date.parse(reply.body.created_at)).toBe(seconds * 1000);
    }
    expect((await call(app, "POST", "/api/v1/auth/keys", { name: "forever" }, bearer(token))).body.expires_at).toBeNull();
  });

  test("out of range is 422", async () => {
    for (const seconds of [59, 0, -60, 315360001]) {
      const reply = await create(seconds);
      expect({ seconds, status: reply.status, error: reply.body.error }).toEqual({ seconds, status: 422, error: "validation_failed" });
    }
  });
});

describe("admin bodies: booleans are JSON booleans", () => {
  let app: App;
  let admin: string;
  let targetId: string;
  beforeAll(async () => {
    const setup = setUp();
    app = setup.app;
    const first = await call(app, "POST", "/api/v1/auth/register", { username: "root", password: PASSWORD });
    expect(first.status).toBe(201);
    setup.db.update(users).set({ roles: ["admin"] }).where(eq(users.id, first.body.user.id)).run();
    // A new session reads the new role.
    admin = (await call(app, "POST", "/api/v1/auth/login", { username: "root", password: PASSWORD })).body.access_token;
    targetId = (await call(app, "POST", "/api/v1/auth/register", { username: "target", password: PASSWORD, email: "target@example.com" })).body.user.id;
  });

  for (const [field, value] of [
    ["disabled", "true"],
    ["disabled", "false"],
    ["disabled", 1],
    ["disabled", 0],
    ["email_verified", "true"],
    ["email_verified", "false"],
    ["email_verified", 1],
  ] as const)
    test(`PATCH ${field}: ${JSON.stringify(value)} is 422 and changes nothing`, async () => {
      const reply = await call(app, "PATCH", `/api/v1/admin/users/${targetId}`, { [field]: value }, bearer(admin));
      expect(reply.status).toBe(422);
      expect(reply.body.error).toBe("validation_failed");
      expect(reply.body.details.map((detail: { field: string }) => detail.field)).toContain(field);
      const user = (await call(app, "GET", `/api/v1/admin/users/${targetId}`, undefined, bearer(admin))).body;
      expect({ disabled: user.disabled, email_verified: user.email_verified }).toEqual({ disabled: false, email_verified: false });
    });

  test("PATCH with JSON booleans works", async () => {
    const reply = await call(app, "PATCH", `/api/v1/admin/users/${targetId}`, { email_verified: true }, bearer(admin));
    expect(reply.status).toBe(200);
    expect(reply.body.email_verified).toBe(true);
  });

  test('POST /users with email_verified "true" is 422; true is taken', async () => {
    const refused = await call(app, "POST", "/api/v1/admin/users", { username: "made", password: PASSWORD, email: "made@example.com", email_verified: "true" }, bearer(admin));
    expect(refused.status).toBe(422);
    expect(refused.body.details.map((detail: { field: string }) => detail.field)).toContain("email_verified");
    const created = await call(app, "POST", "/api/v1/admin/users", { username: "made", password: PASSWORD, email: "made@example.com", email_verified: true }, bearer(admin));
    expect(created.status).toBe(201);
    expect(created.body.email_verified).toBe(true);
  });
});

describe("POST /api/v1/auth/login: an empty field counts as absent", () => {
  let app: App;
  let userId: string;
  beforeAll(async () => {
    ({ app } = setUp());
    userId = (await call(app, "POST", "/api/v1/auth/register", { username: "alice", password: PASSWORD, email: "alice@example.com" })).body.user.id;
  });

  test('{"username": "", "email": "alice@example.com"} signs in by email', async () => {
    const reply = await call(app, "POST", "/api/v1/auth/login", { username: "", email: "alice@example.com", password: PASSWORD });
    expect(reply.status).toBe(200);
    expect(reply.body.user.id).toBe(userId);
  });

  test('{"username": "alice", "email": ""} signs in by username', async () => {
    const reply = await call(app, "POST", "/api/v1/auth/login", { username: "alice", email: "", password: PASSWORD });
    expect(reply.status).toBe(200);
    expect(reply.body.user.id).toBe(userId);
  });

  test("both empty, or the only one given empty, is 422 validation_failed", async () => {
    for (const body of [{ username: "", email: "" }, { username: "" }, { email: "" }, {}]) {
      const reply = await call(app, "POST", "/api/v1/auth/login", { ...body, password: PASSWORD });
      expect({ body, status: reply.status, error: reply.body.error }).toEqual({ body, status: 422, error: "validation_failed" });
    }
  });
});
