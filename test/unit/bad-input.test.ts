import { describe, expect, test } from "bun:test";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { MAX_JSON_DEPTH } from "../../src/http/body";
import { deriveSecrets } from "../../src/secrets";
import { expectControlCharactersRefused } from "../support/control-characters";
import { field } from "../../src/modules/pages/respond";

/** Bad input found by review (issue 16): deep JSON, and addresses that differ only by a trailing dot. */

const PASSWORD = "correct horse battery staple";

function setUp() {
  const db = openDatabase(":memory:");
  migrate(db);
  return createApp(loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", ALLOW_REGISTRATION: "true" }), db, deriveSecrets("k".repeat(32)));
}

async function post(app: ReturnType<typeof setUp>, path: string, body: string, contentType = "application/json") {
  const response = await app.handle(new Request(`http://localhost${path}`, { method: "POST", headers: { "content-type": contentType }, body }));
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** `{"username": [[[...]]]}`: the nesting sits inside a string field's value, as in the review's corpus. */
const nestedIn = (field: string, depth: number) => `{"${field}":${"[".repeat(depth)}${"]".repeat(depth)},"password":"x"}`;

describe("JSON nested deeper than the bound", () => {
  const app = setUp();
  for (const path of ["/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/refresh"]) {
    test(`${path}: 4,250 levels is 422 validation_failed naming the body, not a 500`, async () => {
      const reply = await post(app, path, nestedIn(path.endsWith("refresh") ? "refresh_token" : "username", 4250));
      expect(reply.status).toBe(422);
      expect(reply.body.error).toBe("validation_failed");
      expect(reply.body.details).toEqual([{ field: "body", message: `Nested deeper than ${MAX_JSON_DEPTH} levels.` }]);
    });
  }

  test("/token answers the OAuth2 error for it", async () => {
    const reply = await post(app, "/api/v1/auth/token", nestedIn("username", 4250));
    expect(reply.status).toBe(400);
    expect(reply.body.error).toBe("invalid_request");
  });

  test("brackets inside strings do not count, and the bound itself is still parsed and validated", async () => {
    const brackets = await post(app, "/api/v1/auth/login", JSON.stringify({ username: "[".repeat(5000), password: "{".repeat(500) }));
    expect(brackets.status).toBe(401);
    expect(brackets.body.error).toBe("invalid_credentials");
    const atBound = await post(app, "/api/v1/auth/login", nestedIn("username", MAX_JSON_DEPTH - 1));
    expect(atBound.status).toBe(422);
    expect((atBound.body.details as { field: string }[])[0]!.field).not.toBe("body");
  });
});

describe("email addresses with a trailing dot in the domain", () => {
  test("name the same account as without it", async () => {
    const app = setUp();
    const first = await post(app, "/api/v1/auth/register", JSON.stringify({ username: "dotless", password: PASSWORD, email: "a@example.com" }));
    expect(first.status).toBe(201);
    const dotted = await post(app, "/api/v1/auth/register", JSON.stringify({ username: "dotted", password: PASSWORD, email: "a@example.com." }));
    expect(dotted.status).toBe(409);
    expect(dotted.body.error).toBe("email_taken");
    const login = await post(app, "/api/v1/auth/login", JSON.stringify({ username: "A@Example.com.", password: PASSWORD }));
    expect(login.status).toBe(200);
    expect((login.body.user as { username: string }).username).toBe("dotless");
  });
});

describe("unknown body fields on management routes", () => {
  test("are 422 validation_failed naming them, after authentication; /login and /token stay lenient", async () => {
    const app = setUp();
    const call = async (method: string, path: string, body: unknown, token?: string) => {
      const response = await app.handle(
        new Request(`http://localhost${path}`, {
          method,
          headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify(body),
        }),
      );
      return { status: response.status, body: (await response.json()) as Record<string, any> };
    };
    const registered = await call("POST", "/api/v1/auth/register", { username: "owner", password: PASSWORD, remember_me: true });
    expect(registered.status).toBe(201);
    const token = registered.body.access_token as string;
    // Unauthenticated: 401 first, whatever the body.
    expect((await call("POST", "/api/v1/auth/keys", { name: "ci", scope: ["x"] })).status).toBe(401);
    const typo = await call("POST", "/api/v1/auth/keys", { name: "ci", scope: ["photos:read"] }, token);
    expect(typo.status).toBe(422);
    expect(typo.body.details).toEqual([{ field: "scope", message: "Is not a field this route takes." }]);
    const password = await call("POST", "/api/v1/auth/password", { current_password: PASSWORD, new_password: "another long passphrase", logout_others: true }, token);
    expect(password.status).toBe(422);
    expect(password.body.details[0].field).toBe("logout_others");
    // Nothing was created or changed by the refused requests.
    const keys = await app.handle(new Request("http://localhost/api/v1/auth/keys", { headers: { authorization: `Bearer ${token}` } }));
    expect(await keys.json()).toEqual([]);
    expect((await call("POST", "/api/v1/auth/login", { username: "owner", password: PASSWORD, remember_me: true })).status).toBe(200);
    expect((await call("POST", "/api/v1/auth/token", { grant_type: "password", username: "owner", password: PASSWORD, scope: "openid" })).status).toBe(200);
  });
});

describe("validation messages a person can act on", () => {
  test("a missing field is 'Is required.', an enum lists its values, and email: null on register means no email", async () => {
    const app = setUp();
    const missing = await post(app, "/api/v1/auth/register", JSON.stringify({ username: "someone" }));
    expect(missing.status).toBe(422);
    expect(missing.body.details).toEqual([{ field: "password", message: "Is required." }]);
    const registered = await post(app, "/api/v1/auth/register", JSON.stringify({ username: "someone", password: PASSWORD, email: null }));
    expect(registered.status).toBe(201);
    expect((registered.body.user as { email: unknown }).email).toBeNull();
    const token = registered.body.access_token as string;
    const response = await app.handle(new Request("http://localhost/api/v1/auth/logout?scope=everything", { method: "POST", headers: { authorization: `Bearer ${token}` } }));
    expect(response.status).toBe(422);
    expect(((await response.json()) as { details: unknown }).details).toEqual([{ field: "scope", message: 'Must be one of: "current", "others", "global".' }]);
  });
});

describe("control characters in stored strings (issue 22: a NUL was a 500 on PostgreSQL)", () => {
  test("every stored or looked-up string field refuses them: 422 naming the field (400 invalid_request at /token)", async () => {
    const db = openDatabase(":memory:");
    migrate(db);
    const app = createApp(loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", ALLOW_REGISTRATION: "true" }), db, deriveSecrets("k".repeat(32)));
    const fetcher = async (path: string, init: RequestInit) => {
      const response = await app.handle(new Request(`http://localhost${path}`, init));
      const text = await response.text();
      return { status: response.status, body: text.startsWith("{") ? JSON.parse(text) : text };
    };
    const register = async (username: string) =>
      (await fetcher("/api/v1/auth/register", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password: PASSWORD }) })).body;
    const admin = await register("boss");
    db.$client.run(`UPDATE users SET roles = '["admin"]' WHERE username = 'boss'`);
    const user = await register("member");
    await expectControlCharactersRefused(fetcher, { admin: admin.access_token, user: user.access_token, userId: user.user.id });
  });
});

describe("control characters outside the JSON API (issue 22)", () => {
  test("a page's form field holding one is no field at all; tabs and line breaks of free text stay", () => {
    expect(field({ login: "al\u0000ice" }, "login")).toBeUndefined();
    expect(field({ name: "nas\u001b[31m" }, "name")).toBeUndefined();
    expect(field({ metadata: '{\r\n\t"tier": "gold"\r\n}' }, "metadata")).toBe('{\r\n\t"tier": "gold"\r\n}');
  });

  test("an OpenID Connect authorization request with one is a 400 page, not a redirect or a 500", async () => {
    const app = setUp();
    const response = await app.handle(new Request(`http://localhost/oidc/authorize?client_id=app%00&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&scope=openid`));
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toStartWith("text/html");
    expect(await response.text()).toContain("holds a control character");
  });
});
