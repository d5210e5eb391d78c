import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bearer, call } from "../support/http";
import { freePort, removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";
import { sqliteOnlyTest } from "../support/engine";

const PASSWORD = "a long passphrase";

async function addUser(dataDir: string, username: string, extra: string[] = []) {
  const result = await runCli(["user", "add", username, ...extra], { DATA_DIR: dataDir }, PASSWORD);
  expect(result.code).toBe(0);
}

async function signIn(server: RunningServer, username: string, password = PASSWORD) {
  const response = await call(server.url, "POST", "/api/v1/auth/login", { username, password });
  expect(response.status).toBe(200);
  return response.body as { access_token: string; refresh_token: string; user: { id: string } };
}

const validate = (server: RunningServer, token: string) => call(server.url, "GET", "/api/v1/auth/validate", undefined, bearer(token));
const withKey = (server: RunningServer, key: string) => call(server.url, "GET", "/api/v1/auth/validate", undefined, { "x-api-key": key });

async function createKey(server: RunningServer, token: string, name: string): Promise<string> {
  const response = await call(server.url, "POST", "/api/v1/auth/keys", { name }, bearer(token));
  expect(response.status).toBe(201);
  return response.body.api_key;
}

/** A CLI failure is exit 1 with exactly one line on stderr. */
function expectOneLineFailure(result: { code: number; stderr: string }, text: string) {
  expect(result.code).toBe(1);
  expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(result.stderr).toContain(text);
}

describe("admin API", () => {
  let server: RunningServer;
  let root: string;
  let member: string;
  const admin = (method: string, path: string, body?: unknown) => call(server.url, method, `/api/v1/admin${path}`, body, bearer(root));

  beforeAll(async () => {
    const dataDir = tempDataDir();
    await addUser(dataDir, "root", ["--admin"]);
    await addUser(dataDir, "member");
    server = await startServer({ RATE_LIMIT: "off" }, dataDir);
    root = (await signIn(server, "root")).access_token;
    member = (await signIn(server, "member")).access_token;
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  async function createUser(body: Record<string, unknown>) {
    const response = await admin("POST", "/users", { password: PASSWORD, ...body });
    expect(response.status).toBe(201);
    return response.body as Record<string, any> & { id: string };
  }

  test("only an admin session gets in: 401 without credentials, 403 forbidden for others, 403 session_required for an API key", async () => {
    const anonymous = await call(server.url, "GET", "/api/v1/admin/users");
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toBe("unauthorized");

    const asMember = (method: string, path: string, body?: unknown) => call(server.url, method, path, body, bearer(member));
    for (const [method, path, body] of [
      ["GET", "/api/v1/admin/users"],
      ["GET", "/api/v1/admin/users/some-id"],
      // The role is checked before the body: an invalid body still gets 403, not 422.
      ["POST", "/api/v1/admin/users", {}],
      ["PATCH", "/api/v1/admin/users/some-id", { roles: "not a list" }],
      ["DELETE", "/api/v1/admin/users/some-id"],
      ["GET", "/api/v1/admin/audit"],
    ] as const) {
      const response = await asMember(method, path, body);
      expect(response.status).toBe(403);
      expect(response.body).toEqual({ error: "forbidden", message: "This needs the admin role." });
    }

    const rootKey = await createKey(server, root, "admin-key");
    const byKey = await call(server.url, "GET", "/api/v1/admin/users", undefined, { "x-api-key": rootKey });
    expect(byKey.status).toBe(403);
    expect(byKey.body.error).toBe("session_required");
  });

  test("POST /users creates a user that can sign in; taken names, bad roles and weak passwords are refused", async () => {
    const created = await createUser({ username: "Carol", email: "Carol@Example.com", roles: ["family", "beta", "family"], email_verified: true });
    expect(created).toMatchObject({
      username: "carol",
      email: "carol@example.com",
      email_verified: true,
      roles: ["family", "beta"],
      disabled: false,
      metadata: {},
    });
    expect(created.updated_at).toBe(created.created_at);
    expect(created).not.toHaveProperty("password");
    expect(created).not.toHaveProperty("password_hash");
    const carol = await signIn(server, "carol");
    expect((await validate(server, carol.access_token)).body.roles).toEqual(["family", "beta"]);

    const sameName = await admin("POST", "/users", { username: "carol", password: PASSWORD });
    expect(sameName.status).toBe(409);
    expect(sameName.body.error).toBe("username_taken");
    const sameEmail = await admin("POST", "/users", { username: "carol2", password: PASSWORD, email: "carol@example.com" });
    expect(sameEmail.status).toBe(409);
    expect(sameEmail.body.error).toBe("email_taken");
    const badRole = await admin("POST", "/users", { username: "dave", password: PASSWORD, roles: ["Admin!"] });
    expect(badRole.status).toBe(422);
    expect(badRole.body.error).toBe("validation_failed");
    expect(badRole.body.details.map((detail: { field: string }) => detail.field)).toEqual(["roles"]);
    const weak = await admin("POST", "/users", { username: "dave", password: "password123" });
    expect(weak.status).toBe(422);
    expect(weak.body.error).toBe("weak_password");
    const missing = await admin("POST", "/users", { username: "dave" });
    expect(missing.status).toBe(422);
    expect(missing.body.error).toBe("validation_failed");
    expect(JSON.stringify(weak.body)).not.toContain("password123");
    // Without an email there is nothing to be verified.
    expect((await createUser({ username: "no-mail", email_verified: true })).email_verified).toBe(false);
  });

  test("GET /users/:id returns the admin view; an unknown id is 404 user_not_found", async () => {
    const created = await createUser({ username: "erin" });
    const found = await admin("GET", `/users/${created.id}`);
    expect(found.status).toBe(200);
    expect(found.body).toEqual(created);
    const missing = await admin("GET", "/users/00000000-0000-7000-8000-000000000000");
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: "user_not_found", message: "No such user." });
  });

  test("GET /users searches usernames and emails and pages with an opaque cursor", async () => {
    const ids: string[] = [];
    for (let n = 1; n <= 5; n++) ids.push((await createUser({ username: `pager-${n}`, email: `p${n}@list.example` })).id);

    const seen: string[] = [];
    let cursor: string | null = null;
    const sizes: number[] = [];
    do {
      const page: { status: number; body: any } = await admin("GET", `/users?query=pager-&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status).toBe(200);
      sizes.push(page.body.users.length);
      seen.push(...page.body.users.map((user: { id: string }) => user.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(sizes).toEqual([2, 2, 1]);
    expect(seen).toEqual(ids);

    const byEmail = await admin("GET", "/users?query=LIST.EXAMPLE");
    expect(byEmail.body.users.map((user: { username: string }) => user.username)).toEqual(["pager-1", "pager-2", "pager-3", "pager-4", "pager-5"]);
    expect(byEmail.body.next_cursor).toBeNull();
    expect((await admin("GET", "/users?query=p3%40")).body.users.map((user: { id: string }) => user.id)).toEqual([ids[2]]);
    expect((await admin("GET", "/users?query=nobody-like-this")).body).toEqual({ users: [], next_cursor: null });

    const everyone = await admin("GET", "/users");
    expect(everyone.body.users[0].username).toBe("root");
    expect(everyone.body.users.map((user: { username: string }) => user.username)).toContain("member");

    for (const limit of ["0", "201", "ten", "2.5", "-1"]) {
      const bad = await admin("GET", `/users?limit=${limit}`);
      expect(bad.status).toBe(422);
      expect(bad.body).toEqual({
        error: "validation_failed",
        message: "The request is not valid.",
        details: [{ field: "limit", message: "Must be a whole number from 1 to 200." }],
      });
    }
    expect((await admin("GET", "/users?limit=200")).status).toBe(200);
    for (const cursor of ["zzz", "1", `${ids[0]}'--`]) {
      const bad = await admin("GET", `/users?cursor=${encodeURIComponent(cursor)}`);
      expect(bad.status).toBe(422);
      expect(bad.body.details).toEqual([{ field: "cursor", message: "Must be a next_cursor from a previous page." }]);
    }
  });

  test("PATCH /users/:id changes roles, email, email_verified and metadata, and validates each", async () => {
    const user = await createUser({ username: "frida", email: "frida@example.com" });
    const patch = (body: unknown) => admin("PATCH", `/users/${user.id}`, body);

    const roles = await patch({ roles: ["family", "beta", "family"] });
    expect(roles.status).toBe(200);
    expect(roles.body.roles).toEqual(["family", "beta"]);
    expect(Date.parse(roles.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(user.updated_at));

    expect((await patch({ email_verified: true })).body.email_verified).toBe(true);
    // A new address is unverified unless the same request says otherwise.
    const moved = await patch({ email: "Frida@New.Example" });
    expect(moved.body).toMatchObject({ email: "frida@new.example", email_verified: false });
    expect((await patch({ email: "frida@third.example", email_verified: true })).body).toMatchObject({ email: "frida@third.example", email_verified: true });
    const cleared = await patch({ email: null });
    expect(cleared.body).toMatchObject({ email: null, email_verified: false });

    const metadata = await patch({ metadata: { tier: "pro", seats: 3, flags: { beta: true } } });
    expect(metadata.body.metadata).toEqual({ tier: "pro", seats: 3, flags: { beta: true } });
    expect((await patch({})).body).toEqual(metadata.body);

    const taken = await patch({ email: "carol@example.com" });
    expect(taken.status).toBe(409);
    expect(taken.body.error).toBe("email_taken");
    for (const [body, field] of [
      [{ roles: ["UPPER"] }, "roles"],
      [{ roles: ["x".repeat(33)] }, "roles"],
      [{ email: "not-an-email" }, "email"],
      [{ email: "frida@example.com\u0000" }, "email"],
      [{ email: "fri\u200bda@example.com" }, "email"],
      [{ metadata: { blob: "x".repeat(4100) } }, "metadata"],
      [{ metadata: [1, 2, 3] }, "metadata"],
      [{ metadata: "pro" }, "metadata"],
      [{ metadata: null }, "metadata"],
      [{ disabled: "yes" }, "disabled"],
    ] as const) {
      const response = await patch(body);
      expect(response.status).toBe(422);
      expect(response.body.error).toBe("validation_failed");
      expect(response.body.details[0].field).toBe(field);
    }
    // A body that is not a JSON object is refused whole, not read as an empty patch.
    for (const raw of ["[]", '[{"disabled":true}]', '"text"', "123", "true", "null"]) {
      const response = await fetch(`${server.url}/api/v1/admin/users/${user.id}`, {
        method: "PATCH",
        headers: { ...bearer(root), "content-type": "application/json" },
        body: raw,
      });
      expect({ raw, status: response.status }).toEqual({ raw, status: 422 });
      expect(((await response.json()) as { error: string }).error).toBe("validation_failed");
    }
    // Nothing of the refused patches was applied.
    expect((await admin("GET", `/users/${user.id}`)).body).toEqual(metadata.body);

    const unknown = await admin("PATCH", "/users/00000000-0000-7000-8000-000000000000", { disabled: true });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe("user_not_found");
  });

  test("metadata up to 4 KiB is returned by /validate, for a session and for an API key", async () => {
    const user = await createUser({ username: "gus" });
    const session = await signIn(server, "gus");
    const filler = "x".repeat(4096 - JSON.stringify({ tier: "gold", blob: "" }).length);
    const metadata = { tier: "gold", blob: filler };
    expect(Buffer.byteLength(JSON.stringify(metadata))).toBe(4096);
    expect((await admin("PATCH", `/users/${user.id}`, { metadata })).status).toBe(200);
    const tooBig = await admin("PATCH", `/users/${user.id}`, { metadata: { ...metadata, blob: `${filler}x` } });
    expect(tooBig.status).toBe(422);
    expect(tooBig.body.details).toEqual([{ field: "metadata", message: "Must be at most 4096 bytes as JSON." }]);

    const bySession = await validate(server, session.access_token);
    expect(bySession.status).toBe(200);
    expect(bySession.body.metadata).toEqual(metadata);
    const key = await createKey(server, session.access_token, "gus-key");
    expect((await withKey(server, key)).body.metadata).toEqual(metadata);
    // API keys are looked up on every request: a change shows on the very next one.
    expect((await admin("PATCH", `/users/${user.id}`, { metadata: { tier: "free" } })).status).toBe(200);
    expect((await withKey(server, key)).body.metadata).toEqual({ tier: "free" });
  });

  test("disabling a user refuses its live access token on the very next request, ends its sessions and deletes its keys", async () => {
    const user = await createUser({ username: "hank" });
    const session = await signIn(server, "hank");
    const key = await createKey(server, session.access_token, "hank-key");
    // Warm the server's session cache: disabling must clear it, not wait for it to expire.
    expect((await validate(server, session.access_token)).status).toBe(200);
    expect((await withKey(server, key)).status).toBe(200);

    const disabled = await admin("PATCH", `/users/${user.id}`, { disabled: true });
    expect(disabled.status).toBe(200);
    expect(disabled.body.disabled).toBe(true);

    const refused = await validate(server, session.access_token);
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe("invalid_token");
    const refresh = await call(server.url, "POST", "/api/v1/auth/refresh", { refresh_token: session.refresh_token });
    expect(refresh.status).toBe(401);
    expect(refresh.body.error).toBe("invalid_refresh_token");
    const byKey = await withKey(server, key);
    expect(byKey.status).toBe(401);
    expect(byKey.body.error).toBe("invalid_api_key");
    const login = await call(server.url, "POST", "/api/v1/auth/login", { username: "hank", password: PASSWORD });
    expect(login.status).toBe(403);
    expect(login.body.error).toBe("account_disabled");

    // Enabling again: the user signs in anew; the ended session and the deleted key stay gone.
    expect((await admin("PATCH", `/users/${user.id}`, { disabled: false })).body.disabled).toBe(false);
    const again = await signIn(server, "hank");
    expect((await validate(server, again.access_token)).status).toBe(200);
    expect((await validate(server, session.access_token)).status).toBe(401);
    expect((await withKey(server, key)).status).toBe(401);
    const keys = await call(server.url, "GET", "/api/v1/auth/keys", undefined, { authorization: `Bearer ${again.access_token}` });
    expect(keys.status).toBe(200);
    expect(keys.body).toEqual([]);
    const trail = await admin("GET", `/audit?user=${user.id}&event=admin_user_updated`);
    expect(trail.body.events.map((event: { detail: unknown }) => event.detail)).toEqual([
      expect.objectContaining({ changed: ["disabled"], disabled: false }),
      expect.objectContaining({ changed: ["disabled"], disabled: true, sessions_ended: 1, api_keys_deleted: 1 }),
    ]);
  });

  test("DELETE /users/:id removes the user with its sessions and keys", async () => {
    const user = await createUser({ username: "ivy", email: "ivy@example.com" });
    const session = await signIn(server, "ivy");
    const key = await createKey(server, session.access_token, "ivy-key");
    expect((await validate(server, session.access_token)).status).toBe(200);

    const deleted = await admin("DELETE", `/users/${user.id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.body).toBeUndefined();
    expect((await validate(server, session.access_token)).status).toBe(401);
    expect((await withKey(server, key)).status).toBe(401);
    expect((await admin("GET", `/users/${user.id}`)).status).toBe(404);
    const again = await admin("DELETE", `/users/${user.id}`);
    expect(again.status).toBe(404);
    expect(again.body.error).toBe("user_not_found");
    const login = await call(server.url, "POST", "/api/v1/auth/login", { username: "ivy", password: PASSWORD });
    expect(login.status).toBe(401);
    // The name and the address are free again.
    expect((await createUser({ username: "ivy", email: "ivy@example.com" })).id).not.toBe(user.id);
  });

  test("admin actions are audited (who, what, from where; never a password) and listed by /admin/audit and /auth/events", async () => {
    const user = await createUser({ username: "jade", roles: ["family"] });
    const session = await signIn(server, "jade");
    await admin("PATCH", `/users/${user.id}`, { roles: ["family", "beta"], metadata: { tier: "pro" } });
    await admin("PATCH", `/users/${user.id}`, { disabled: true });
    await admin("PATCH", `/users/${user.id}`, { disabled: false });
    const rootId = (await validate(server, root)).body.user_id;

    const trail = await admin("GET", `/audit?user=${user.id}`);
    expect(trail.status).toBe(200);
    expect(trail.body.events.map((event: { event: string }) => event.event)).toEqual([
      "admin_user_updated",
      "admin_user_updated",
      "admin_user_updated",
      "login_succeeded",
      "admin_user_created",
    ]);
    const [enabled, disabled, changed, , created] = trail.body.events;
    expect(created).toMatchObject({ user_id: user.id, ip: "127.0.0.1", detail: { actor_id: rootId, actor: "root", username: "jade", roles: ["family"] } });
    expect(changed.detail).toEqual({ actor_id: rootId, actor: "root", username: "jade", changed: ["roles", "metadata"], roles: ["family", "beta"] });
    expect(disabled.detail).toMatchObject({ changed: ["disabled"], disabled: true, sessions_ended: 1 });
    expect(enabled.detail).toMatchObject({ changed: ["disabled"], disabled: false });
    expect(JSON.stringify(trail.body)).not.toContain(PASSWORD);
    expect(await server.waitForOutput('"event":"admin_user_updated"')).not.toContain(PASSWORD);

    // The same trail by username, filtered by event, one event per page.
    const pages: number[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: any } = await admin("GET", `/audit?user=jade&event=admin_user_updated&limit=1${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status).toBe(200);
      pages.push(...page.body.events.map((event: { id: number }) => event.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(pages).toEqual([enabled.id, disabled.id, changed.id]);
    const badCursor = await admin("GET", "/audit?cursor=abc");
    expect(badCursor.status).toBe(422);
    expect(badCursor.body.details).toEqual([{ field: "cursor", message: "Must be a next_cursor from a previous page." }]);

    // Deleting keeps the trail, findable by id.
    await admin("DELETE", `/users/${user.id}`);
    expect((await admin("GET", `/audit?user=${user.id}&event=admin_user_deleted`)).body.events).toHaveLength(1);

    // A user sees their own events only, and an admin's change without the admin's address.
    const other = await createUser({ username: "kim" });
    const kim = await signIn(server, "kim");
    await admin("PATCH", `/users/${other.id}`, { roles: ["beta"] });
    const own = await call(server.url, "GET", "/api/v1/auth/events", undefined, bearer(kim.access_token));
    expect(own.status).toBe(200);
    expect(own.body.events.map((event: { event: string }) => event.event)).toEqual(["admin_user_updated", "login_succeeded", "admin_user_created"]);
    expect(own.body.events.every((event: { user_id: string }) => event.user_id === other.id)).toBe(true);
    expect(own.body.events[0]).toMatchObject({ ip: null, user_agent: null, detail: { actor: "root", roles: ["beta"] } });
    expect(own.body.events[1].ip).toBe("127.0.0.1");
    const ownLogins = await call(server.url, "GET", "/api/v1/auth/events?event=login_succeeded", undefined, bearer(kim.access_token));
    expect(ownLogins.body.events).toHaveLength(1);
    expect((await call(server.url, "GET", "/api/v1/auth/events")).status).toBe(401);
    const kimKey = await createKey(server, kim.access_token, "kim-key");
    const byKey = await call(server.url, "GET", "/api/v1/auth/events", undefined, { "x-api-key": kimKey });
    expect(byKey.status).toBe(403);
    expect(byKey.body.error).toBe("session_required");
    // jade's ended session cannot read anything any more.
    expect((await call(server.url, "GET", "/api/v1/auth/events", undefined, bearer(session.access_token))).status).toBe(401);
  });

  test("/docs/json describes every admin and audit route", async () => {
    const spec = (await call(server.url, "GET", "/docs/json")).body;
    const routes: [string, string][] = [
      ["/api/v1/admin/users", "get"],
      ["/api/v1/admin/users", "post"],
      ["/api/v1/admin/users/{id}", "get"],
      ["/api/v1/admin/users/{id}", "patch"],
      ["/api/v1/admin/users/{id}", "delete"],
      ["/api/v1/admin/audit", "get"],
      ["/api/v1/auth/events", "get"],
    ];
    for (const [path, method] of routes) {
      const operation = spec.paths[path]?.[method];
      expect(operation?.summary).toBeString();
      expect(Object.keys(operation.responses)).toContain("403");
    }
    expect(spec.paths["/api/v1/admin/users"].get.responses["200"].content["application/json"].schema.properties).toHaveProperty("next_cursor");
  });
});

describe("the last enabled admin", () => {
  let server: RunningServer;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    const dataDir = tempDataDir();
    await addUser(dataDir, "root", ["--admin"]);
    await addUser(dataDir, "deputy");
    // A disabled admin does not count as one.
    await addUser(dataDir, "retired", ["--admin"]);
    expect((await runCli(["user", "disable", "retired"], { DATA_DIR: dataDir })).code).toBe(0);
    server = await startServer({ RATE_LIMIT: "off" }, dataDir);
    const token = (await signIn(server, "root")).access_token;
    for (const user of (await call(server.url, "GET", "/api/v1/admin/users", undefined, bearer(token))).body.users) ids[user.username] = user.id;
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("cannot be disabled, demoted or deleted (409 last_admin) until another admin exists", async () => {
    const root = (await signIn(server, "root")).access_token;
    const asRoot = (method: string, path: string, body?: unknown) => call(server.url, method, `/api/v1/admin${path}`, body, bearer(root));

    for (const [method, body] of [
      ["PATCH", { disabled: true }],
      ["PATCH", { roles: ["family"] }],
      ["PATCH", { roles: [] }],
      ["PATCH", { roles: ["family"], metadata: { tier: "pro" } }],
      ["DELETE", undefined],
    ] as const) {
      const response = await asRoot(method, `/users/${ids.root}`, body);
      expect(response.status).toBe(409);
      expect(response.body.error).toBe("last_admin");
    }
    const unchanged = await asRoot("GET", `/users/${ids.root}`);
    expect(unchanged.body).toMatchObject({ roles: ["admin"], disabled: false, metadata: {} });
    // Changes that keep the admin role are fine.
    expect((await asRoot("PATCH", `/users/${ids.root}`, { roles: ["admin", "family"] })).status).toBe(200);

    // With a second enabled admin the first may step down; then the second is the last one.
    expect((await asRoot("PATCH", `/users/${ids.deputy}`, { roles: ["admin"] })).status).toBe(200);
    expect((await asRoot("PATCH", `/users/${ids.root}`, { roles: ["family"] })).body.roles).toEqual(["family"]);
    const deputy = (await signIn(server, "deputy")).access_token;
    const asDeputy = (method: string, path: string, body?: unknown) => call(server.url, method, `/api/v1/admin${path}`, body, bearer(deputy));
    expect((await asDeputy("PATCH", `/users/${ids.deputy}`, { disabled: true })).body.error).toBe("last_admin");
    expect((await asDeputy("DELETE", `/users/${ids.deputy}`)).body.error).toBe("last_admin");
    // Re-enabling the retired admin makes the deputy removable.
    expect((await asDeputy("PATCH", `/users/${ids.retired}`, { disabled: false })).status).toBe(200);
    expect((await asDeputy("DELETE", `/users/${ids.deputy}`)).status).toBe(204);
  });
});

describe("first-start admin from ADMIN_USERNAME and ADMIN_PASSWORD_FILE", () => {
  test("creates the admin once, with the file's password minus its trailing newline", async () => {
    const dataDir = tempDataDir();
    const passwordFile = join(dataDir, "admin-password");
    writeFileSync(passwordFile, "bootstrap passphrase\n");
    const env = { ADMIN_USERNAME: "Boss", ADMIN_PASSWORD_FILE: passwordFile, RATE_LIMIT: "off" };
    let server = await startServer(env, dataDir);
    try {
      expect(server.output()).toContain("created admin user Boss from ADMIN_USERNAME and ADMIN_PASSWORD_FILE");
      const session = await signIn(server, "boss", "bootstrap passphrase");
      expect((await validate(server, session.access_token)).body.roles).toEqual(["admin"]);
      const listed = await call(server.url, "GET", "/api/v1/admin/users", undefined, bearer(session.access_token));
      expect(listed.status).toBe(200);
      expect(listed.body.users.map((user: { username: string }) => user.username)).toEqual(["boss"]);
      const trail = await call(server.url, "GET", "/api/v1/admin/audit?event=admin_user_created", undefined, bearer(session.access_token));
      expect(trail.body.events[0].detail).toEqual({ via: "ADMIN_USERNAME", username: "boss", roles: ["admin"] });
    } finally {
      expect(await server.stop()).toBe(0);
    }

    // An admin exists now: the file is not read again, and may be gone.
    writeFileSync(passwordFile, "another passphrase entirely");
    server = await startServer(env, dataDir);
    try {
      expect(server.output()).not.toContain("created admin user");
      expect((await call(server.url, "POST", "/api/v1/auth/login", { username: "boss", password: "another passphrase entirely" })).status).toBe(401);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    removeDataDir(dataDir);
  });

  test("a missing password file stops the start with exit 2 and one line naming ADMIN_PASSWORD_FILE", async () => {
    const dataDir = tempDataDir();
    const result = await runCli(["serve"], { DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: String(freePort()), ADMIN_USERNAME: "boss", ADMIN_PASSWORD_FILE: join(dataDir, "absent") });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain("ADMIN_PASSWORD_FILE");
    expect(result.stderr).toContain("does not exist");
    removeDataDir(dataDir);
  });

  test("an existing non-admin user of that name is not promoted: exit 2, the user unchanged", async () => {
    const dataDir = tempDataDir();
    await addUser(dataDir, "boss");
    const passwordFile = join(dataDir, "admin-password");
    writeFileSync(passwordFile, "bootstrap passphrase\n");
    const result = await runCli(["serve"], { DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: String(freePort()), ADMIN_USERNAME: "boss", ADMIN_PASSWORD_FILE: passwordFile });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain('ADMIN_USERNAME="boss" names an existing user that is not an enabled admin');
    const list = await runCli(["user", "list"], { DATA_DIR: dataDir });
    expect(list.stdout).toMatch(/^boss +- +- +no /m);
    removeDataDir(dataDir);
  });

  test("a weak password in the file stops the start with exit 2", async () => {
    const dataDir = tempDataDir();
    const passwordFile = join(dataDir, "admin-password");
    writeFileSync(passwordFile, "password123\n");
    const result = await runCli(["serve"], { DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: String(freePort()), ADMIN_USERNAME: "boss", ADMIN_PASSWORD_FILE: passwordFile });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain("ADMIN_PASSWORD_FILE: cannot create the admin");
    expect(result.stderr).not.toContain("password123");
    removeDataDir(dataDir);
  });
});

describe("CLI: user list, disable, enable, roles; backup", () => {
  let server: RunningServer;
  const cli = (...args: string[]) => runCli(args, { DATA_DIR: server.dataDir });

  beforeAll(async () => {
    const dataDir = tempDataDir();
    await addUser(dataDir, "root", ["--admin"]);
    await addUser(dataDir, "alice", ["--email", "alice@example.com"]);
    server = await startServer({ RATE_LIMIT: "off" }, dataDir);
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("user list prints a table of every user", async () => {
    const result = await cli("user", "list");
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^USERNAME +EMAIL +ROLES +DISABLED +CREATED$/);
    expect(lines[1]).toMatch(/^root +- +admin +no +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(lines[2]).toMatch(/^alice +alice@example\.com +- +no +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(lines).toHaveLength(3);
  });

  test("user disable ends the user's sessions and deletes its keys while the server runs; user enable lets it sign in again", async () => {
    const session = await signIn(server, "alice");
    const key = await createKey(server, session.access_token, "alice-key");
    expect((await validate(server, session.access_token)).status).toBe(200);

    const disabled = await cli("user", "disable", "alice");
    expect(disabled.code).toBe(0);
    expect(disabled.stdout).toBe("disabled alice; 1 session(s) ended, 1 API key(s) deleted\n");
    expect((await withKey(server, key)).status).toBe(401);
    // The session row is gone at once; the server's 1-second session cache then lets go of the access token.
    const refresh = await call(server.url, "POST", "/api/v1/auth/refresh", { refresh_token: session.refresh_token });
    expect(refresh.status).toBe(401);
    let status = 200;
    for (let attempt = 0; attempt < 100 && status !== 401; attempt++) {
      if (attempt > 0) await Bun.sleep(50);
      status = (await validate(server, session.access_token)).status;
    }
    expect(status).toBe(401);
    expect((await call(server.url, "POST", "/api/v1/auth/login", { username: "alice", password: PASSWORD })).body.error).toBe("account_disabled");
    expect((await cli("user", "list")).stdout).toMatch(/^alice .* yes /m);

    const enabled = await cli("user", "enable", "alice");
    expect(enabled.code).toBe(0);
    expect(enabled.stdout).toBe("enabled alice\n");
    await signIn(server, "alice");
  });

  test("user roles replaces the roles, under the same last-admin rule as the API", async () => {
    const granted = await cli("user", "roles", "alice", "admin,family");
    expect(granted.code).toBe(0);
    expect(granted.stdout).toBe("roles of alice: admin,family\n");
    const alice = await signIn(server, "alice");
    expect((await validate(server, alice.access_token)).body.roles).toEqual(["admin", "family"]);

    const demoted = await cli("user", "roles", "root", "");
    expect(demoted.code).toBe(0);
    expect(demoted.stdout).toBe("roles of root: (none)\n");

    expectOneLineFailure(await cli("user", "roles", "alice", "family"), "last enabled admin");
    expectOneLineFailure(await cli("user", "disable", "alice"), "last enabled admin");
    expectOneLineFailure(await cli("user", "roles", "alice", "Bad!"), "roles: Each role must be 1-32 characters");
    const still = await validate(server, (await signIn(server, "alice")).access_token);
    expect(still.body.roles).toEqual(["admin", "family"]);
  });

  test("usage errors and unknown users exit 1 with one line", async () => {
    expectOneLineFailure(await cli("user", "disable", "nobody"), "no such user: nobody");
    expectOneLineFailure(await cli("user", "enable", "nobody"), "no such user: nobody");
    expectOneLineFailure(await cli("user", "roles", "nobody", "family"), "no such user: nobody");
    expectOneLineFailure(await cli("user", "disable"), "usage: latchkey user disable <username>");
    expectOneLineFailure(await cli("user", "roles", "alice"), "usage: latchkey user roles");
    expectOneLineFailure(await cli("user", "list", "extra"), "usage: latchkey user list");
    expectOneLineFailure(await cli("user", "frobnicate"), "usage: latchkey user");
    expectOneLineFailure(await cli("backup"), "usage: latchkey backup <file>");
    // Nothing unnamed is ignored: a misspelt flag or a stray argument is a usage error and changes nothing.
    const misspelt = await runCli(["user", "add", "zed", "--amdin"], { DATA_DIR: server.dataDir }, PASSWORD);
    expectOneLineFailure(misspelt, "unknown option --amdin; usage: latchkey user add <username>");
    expect((await cli("user", "list")).stdout).not.toContain("zed");
    expectOneLineFailure(await cli("user", "list", "--bogus"), "unknown option --bogus");
    expectOneLineFailure(await cli("user", "disable", "alice", "--email", "x@y.z"), "unknown option --email");
    expectOneLineFailure(await cli("user", "add", "zed", "--email"), "--email needs a value");
    expectOneLineFailure(await cli("user", "add", "zed", "--admin=yes"), "--admin takes no value");
    // node:util parseArgs (strict): an option where a value should be is not taken as the value, nor a short one.
    expectOneLineFailure(await cli("user", "add", "zed", "--email", "--admin"), "--email needs a value (one that starts with - is written --email=-…)");
    expectOneLineFailure(await cli("user", "add", "zed", "-a"), "unknown option -a; usage: latchkey user add <username>");
    expectOneLineFailure(await cli("migrate", "extra"), "usage: latchkey migrate");
    expectOneLineFailure(await cli("healthcheck", "--verbose"), "usage: latchkey healthcheck");
    expectOneLineFailure(await cli("backup", "a.db", "b.db"), "usage: latchkey backup <file>");
    expectOneLineFailure(await cli("frobnicate"), 'unknown command "frobnicate"');
  });

  // The SQLite file's copy; PostgreSQL is backed up with pg_dump (latchkey backup says so).
  sqliteOnlyTest("backup copies the live database consistently and never overwrites", async () => {
    const target = join(server.dataDir, "backup.db");
    const result = await cli("backup", target);
    expect(result.code).toBe(0);
    expect(result.stdout).toStartWith(`backed up ${join(server.dataDir, "latchkey.db")} to ${target} (`);
    // The server keeps serving meanwhile.
    expect((await call(server.url, "GET", "/health")).status).toBe(200);

    const copy = new Database(target, { readonly: true });
    try {
      expect(copy.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
      expect((copy.query("SELECT username FROM users ORDER BY id").all() as { username: string }[]).map((row) => row.username)).toEqual(["root", "alice"]);
      // The CLI's changes are in the audit trail it copied.
      const cliEvents = copy.query("SELECT detail FROM audit_events WHERE event = 'admin_user_updated'").all() as { detail: string }[];
      expect(cliEvents.map((row) => JSON.parse(row.detail).via)).toEqual(["cli", "cli", "cli", "cli"]);
      const created = copy.query("SELECT detail FROM audit_events WHERE event = 'admin_user_created' ORDER BY id").all() as { detail: string }[];
      expect(created.map((row) => JSON.parse(row.detail))).toEqual([
        { via: "cli", username: "root", roles: ["admin"] },
        { via: "cli", username: "alice", roles: [] },
      ]);
    } finally {
      copy.close();
    }

    const before = readFileSync(target);
    expectOneLineFailure(await cli("backup", target), "already exists");
    expect(readFileSync(target).equals(before)).toBe(true);
    expect(existsSync(join(server.dataDir, "backup.db-wal"))).toBe(false);
  });
});
