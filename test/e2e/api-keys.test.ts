import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { TEST_ENGINE } from "../support/engine";
import { DATA_VERSION_CHECK_MS } from "../../src/modules/keys/service";
import { removeDataDir, startServer, type RunningServer } from "../support/server";
import { openTestDatabase, time, minus, type TestDatabase } from "../support/database";

/**
 * The server's key cache notices another process's write (this test's own connection) within
 * DATA_VERSION_CHECK_MS. Waited for rather than polled: each poll would spend one of the key's 2 requests an hour.
 */
const anotherProcessWriteSeen = () => Bun.sleep(TEST_ENGINE === "postgres" ? ANNOUNCED_OR_EXPIRED_MS : DATA_VERSION_CHECK_MS * 3);
/**
 * On PostgreSQL a row changed behind Latchkey's back (not through an instance, which would announce it: db/peers.ts)
 * is seen once the key cache's entry expires, within its second.
 */
const ANNOUNCED_OR_EXPIRED_MS = 1100;

const MODES = ["bearer", "header", "cookie"] as const;
type Mode = (typeof MODES)[number];

/** A signed-in user as each delivery mode carries its session: bearer header, `token` header or cookie. */
class SessionClient {
  private credentials: Record<string, string> = {};
  constructor(
    private server: RunningServer,
    private mode: Mode,
  ) {}

  async register(username: string) {
    const response = await this.request("POST", "/api/v1/auth/register", { username, password: "a long passphrase" });
    expect(response.status).toBe(201);
    if (this.mode === "cookie") {
      const access = response.headers.getSetCookie().find((cookie) => cookie.startsWith("latchkey_access="))!;
      this.credentials = { cookie: access.split(";")[0]!, origin: this.server.url.replace("127.0.0.1", "localhost") };
    } else {
      const { access_token } = (await response.json()) as { access_token: string };
      this.credentials = this.mode === "header" ? { token: access_token } : { authorization: `Bearer ${access_token}` };
    }
  }

  request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    return fetch(`${this.server.url}${path}`, {
      method,
      headers: { ...this.credentials, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }
}

const withKey = (server: RunningServer, key: string, path = "/api/v1/auth/validate", via: "x-api-key" | "bearer" = "x-api-key") =>
  fetch(`${server.url}${path}`, { headers: via === "x-api-key" ? { "x-api-key": key } : { authorization: `Bearer ${key}` } });

for (const mode of MODES) {
  describe(`API keys, TOKEN_DELIVERY=${mode}`, () => {
    let server: RunningServer;
    let alice: SessionClient;
    let bob: SessionClient;

    beforeAll(async () => {
      server = await startServer({
        ALLOW_REGISTRATION: "true",
        TOKEN_DELIVERY: mode,
        API_KEYS_MAX_PER_USER: "3",
      });
      // PUBLIC_URL defaults to http://localhost:PORT, which is the Origin cookie mode trusts.
      alice = new SessionClient(server, mode);
      bob = new SessionClient(server, mode);
      await alice.register(`alice-${mode}`);
      await bob.register(`bob-${mode}`);
    });
    afterAll(async () => {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    });

    test("create, use, list with last_used_at, delete, then 401", async () => {
      const created = await alice.request("POST", "/api/v1/auth/keys", { name: "backup", scopes: ["backup:write"] });
      expect(created.status).toBe(201);
      expect(created.headers.get("cache-control")).toBe("no-store");
      const key = (await created.json()) as Record<string, unknown> & { api_key: string; key_id: string };
      expect(key.api_key).toMatch(/^lk_[0-9A-Za-z]{49}$/);
      expect(key).toMatchObject({ name: "backup", scopes: ["backup:write"], expires_at: null });

      for (const via of ["x-api-key", "bearer"] as const) {
        const validate = await withKey(server, key.api_key, "/api/v1/auth/validate", via);
        expect(validate.status).toBe(200);
        expect(validate.headers.get("token")).toBeNull();
        expect(await validate.json()).toMatchObject({
          username: `alice-${mode}`,
          key_id: key.key_id,
          scopes: ["backup:write"],
          auth: "api_key",
        });
      }
      const me = await withKey(server, key.api_key, "/api/v1/auth/me");
      expect(me.status).toBe(200);
      expect(((await me.json()) as { user: { username: string } }).user.username).toBe(`alice-${mode}`);

      const list = await alice.request("GET", "/api/v1/auth/keys");
      expect(list.status).toBe(200);
      const listed = (await list.json()) as Record<string, unknown>[];
      expect(listed).toHaveLength(1);
      expect(listed[0]).toMatchObject({ key_id: key.key_id, name: "backup", prefix: key.api_key.slice(3, 11) });
      expect(typeof listed[0]!.last_used_at).toBe("string");
      expect(JSON.stringify(listed)).not.toContain(key.api_key);

      const deleted = await alice.request("DELETE", `/api/v1/auth/keys/${key.key_id}`);
      expect(deleted.status).toBe(204);
      const after = await withKey(server, key.api_key);
      expect(after.status).toBe(401);
      expect(await after.json()).toMatchObject({ error: "invalid_api_key" });
    });

    test("a mistyped key fails its checksum with 401 invalid_api_key", async () => {
      const key = ((await (await alice.request("POST", "/api/v1/auth/keys", { name: "typo" })).json()) as { api_key: string }).api_key;
      const last = key.at(-1) === "a" ? "b" : "a";
      const response = await withKey(server, key.slice(0, -1) + last);
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: "invalid_api_key" });
      expect((await withKey(server, "lk_short")).status).toBe(401);
    });

    // (In bearer mode the access-token slot, Authorization: Bearer, is also a documented way to send a key.)
    if (mode !== "bearer")
    test(`a valid key in the ${mode === "header" ? "token header" : "access cookie"} is refused as an access token`, async () => {
      const key = ((await (await alice.request("POST", "/api/v1/auth/keys", { name: "misplaced" })).json()) as { api_key: string }).api_key;
      expect((await withKey(server, key)).status).toBe(200);
      const misplaced: Record<string, string> = mode === "header" ? { token: key } : { cookie: `latchkey_access=${key}` };
      const response = await fetch(`${server.url}/api/v1/auth/validate`, { headers: misplaced });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: "invalid_token" });
    });

    test("another user's key is not found, and a key cannot manage keys", async () => {
      const created = (await (await alice.request("POST", "/api/v1/auth/keys", { name: "mine" })).json()) as {
        api_key: string;
        key_id: string;
      };
      const byBob = await bob.request("DELETE", `/api/v1/auth/keys/${created.key_id}`);
      expect(byBob.status).toBe(404);
      expect(await byBob.json()).toMatchObject({ error: "key_not_found" });
      expect((await withKey(server, created.api_key)).status).toBe(200);

      const viaKey = await fetch(`${server.url}/api/v1/auth/keys`, {
        method: "POST",
        headers: { "x-api-key": created.api_key, "content-type": "application/json" },
        body: JSON.stringify({ name: "minted-by-a-key" }),
      });
      expect(viaKey.status).toBe(403);
      expect(await viaKey.json()).toMatchObject({ error: "session_required" });
      const logout = await fetch(`${server.url}/api/v1/auth/logout`, { method: "POST", headers: { authorization: `Bearer ${created.api_key}` } });
      expect(logout.status).toBe(403);
      expect(await logout.json()).toMatchObject({ error: "session_required" });
    });

    test("/validate with a key answers exactly who it is; X-API-Key wins over Authorization; a mistyped Bearer key is 401", async () => {
      const dave = new SessionClient(server, mode);
      await dave.register(`dave-${mode}`);
      const created = (await (await dave.request("POST", "/api/v1/auth/keys", { name: "whoami", scopes: ["read", "read", "photos:*"] })).json()) as {
        api_key: string;
        key_id: string;
      };
      const me = (await (await withKey(server, created.api_key, "/api/v1/auth/me")).json()) as { user: { id: string } };
      const validate = await withKey(server, created.api_key);
      expect(await validate.json()).toEqual({
        user_id: me.user.id,
        username: `dave-${mode}`,
        email: null,
        roles: [],
        metadata: {},
        key_id: created.key_id,
        scopes: ["read", "photos:*"],
        auth: "api_key",
      });
      const both = await fetch(`${server.url}/api/v1/auth/validate`, { headers: { "x-api-key": created.api_key, authorization: "Bearer not-a-token" } });
      expect(both.status).toBe(200);
      const typo = await withKey(server, `${created.api_key.slice(0, -1)}${created.api_key.endsWith("a") ? "b" : "a"}`, "/api/v1/auth/validate", "bearer");
      expect(typo.status).toBe(401);
      expect(await typo.json()).toMatchObject({ error: "invalid_api_key" });
    });

    test("a key gets 403 session_required on every session-only route", async () => {
      const erin = new SessionClient(server, mode);
      await erin.register(`erin-${mode}`);
      const { api_key, key_id } = (await (await erin.request("POST", "/api/v1/auth/keys", { name: "limited" })).json()) as {
        api_key: string;
        key_id: string;
      };
      for (const [method, path, body] of [
        ["GET", "/api/v1/auth/keys", undefined],
        ["DELETE", `/api/v1/auth/keys/${key_id}`, undefined],
        ["POST", "/api/v1/auth/password", { current_password: "a long passphrase", new_password: "another long passphrase" }],
        ["POST", "/api/v1/auth/logout/all", undefined],
        ["GET", "/api/v1/auth/sessions", undefined],
      ] as const) {
        const response = await fetch(`${server.url}${path}`, {
          method,
          headers: { "x-api-key": api_key, ...(body ? { "content-type": "application/json" } : {}) },
          body: body && JSON.stringify(body),
        });
        expect({ path, status: response.status, body: await response.json() }).toMatchObject({ path, status: 403, body: { error: "session_required" } });
      }
      expect((await withKey(server, api_key)).status).toBe(200);
    });

    test("create and delete validate their input: expires_in, scopes, names, unknown ids; no user id is taken from the body", async () => {
      const fay = new SessionClient(server, mode);
      await fay.register(`fay-${mode}`);
      const create = (body: unknown) => fay.request("POST", "/api/v1/auth/keys", body);
      const expectInvalid = async (body: unknown, field: string) => {
        const response = await create(body);
        expect({ body, status: response.status }).toEqual({ body, status: 422 });
        const reply = (await response.json()) as { error: string; details: { field: string }[] };
        expect(reply.error).toBe("validation_failed");
        // The field itself, or one of its items ("scopes.0").
        expect(reply.details.map((detail) => detail.field.split(".")[0])).toEqual([field]);
      };
      for (const expires_in of [59, 315_360_001, 1.5, -60, "3600", true, null]) await expectInvalid({ name: "e", expires_in }, "expires_in");
      for (const scopes of ["read", ["has space"], ["ä"], Array.from({ length: 33 }, (_, i) => `s${i}`), [""]]) await expectInvalid({ name: "s", scopes }, "scopes");
      for (const name of ["   ", "\u200b", "ctl\u0000x", "line\nbreak", "x".repeat(65), 42]) await expectInvalid({ name }, "name");

      const timed = await create({ name: "x".repeat(64), expires_in: 60 });
      expect(timed.status).toBe(201);
      const key = (await timed.json()) as { created_at: string; expires_at: string; key_id: string };
      expect(Date.parse(key.expires_at) - Date.parse(key.created_at)).toBe(60_000);
      // (This server allows 3 keys per user.)
      expect((await fay.request("DELETE", `/api/v1/auth/keys/${key.key_id}`)).status).toBe(204);
      // 40 emoji are 40 characters (80 UTF-16 units); one name typed composed or decomposed is one name.
      expect((await create({ name: "😀".repeat(40) })).status).toBe(201);
      expect((await create({ name: "  caf\u00e9  " })).status).toBe(201);
      const twin = await create({ name: "cafe\u0301" });
      expect(twin.status).toBe(409);
      expect(await twin.json()).toMatchObject({ error: "key_name_taken" });

      // A user id in the body is refused as an unknown field (issue 16), and mints nothing for anyone: the key
      // always belongs to the session's user.
      const other = new SessionClient(server, mode);
      await other.register(`gus-${mode}`);
      const otherId = ((await (await other.request("GET", "/api/v1/auth/me")).json()) as { user: { id: string } }).user.id;
      const smuggled = await create({ name: "not-for-gus", user_id: otherId, userId: otherId });
      expect(smuggled.status).toBe(422);
      expect(((await smuggled.json()) as { details: { field: string }[] }).details.map((detail) => detail.field)).toEqual(["user_id", "userId"]);
      expect(await (await other.request("GET", "/api/v1/auth/keys")).json()).toEqual([]);
      const minted = (await (await create({ name: "not-for-gus" })).json()) as { api_key: string };
      expect(((await (await withKey(server, minted.api_key)).json()) as { username: string }).username).toBe(`fay-${mode}`);

      const missing = await fay.request("DELETE", "/api/v1/auth/keys/01900000-0000-7000-8000-000000000000");
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ error: "key_not_found" });
    });

    if (mode === "cookie")
      test("cookie mode: creating or deleting a key needs the page's Origin (403 csrf_rejected without)", async () => {
        const hal = new SessionClient(server, mode);
        await hal.register("hal-cookie");
        for (const origin of ["https://evil.example", ""]) {
          const response = await hal.request("POST", "/api/v1/auth/keys", { name: "csrf" }, { origin });
          expect(response.status).toBe(403);
          expect(await response.json()).toMatchObject({ error: "csrf_rejected" });
        }
        expect(await (await hal.request("GET", "/api/v1/auth/keys")).json()).toEqual([]);
      });

    test("name rules, duplicate names and the per-user limit", async () => {
      const empty = await bob.request("POST", "/api/v1/auth/keys", { name: "" });
      expect(empty.status).toBe(422);
      expect(await empty.json()).toMatchObject({ error: "validation_failed", details: [{ field: "name" }] });
      const long = await bob.request("POST", "/api/v1/auth/keys", { name: "x".repeat(65) });
      expect(long.status).toBe(422);
      expect((await bob.request("POST", "/api/v1/auth/keys", { name: "one" })).status).toBe(201);
      const duplicate = await bob.request("POST", "/api/v1/auth/keys", { name: "one" });
      expect(duplicate.status).toBe(409);
      expect(await duplicate.json()).toMatchObject({ error: "key_name_taken" });
      expect((await bob.request("POST", "/api/v1/auth/keys", { name: "two" })).status).toBe(201);
      expect((await bob.request("POST", "/api/v1/auth/keys", { name: "three" })).status).toBe(201);
      const fourth = await bob.request("POST", "/api/v1/auth/keys", { name: "four" });
      expect(fourth.status).toBe(403);
      expect(await fourth.json()).toMatchObject({ error: "key_limit_reached" });
    });
  });
}

describe("API key storage and revocation", () => {
  let server: RunningServer;
  let session: SessionClient;
  let db: TestDatabase;

  beforeAll(async () => {
    server = await startServer({ ALLOW_REGISTRATION: "true", API_KEY_RATE_LIMIT: "2/1h" });
    session = new SessionClient(server, "bearer");
    await session.register("carol");
    db = await openTestDatabase(server.dataDir, { writable: true });
  });
  afterAll(async () => {
    await db.close();
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  const newKey = async (name: string) =>
    (await (await session.request("POST", "/api/v1/auth/keys", { name, expires_in: 3600 })).json()) as { api_key: string; key_id: string };

  test("the database holds no API key secret, only its SHA-256 (nor does the SQLite file or its WAL)", async () => {
    const { api_key, key_id } = await newKey("scan-me");
    if (TEST_ENGINE === "sqlite") {
      await db.run("PRAGMA wal_checkpoint(FULL)");
      const bytes = await Bun.file(join(server.dataDir, "latchkey.db")).bytes();
      const wal = await Bun.file(join(server.dataDir, "latchkey.db-wal")).bytes();
      for (const content of [bytes, wal]) expect(Buffer.from(content).includes(api_key)).toBe(false);
    }
    const row = (await db.get<{ key_hash: string; prefix: string }>("SELECT key_hash, prefix FROM api_keys WHERE id = ?", key_id))!;
    expect(row.key_hash).toBe(new Bun.CryptoHasher("sha256").update(api_key).digest("hex"));
    expect(row.prefix).toBe(api_key.slice(3, 11));
  });

  test("last_used_at is written at most once a minute per key", async () => {
    // (This server allows each key 2 requests an hour, so two keys.)
    const lastUsed = async (keyId: string) => (await db.get<{ at: number | null }>("SELECT last_used_at AS at FROM api_keys WHERE id = ?", keyId))!.at;
    const steady = await newKey("steady");
    expect(await lastUsed(steady.key_id)).toBeNull();
    expect((await withKey(server, steady.api_key)).status).toBe(200);
    const first = await lastUsed(steady.key_id);
    expect(first).not.toBeNull();
    expect((await withKey(server, steady.api_key)).status).toBe(200);
    expect(await lastUsed(steady.key_id)).toBe(first);

    // A minute later (moved back in the database rather than waited for), the next use writes it again.
    const later = await newKey("later");
    expect((await withKey(server, later.api_key)).status).toBe(200);
    await db.run(`UPDATE api_keys SET last_used_at = ${minus("last_used_at", 61000)} WHERE id = ?`, later.key_id);
    const movedBack = (await lastUsed(later.key_id))!;
    await anotherProcessWriteSeen();
    expect((await withKey(server, later.api_key)).status).toBe(200);
    expect((await lastUsed(later.key_id))! - movedBack).toBeGreaterThanOrEqual(61_000);
  });

  test("an expired key answers 401 invalid_api_key", async () => {
    const { api_key, key_id } = await newKey("short-lived");
    await db.run("UPDATE api_keys SET expires_at = ? WHERE id = ?", time(Date.now() - 1000), key_id);
    await anotherProcessWriteSeen();
    const response = await withKey(server, api_key);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: "invalid_api_key" });
  });

  test("a key refused by a session-only route spends none of its quota", async () => {
    const { api_key } = await newKey("patient");
    for (let attempt = 0; attempt < 3; attempt++) {
      const refused = await fetch(`${server.url}/api/v1/auth/keys`, { headers: { "x-api-key": api_key } });
      expect(refused.status).toBe(403);
    }
    expect((await withKey(server, api_key)).status).toBe(200);
    expect((await withKey(server, api_key)).status).toBe(200);
    expect((await withKey(server, api_key)).status).toBe(429);
  });

  test("over API_KEY_RATE_LIMIT a key gets 429 with Retry-After, never 401", async () => {
    const { api_key } = await newKey("busy");
    expect((await withKey(server, api_key)).status).toBe(200);
    expect((await withKey(server, api_key)).status).toBe(200);
    const limited = await withKey(server, api_key);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await limited.json()).toMatchObject({ error: "rate_limited" });
  });

  test("creating and deleting a key are audited with the key's id, never its secret", async () => {
    const { api_key, key_id } = await newKey("audited");
    expect((await session.request("DELETE", `/api/v1/auth/keys/${key_id}`)).status).toBe(204);
    const rows = await db.all<{ event: string; detail: string }>(
      "SELECT a.event, a.detail FROM audit_events a JOIN users u ON u.id = a.user_id WHERE u.username = 'carol' AND a.event LIKE 'key_%' AND CAST(a.detail AS TEXT) LIKE ? ORDER BY a.id",
      `%${key_id}%`,
    );
    expect(rows.map((row) => [row.event, JSON.parse(row.detail)])).toEqual([
      ["key_created", { key_id, name: "audited" }],
      ["key_deleted", { key_id }],
    ]);
    expect(await server.waitForOutput(`"event":"key_deleted"`)).not.toContain(api_key);
  });

  test("API_KEYS_MAX_PER_USER defaults to 25", async () => {
    const ivan = new SessionClient(server, "bearer");
    await ivan.register("ivan");
    for (let n = 1; n <= 25; n++) expect((await ivan.request("POST", "/api/v1/auth/keys", { name: `key-${n}` })).status).toBe(201);
    const over = await ivan.request("POST", "/api/v1/auth/keys", { name: "key-26" });
    expect(over.status).toBe(403);
    expect(await over.json()).toMatchObject({ error: "key_limit_reached" });
  });

  test("a user creates at most 50 keys an hour, deletions notwithstanding: then 429 with Retry-After", async () => {
    const jill = new SessionClient(server, "bearer");
    await jill.register("jill");
    const createAndDelete = async (n: number) => {
      const created = await jill.request("POST", "/api/v1/auth/keys", { name: `cycle-${n}` });
      expect(created.status).toBe(201);
      const { key_id } = (await created.json()) as { key_id: string };
      expect((await jill.request("DELETE", `/api/v1/auth/keys/${key_id}`)).status).toBe(204);
    };
    for (let n = 1; n <= 50; n++) await createAndDelete(n);
    const over = await jill.request("POST", "/api/v1/auth/keys", { name: "cycle-51" });
    expect(over.status).toBe(429);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await over.json()).toMatchObject({ error: "rate_limited" });
    expect(await (await jill.request("GET", "/api/v1/auth/keys")).json()).toEqual([]);
  });

  test("disabling the user from another process makes its cached key fail within DATA_VERSION_CHECK_MS", async () => {
    const { api_key } = await newKey("until-disabled");
    expect((await withKey(server, api_key)).status).toBe(200);
    await db.run("UPDATE users SET disabled = TRUE WHERE username = 'carol'");
    await anotherProcessWriteSeen();
    const response = await withKey(server, api_key);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: "invalid_api_key" });
  });
});
