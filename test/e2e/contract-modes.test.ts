/**
 * Issue 2's contract, row by row, against the compiled binary in each of the three TOKEN_DELIVERY modes:
 * the registration gate, login, the OAuth2 token endpoint, refresh rotation with its grace window and reuse
 * detection, logout, header mode's sliding token, cookie mode's attributes and CSRF check, a restart on the
 * same DATA_DIR, and every bad-input row. Each mode shares three servers (registration open, registration
 * closed, REFRESH_REUSE_INTERVAL=0) across its tests.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { statSync } from "node:fs";
import { join } from "node:path";
import {
  ACCESS_COOKIE,
  AUTH,
  Client,
  MODES,
  REFRESH_COOKIE,
  credential,
  jwtClaims,
  send,
  signJwt,
  waitFor,
  type Mode,
  type RawBody,
  type Reply,
} from "../support/client";
import { removeDataDir, startServer, tempDataDir, type RunningServer } from "../support/server";

const PASSWORD = "correct horse battery";
const PUBLIC_URL = "http://latchkey.test";
const APP_ORIGIN = "https://app.example.test";
const ACCESS_TTL = 900;
const REFRESH_TTL = 7 * 86400;
const BASE_ENV = {
  RATE_LIMIT: "off",
  PUBLIC_URL,
  ALLOWED_ORIGINS: `${APP_ORIGIN}, http://localhost:5173`,
  ACCESS_TOKEN_TTL: "15m",
  REFRESH_TOKEN_TTL: "7d",
  // Long enough that no retry in these tests can fall outside it on a slow machine.
  REFRESH_REUSE_INTERVAL: "5m",
};
const USER_KEYS = ["created_at", "email", "email_verified", "id", "roles", "username"];

function expectCookieAttributes(reply: Reply, secure: boolean, cleared = false) {
  const access = reply.cookies[ACCESS_COOKIE];
  const refresh = reply.cookies[REFRESH_COOKIE];
  expect(access).toBeDefined();
  expect(refresh).toBeDefined();
  for (const [cookie, sameSite, path, maxAge] of [
    [access!, "lax", "/", cleared ? "0" : String(ACCESS_TTL)],
    [refresh!, "strict", AUTH, cleared ? "0" : String(REFRESH_TTL)],
  ] as const) {
    expect(cookie.attributes.httponly).toBe(true);
    expect(String(cookie.attributes.samesite).toLowerCase()).toBe(sameSite);
    expect(cookie.attributes.path).toBe(path);
    expect(cookie.attributes["max-age"]).toBe(maxAge);
    expect(cookie.attributes.secure).toBe(secure ? true : undefined);
    expect(cookie.attributes.domain).toBeUndefined();
    if (cleared) expect(cookie.value).toBe("");
    else expect(cookie.value.length).toBeGreaterThanOrEqual(43);
  }
}

/**
 * A token response (register 201, login/refresh 200) as the mode delivers it: the JSON shape, no-store,
 * the `Token` header only in header mode, cookies with their exact attributes only in cookie mode and
 * then no token anywhere in the body. Returns the user and the access token's claims.
 */
function expectTokenResponse(reply: Reply, mode: Mode, status: number, options: { secure?: boolean } = {}) {
  expect(reply.status).toBe(status);
  expect(reply.headers.get("cache-control")).toBe("no-store");
  const body = reply.body;
  expect(Object.keys(body.user).sort()).toEqual(USER_KEYS);
  expect(body.expires_in).toBe(ACCESS_TTL);
  let access: string;
  if (mode === "cookie") {
    expect(Object.keys(body).sort()).toEqual(["expires_in", "message", "user"]);
    expect(typeof body.message).toBe("string");
    expectCookieAttributes(reply, options.secure ?? false);
    access = reply.cookies[ACCESS_COOKIE]!.value;
    expect(reply.text).not.toContain(access);
    expect(reply.text).not.toContain(reply.cookies[REFRESH_COOKIE]!.value);
    expect(reply.headers.get("token")).toBeNull();
  } else {
    expect(Object.keys(body).sort()).toEqual(["access_token", "expires_in", "refresh_token", "token_type", "user"]);
    expect(body.token_type).toBe("bearer");
    // Opaque, at least 256 bits: 43 base64url characters or more.
    expect(body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(reply.headers.getSetCookie()).toEqual([]);
    access = body.access_token;
    if (mode === "header") expect(reply.headers.get("token")).toBe(access);
    else expect(reply.headers.get("token")).toBeNull();
  }
  expect(access).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  const header = JSON.parse(Buffer.from(access.split(".")[0]!, "base64url").toString());
  expect(header.alg).toBe("HS256");
  const claims = jwtClaims(access);
  expect(claims).toMatchObject({ sub: body.user.id, iss: PUBLIC_URL });
  expect(typeof claims.sid).toBe("string");
  expect(typeof claims.jti).toBe("string");
  expect(claims.exp - claims.iat).toBe(ACCESS_TTL);
  return { user: body.user, claims, access };
}

function expectError(reply: Reply, status: number, code: string) {
  expect({ status: reply.status, error: reply.body?.error }).toEqual({ status, error: code });
  expect(typeof reply.body.message).toBe("string");
  expect(reply.body.message.length).toBeGreaterThan(0);
}

/** 401 invalid_token with the RFC 6750 challenge. */
function expectInvalidToken(reply: Reply) {
  expectError(reply, 401, "invalid_token");
  expect(reply.headers.get("www-authenticate")).toMatch(/^Bearer\b.*\berror="invalid_token"/);
}

function disableUser(dataDir: string, username: string) {
  const db = new Database(join(dataDir, "latchkey.db"));
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    const changed = db.query("UPDATE users SET disabled = 1 WHERE username = ?").run(username).changes;
    expect(changed).toBe(1);
  } finally {
    db.close();
  }
}

async function stopAndRemove(...servers: (RunningServer | undefined)[]) {
  for (const server of servers) {
    if (!server) continue;
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  }
}

for (const mode of MODES) {
  describe(`TOKEN_DELIVERY=${mode}`, () => {
    let open: RunningServer;
    let closed: RunningServer;
    let strict: RunningServer;

    beforeAll(async () => {
      [open, closed, strict] = await Promise.all([
        startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true" }),
        // ALLOW_REGISTRATION unset: the default is closed.
        startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode }),
        startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true", REFRESH_REUSE_INTERVAL: "0" }),
      ]);
    });
    afterAll(async () => {
      await stopAndRemove(open, closed, strict);
    });

    /** A client of `server` that sends Origin = PUBLIC_URL, like a page served from it. */
    const clientOf = (server: RunningServer) => new Client(server.url, mode, { origin: PUBLIC_URL });
    /** Presents the refresh token `token` the mode's way, with no other credential. */
    const refreshWith = (server: RunningServer, token: string) =>
      mode === "cookie"
        ? send(server.url, "POST", `${AUTH}/refresh`, { json: {}, headers: { origin: PUBLIC_URL, cookie: `${REFRESH_COOKIE}=${token}` } })
        : send(server.url, "POST", `${AUTH}/refresh`, { json: { refresh_token: token } });
    /** GET /me with `token` presented the mode's way and nothing else. */
    const meWith = (server: RunningServer, token: string) => send(server.url, "GET", `${AUTH}/me`, { headers: credential(mode, token) });

    describe("registration", () => {
      test("closed by default: 403 registration_disabled, no account, no credentials", async () => {
        const client = clientOf(closed);
        const refused = await client.register("closed-door", PASSWORD, "closed@example.com");
        expectError(refused, 403, "registration_disabled");
        expect(Object.keys(refused.body).sort()).toEqual(["error", "message"]);
        expect(refused.headers.getSetCookie()).toEqual([]);
        expect(refused.headers.get("token")).toBeNull();
        expect(client.access).toBeUndefined();
        expectError(await client.login("closed-door", PASSWORD), 401, "invalid_credentials");
      });

      test("open: 201 with the mode's token response; username NFKC + lower-cased, email lower-cased", async () => {
        const client = clientOf(open);
        const registered = await client.register("ＡＬＩＣＥ.Smith", PASSWORD, "Alice.Smith@Example.COM");
        const { user, claims } = expectTokenResponse(registered, mode, 201);
        expect(user).toMatchObject({ username: "alice.smith", email: "alice.smith@example.com", email_verified: false, roles: [] });
        expect(new Date(user.created_at).toISOString()).toBe(user.created_at);

        const me = await client.me();
        expect(me.status).toBe(200);
        expect(me.body).toEqual({ user, second_factors: { totp: false, recovery_codes_left: 0 } });

        const presented = client.access!;
        const validate = await client.validate();
        expect(validate.status).toBe(200);
        expect(validate.body.expires_at).toBe(new Date(jwtClaims(presented).exp * 1000).toISOString());
        expect(validate.body).toMatchObject({
          user_id: user.id,
          username: "alice.smith",
          email: "alice.smith@example.com",
          roles: [],
          session_id: claims.sid,
        });
        expect(validate.text).not.toContain(client.access!);
      });

      test("409 username_taken and email_taken, case-insensitively, with no credentials", async () => {
        const client = clientOf(open);
        expect((await client.register("taken", PASSWORD, "taken@example.com")).status).toBe(201);
        const stranger = clientOf(open);
        const sameName = await stranger.register("TAKEN", PASSWORD, "fresh@example.com");
        expectError(sameName, 409, "username_taken");
        const sameEmail = await stranger.register("someone-else", PASSWORD, "Taken@EXAMPLE.com");
        expectError(sameEmail, 409, "email_taken");
        for (const reply of [sameName, sameEmail]) {
          expect(reply.headers.getSetCookie()).toEqual([]);
          expect(reply.headers.get("token")).toBeNull();
        }
        expect(stranger.access).toBeUndefined();
      });

      test("422 validation_failed lists {field, message} for each bad field and never echoes the password", async () => {
        const cases: [Record<string, unknown>, string[]][] = [
          [{ username: "-dash-first", password: "secret7", email: "not-an-email" }, ["username", "password", "email"]],
          [{ username: "ab", password: PASSWORD }, ["username"]],
          [{ username: "x".repeat(33), password: PASSWORD }, ["username"]],
          [{ username: "has space", password: PASSWORD }, ["username"]],
          [{ password: PASSWORD }, ["username"]],
          [{ username: "no-password" }, ["password"]],
          [{ username: "typed-password", password: 12345678901 }, ["password"]],
          [{ username: "short-password", password: "Pw0rd!x" }, ["password"]],
        ];
        const client = clientOf(open);
        for (const [body, fields] of cases) {
          const reply = await client.request("POST", `${AUTH}/register`, { json: body });
          expectError(reply, 422, "validation_failed");
          expect(Object.keys(reply.body).sort()).toEqual(["details", "error", "message"]);
          for (const detail of reply.body.details) {
            expect(Object.keys(detail).sort()).toEqual(["field", "message"]);
            expect(typeof detail.field).toBe("string");
            expect(typeof detail.message).toBe("string");
          }
          expect(reply.body.details.map((detail: { field: string }) => detail.field).sort()).toEqual([...fields].sort());
          if (body.password !== undefined) expect(reply.text).not.toContain(String(body.password));
          expect(reply.headers.getSetCookie()).toEqual([]);
        }
        // Nothing was created by the refused attempts.
        expectError(await client.login("short-password", "Pw0rd!x"), 401, "invalid_credentials");
      });

      test("passwords are measured in UTF-8 bytes: 1,024 accepted, 1,025 refused with 422 on register, login and /token", async () => {
        const client = clientOf(open);
        const max = "é".repeat(512); // 512 characters, 1,024 bytes
        expect(Buffer.byteLength(max)).toBe(1024);
        expectTokenResponse(await client.register("bytes-max", max), mode, 201);
        expect((await clientOf(open).login("bytes-max", max)).status).toBe(200);

        const over = `${max}x`; // 513 characters, 1,025 bytes
        for (const path of ["register", "login"]) {
          const reply = await clientOf(open).request("POST", `${AUTH}/${path}`, { json: { username: "bytes-over", password: over } });
          expectError(reply, 422, "validation_failed");
          expect(reply.body.details.map((detail: { field: string }) => detail.field)).toEqual(["password"]);
          expect(reply.text).not.toContain(over);
        }
        const viaToken = await send(open.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: "bytes-max", password: over } });
        expect(viaToken.status).toBe(400);
        expect(viaToken.body.error).toBe("invalid_request");

        // The limit applies to the password as sent, before NFKC, the same way wherever a password goes: "ﬁ" is
        // 3 bytes that normalise to the 2 of "fi", and a password that could be set can always be typed.
        const ligatures = "\ufb01".repeat(341); // 1,023 bytes as sent, 682 once normalised
        expectTokenResponse(await clientOf(open).register("ligatures", ligatures), mode, 201);
        expect((await clientOf(open).login("ligatures", ligatures)).status).toBe(200);
        expect((await clientOf(open).login("ligatures", "fi".repeat(341))).status).toBe(200);
        const tooLong = "\ufb01".repeat(342); // 1,026 bytes as sent, 684 once normalised
        expectError(await clientOf(open).register("ligatures-over", tooLong), 422, "validation_failed");
      });
    });

    describe("login", () => {
      let user: { id: string };
      beforeAll(async () => {
        user = expectTokenResponse(await clientOf(open).register("dora", PASSWORD, "Dora@Example.org"), mode, 201).user;
      });

      test("by username or email, in any case, in either field; each login is a new session", async () => {
        const sessions = new Set<string>();
        for (const json of [
          { username: "DORA", password: PASSWORD },
          { username: "dora@EXAMPLE.org", password: PASSWORD },
          { email: "DoRa@example.ORG", password: PASSWORD },
          { email: "Dora", password: PASSWORD },
        ]) {
          const client = clientOf(open);
          const reply = await client.request("POST", `${AUTH}/login`, { json });
          const { user: loggedIn, claims } = expectTokenResponse(reply, mode, 200);
          expect(loggedIn).toMatchObject({ id: user.id, username: "dora", email: "dora@example.org" });
          sessions.add(claims.sid);
          const me = await client.me();
          expect(me.status).toBe(200);
          expect(me.body.user.id).toBe(user.id);
        }
        expect(sessions.size).toBe(4);
      });

      test("passwords are NFKC-normalised but never case-folded", async () => {
        expectTokenResponse(await clientOf(open).register("fiona", "ﬁne passphrase"), mode, 201);
        expect((await clientOf(open).login("fiona", "fine passphrase")).status).toBe(200);
        expectTokenResponse(await clientOf(open).register("fabian", "fine passphrase"), mode, 201);
        expect((await clientOf(open).login("fabian", "ﬁne passphrase")).status).toBe(200);
        expectError(await clientOf(open).login("fiona", "FINE PASSPHRASE"), 401, "invalid_credentials");
        expectError(await clientOf(open).login("dora", PASSWORD.toUpperCase()), 401, "invalid_credentials");
      });

      test("unknown user and wrong password get a byte-identical 401 invalid_credentials", async () => {
        const attempts = await Promise.all(
          [
            ["nobody-here", PASSWORD],
            ["nobody@example.org", PASSWORD],
            ["dora", "wrong horse battery"],
            ["dora@example.org", "wrong horse battery"],
          ].map(([login, password]) => clientOf(open).login(login!, password!)),
        );
        for (const reply of attempts) {
          expectError(reply, 401, "invalid_credentials");
          expect(reply.text).toBe(attempts[0]!.text);
          expect(reply.headers.get("content-type")).toBe(attempts[0]!.headers.get("content-type"));
          expect(reply.headers.getSetCookie()).toEqual([]);
          expect(reply.headers.get("token")).toBeNull();
        }
        expect(Object.keys(attempts[0]!.body).sort()).toEqual(["error", "message"]);
      });

      test("a disabled account: wrong password still 401, 403 account_disabled only with the right one; its sessions end", async () => {
        const client = clientOf(open);
        expectTokenResponse(await client.register("frank", PASSWORD), mode, 201);
        expect((await client.me()).status).toBe(200);
        const refreshToken = client.refresh!;
        const unknown = await clientOf(open).login("nobody-at-all", PASSWORD);

        disableUser(open.dataDir, "frank");

        const wrong = await clientOf(open).login("frank", "wrong horse battery");
        expectError(wrong, 401, "invalid_credentials");
        expect(wrong.text).toBe(unknown.text);
        const right = await clientOf(open).login("frank", PASSWORD);
        expectError(right, 403, "account_disabled");
        expect(right.headers.getSetCookie()).toEqual([]);
        expect(right.headers.get("token")).toBeNull();
        expect(right.text).not.toContain("access_token");

        // The server trusts a looked-up session for up to 1 s; after that the disabled user's token is refused.
        expectInvalidToken(await waitFor(() => client.me(), (reply) => reply.status !== 200));
        expectError(await refreshWith(open, refreshToken), 401, "invalid_refresh_token");
      });
    });

    describe("OAuth2 token endpoint", () => {
      beforeAll(async () => {
        expect((await clientOf(open).register("gina", PASSWORD, "gina@example.net")).status).toBe(201);
      });

      const expectOAuthTokens = async (reply: Reply) => {
        expect(reply.status).toBe(200);
        expect(reply.headers.get("cache-control")).toBe("no-store");
        expect(Object.keys(reply.body).sort()).toEqual(["access_token", "expires_in", "refresh_token", "token_type"]);
        expect(reply.body).toMatchObject({ token_type: "bearer", expires_in: ACCESS_TTL });
        expect(reply.body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
        // /token reads credentials from its body only and answers in the body, in every mode.
        expect(reply.headers.getSetCookie()).toEqual([]);
        const me = await meWith(open, reply.body.access_token);
        expect(me.status).toBe(200);
        expect(me.body.user.username).toBe("gina");
        return reply.body as { access_token: string; refresh_token: string };
      };

      test("password grant, form-encoded and JSON, by username or email", async () => {
        await expectOAuthTokens(await send(open.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: "GINA", password: PASSWORD } }));
        await expectOAuthTokens(
          await send(open.url, "POST", `${AUTH}/token`, { json: { grant_type: "password", username: "Gina@Example.net", password: PASSWORD } }),
        );
      });

      test("refresh_token grant rotates, form-encoded and JSON", async () => {
        const first = await expectOAuthTokens(
          await send(open.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: "gina", password: PASSWORD } }),
        );
        const second = await expectOAuthTokens(
          await send(open.url, "POST", `${AUTH}/token`, { form: { grant_type: "refresh_token", refresh_token: first.refresh_token } }),
        );
        expect(second.refresh_token).not.toBe(first.refresh_token);
        const third = await expectOAuthTokens(
          await send(open.url, "POST", `${AUTH}/token`, { json: { grant_type: "refresh_token", refresh_token: second.refresh_token } }),
        );
        expect(third.refresh_token).not.toBe(second.refresh_token);
        expect(jwtClaims(third.access_token).sid).toBe(jwtClaims(first.access_token).sid);
      });

      test("400 with RFC 6749 error and error_description for each kind of bad request", async () => {
        const cases: [{ form?: Record<string, string>; json?: unknown; raw?: string; headers?: Record<string, string> }, string][] = [
          [{ form: { grant_type: "password", username: "gina", password: "wrong horse battery" } }, "invalid_grant"],
          [{ json: { grant_type: "password", username: "nobody-here", password: PASSWORD } }, "invalid_grant"],
          [{ form: { grant_type: "refresh_token", refresh_token: "A".repeat(43) } }, "invalid_grant"],
          [{ json: { grant_type: "refresh_token", refresh_token: "not-a-token" } }, "invalid_grant"],
          [{ form: { grant_type: "password", username: "gina" } }, "invalid_request"],
          [{ json: { grant_type: "password", password: PASSWORD } }, "invalid_request"],
          [{ form: { grant_type: "refresh_token" } }, "invalid_request"],
          [{ form: { username: "gina", password: PASSWORD } }, "invalid_request"],
          [{ raw: "{not json", headers: { "content-type": "application/json" } }, "invalid_request"],
          [{ raw: "null", headers: { "content-type": "application/json" } }, "invalid_request"],
          [{ raw: "[]", headers: { "content-type": "application/json" } }, "invalid_request"],
          [{ form: { grant_type: "client_credentials" } }, "unsupported_grant_type"],
          [{ json: { grant_type: "authorization_code", code: "abc" } }, "unsupported_grant_type"],
        ];
        for (const [request, code] of cases) {
          const reply = await send(open.url, "POST", `${AUTH}/token`, request);
          expect({ status: reply.status, error: reply.body?.error }).toEqual({ status: 400, error: code });
          expect(typeof reply.body.error_description).toBe("string");
          expect(reply.body.error_description.length).toBeGreaterThan(0);
          expect(reply.body.access_token).toBeUndefined();
          expect(reply.text).not.toContain(PASSWORD);
          expect(reply.headers.getSetCookie()).toEqual([]);
        }
        // No account enumeration through the token endpoint either.
        const wrong = await send(open.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: "gina", password: "wrong horse battery" } });
        const unknown = await send(open.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: "nobody-here", password: "wrong horse battery" } });
        expect(wrong.text).toBe(unknown.text);
      });

      test("415 for a content type that is neither JSON nor a form", async () => {
        const reply = await send(open.url, "POST", `${AUTH}/token`, {
          raw: "grant_type=password&username=gina",
          headers: { "content-type": "text/plain" },
        });
        expect(reply.status).toBe(415);
        expect(reply.body.error).toBe("unsupported_media_type");
      });
    });

    describe("refresh", () => {
      test("rotates: a new refresh token and a working access token for the same session", async () => {
        const client = clientOf(open);
        const { claims } = expectTokenResponse(await client.register("hank", PASSWORD), mode, 201);
        const first = client.refresh!;
        const rotated = await client.refreshSession();
        const { claims: rotatedClaims, user } = expectTokenResponse(rotated, mode, 200);
        expect(user.username).toBe("hank");
        expect(client.refresh).not.toBe(first);
        expect(rotatedClaims.sid).toBe(claims.sid);
        expect(rotatedClaims.jti).not.toBe(claims.jti);
        const me = await client.me();
        expect(me.status).toBe(200);
        expect(me.body.user.username).toBe("hank");
      });

      test("401 invalid_refresh_token for a missing or unknown refresh token", async () => {
        const missing = await send(open.url, "POST", `${AUTH}/refresh`, { json: {}, headers: { origin: PUBLIC_URL } });
        expectError(missing, 401, "invalid_refresh_token");
        expectError(await refreshWith(open, "A".repeat(43)), 401, "invalid_refresh_token");
        expect(missing.headers.getSetCookie().filter((line) => !line.includes("Max-Age=0"))).toEqual([]);
      });

      test("grace window: the parent again yields the same child; only the latest child and its parent are accepted", async () => {
        const client = clientOf(open);
        expectTokenResponse(await client.register("ivy", PASSWORD), mode, 201);
        const r0 = client.refresh!;
        expectTokenResponse(await client.refreshSession(), mode, 200);
        const r1 = client.refresh!;
        const a1 = client.access!;
        expect(r1).not.toBe(r0);

        // A lost response: the parent is presented again and gets the very same child plus a fresh access token.
        client.setRefresh(r0);
        const retried = await client.refreshSession();
        expectTokenResponse(retried, mode, 200);
        expect(client.refresh).toBe(r1);
        expect(client.access).not.toBe(a1);
        expect((await client.me()).status).toBe(200);

        expectTokenResponse(await client.refreshSession(), mode, 200);
        const r2 = client.refresh!;
        expect(r2).not.toBe(r1);
        // r1 is now the parent of the latest child: still within grace, so it yields r2.
        client.setRefresh(r1);
        expectTokenResponse(await client.refreshSession(), mode, 200);
        expect(client.refresh).toBe(r2);
        const a2 = client.access!;

        // r0 is neither the latest child nor its parent: reuse, and the whole session is revoked.
        const reused = await refreshWith(open, r0);
        expectError(reused, 401, "refresh_token_reused");
        expectError(await refreshWith(open, r2), 401, "invalid_refresh_token");
        expectInvalidToken(await meWith(open, a2));
      });

      test("two concurrent refreshes with one token get the same child: one branch", async () => {
        const client = clientOf(open);
        expectTokenResponse(await client.register("jack", PASSWORD), mode, 201);
        const r0 = client.refresh!;
        const [a, b] = await Promise.all([refreshWith(open, r0), refreshWith(open, r0)]);
        expect([a.status, b.status]).toEqual([200, 200]);
        const childOf = (reply: Reply) => (mode === "cookie" ? reply.cookies[REFRESH_COOKIE]!.value : reply.body.refresh_token);
        expect(childOf(a)).toBe(childOf(b));
        expect(childOf(a)).not.toBe(r0);
        const next = await refreshWith(open, childOf(a));
        expect(next.status).toBe(200);
      });

      describe("reuse detection (REFRESH_REUSE_INTERVAL=0)", () => {
        test("a spent refresh token gets 401 refresh_token_reused and ends that whole session, not the user's others", async () => {
          const client = clientOf(strict);
          expectTokenResponse(await client.register("kim", PASSWORD), mode, 201);
          const other = clientOf(strict);
          expectTokenResponse(await other.login("kim", PASSWORD), mode, 200);
          const r0 = client.refresh!;
          const a0 = client.access!;
          expectTokenResponse(await client.refreshSession(), mode, 200);
          const r1 = client.refresh!;
          const a1 = client.access!;
          expect((await client.me()).status).toBe(200);

          const reused = await refreshWith(strict, r0);
          expectError(reused, 401, "refresh_token_reused");
          expect(reused.headers.get("token")).toBeNull();
          expect(Object.values(reused.cookies).filter((cookie) => cookie.value !== "")).toEqual([]);

          expectError(await refreshWith(strict, r1), 401, "invalid_refresh_token");
          expectInvalidToken(await meWith(strict, a1));
          expectInvalidToken(await meWith(strict, a0));
          // The user's other session is untouched.
          expect((await other.me()).status).toBe(200);
          expectTokenResponse(await other.refreshSession(), mode, 200);
        });

        test("through /token a spent refresh token is invalid_grant and ends the session", async () => {
          expect((await clientOf(strict).register("lena", PASSWORD)).status).toBe(201);
          const granted = await send(strict.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: "lena", password: PASSWORD } });
          expect(granted.status).toBe(200);
          const rotated = await send(strict.url, "POST", `${AUTH}/token`, { form: { grant_type: "refresh_token", refresh_token: granted.body.refresh_token } });
          expect(rotated.status).toBe(200);
          const reused = await send(strict.url, "POST", `${AUTH}/token`, { form: { grant_type: "refresh_token", refresh_token: granted.body.refresh_token } });
          expect({ status: reused.status, error: reused.body.error }).toEqual({ status: 400, error: "invalid_grant" });
          const child = await send(strict.url, "POST", `${AUTH}/token`, { form: { grant_type: "refresh_token", refresh_token: rotated.body.refresh_token } });
          expect({ status: child.status, error: child.body.error }).toEqual({ status: 400, error: "invalid_grant" });
          expectInvalidToken(await meWith(strict, rotated.body.access_token));
        });

        test("two concurrent refreshes with one token leave no two live branches", async () => {
          const client = clientOf(strict);
          expectTokenResponse(await client.register("milo", PASSWORD), mode, 201);
          const r0 = client.refresh!;
          const results = await Promise.all([refreshWith(strict, r0), refreshWith(strict, r0)]);
          expect(results.map((reply) => reply.status).sort()).toEqual([200, 401]);
          const loser = results.find((reply) => reply.status === 401)!;
          expect(loser.body.error).toBe("refresh_token_reused");
          const winner = results.find((reply) => reply.status === 200)!;
          const child = mode === "cookie" ? winner.cookies[REFRESH_COOKIE]!.value : winner.body.refresh_token;
          expectError(await refreshWith(strict, child), 401, "invalid_refresh_token");
        });
      });
    });

    describe("logout and protected routes", () => {
      test("logout ends the session at once: access token 401 invalid_token, refresh token 401; other sessions live", async () => {
        const client = clientOf(open);
        expectTokenResponse(await client.register("nina", PASSWORD), mode, 201);
        const other = clientOf(open);
        expectTokenResponse(await other.login("nina", PASSWORD), mode, 200);
        // A first authenticated request, so a cached session lookup exists that logout must invalidate.
        expect((await client.me()).status).toBe(200);
        const access = client.access!;
        const refresh = client.refresh!;

        const logout = await client.logout();
        expect(logout.status).toBe(200);
        expect(Object.keys(logout.body)).toEqual(["message"]);
        expect(typeof logout.body.message).toBe("string");
        expect(logout.headers.get("token")).toBeNull();
        if (mode === "cookie") {
          expectCookieAttributes(logout, false, true);
          expect(client.jar.size).toBe(0);
        } else {
          expect(logout.headers.getSetCookie()).toEqual([]);
        }

        expectInvalidToken(await meWith(open, access));
        expectInvalidToken(await send(open.url, "GET", `${AUTH}/validate`, { headers: credential(mode, access) }));
        expectInvalidToken(await send(open.url, "POST", `${AUTH}/logout`, { headers: { ...credential(mode, access), origin: PUBLIC_URL } }));
        expectError(await refreshWith(open, refresh), 401, "invalid_refresh_token");
        expect((await other.me()).status).toBe(200);
      });

      test("no credential: 401 unauthorized with a Bearer challenge; a malformed or forged one: 401 invalid_token", async () => {
        for (const path of ["/me", "/validate"]) {
          const none = await send(open.url, "GET", `${AUTH}${path}`);
          expectError(none, 401, "unauthorized");
          expect(none.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
          expect(none.headers.get("token")).toBeNull();
        }
        expectError(await send(open.url, "POST", `${AUTH}/logout`, { headers: { origin: PUBLIC_URL } }), 401, "unauthorized");

        const client = clientOf(open);
        expectTokenResponse(await client.register("oscar", PASSWORD), mode, 201);
        const [header, payload, signature] = client.access!.split(".");
        const forged = `${header}.${Buffer.from(JSON.stringify({ ...jwtClaims(client.access!), sub: "someone-else" })).toString("base64url")}.${signature}`;
        for (const token of ["not.a.jwt", forged, `${header}.${payload}.`, `${client.access}x`]) {
          const reply = await meWith(open, token);
          expectInvalidToken(reply);
          expect(reply.headers.get("token")).toBeNull();
        }
      });

      test("access JWTs: HS256 with the server's key, its issuer, unexpired and of a live session; anything else 401", async () => {
        const client = clientOf(open);
        expectTokenResponse(await client.register("olga", PASSWORD), mode, 201);
        const claims = jwtClaims(client.access!);
        const key = (await Bun.file(join(open.dataDir, "jwt_secret")).text()).trim();
        const now = Math.floor(Date.now() / 1000);
        // Control: the genuine claims signed with the genuine key pass, so each refusal below is about one change.
        expect((await meWith(open, signJwt({ ...claims, jti: crypto.randomUUID() }, key))).status).toBe(200);
        const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${client.access!.split(".")[1]}.`;
        const refused = [
          none,
          signJwt(claims, key, "HS512"),
          signJwt(claims, key, "HS384"),
          signJwt(claims, "another secret of at least 32 bytes!"),
          signJwt({ ...claims, iss: "http://elsewhere.test" }, key),
          signJwt({ ...claims, iat: now - 7200, exp: now - 3600 }, key),
          signJwt({ ...claims, sid: "no-such-session" }, key),
          signJwt({ sub: claims.sub, iss: claims.iss, iat: claims.iat, exp: claims.exp, jti: claims.jti }, key),
        ];
        for (const token of refused) expectInvalidToken(await meWith(open, token));
      });

      test("every authenticated answer is Cache-Control: no-store (it is about one user)", async () => {
        const client = clientOf(open);
        expect((await client.register("uncached", PASSWORD)).status).toBe(201);
        for (const path of ["/me", "/validate", "/sessions", "/keys", "/events"]) {
          const reply = await client.request("GET", `${AUTH}${path}`);
          expect({ path, status: reply.status, cacheControl: reply.headers.get("cache-control") }).toEqual({ path, status: 200, cacheControl: "no-store" });
        }
      });

      test("the access token is read only where this mode carries it", async () => {
        const client = clientOf(open);
        expectTokenResponse(await client.register("pia", PASSWORD), mode, 201);
        const access = client.access!;
        expect((await meWith(open, access)).status).toBe(200);
        const elsewhere: Record<string, string>[] = [];
        if (mode !== "header") elsewhere.push({ token: access });
        if (mode !== "cookie") elsewhere.push({ cookie: `${ACCESS_COOKIE}=${access}` });
        for (const headers of elsewhere) expectError(await send(open.url, "GET", `${AUTH}/me`, { headers }), 401, "unauthorized");
      });

      test(mode === "header" ? "every authenticated response carries a fresh, working Token; a client copying it stays signed in" : "no Token response header outside header mode", async () => {
        const client = clientOf(open);
        const { claims: first } = expectTokenResponse(await client.register("quinn", PASSWORD), mode, 201);
        let previous = client.access!;
        let previousClaims = first;
        const seen = new Set([previous]);
        for (let request = 0; request < 6; request++) {
          const reply = request % 2 === 0 ? await client.me() : await client.validate();
          expect(reply.status).toBe(200);
          const fresh = reply.headers.get("token");
          if (mode !== "header") {
            expect(fresh).toBeNull();
            continue;
          }
          expect(fresh).not.toBeNull();
          expect(reply.headers.get("cache-control")).toBe("no-store");
          expect(seen.has(fresh!)).toBe(false);
          seen.add(fresh!);
          const claims = jwtClaims(fresh!);
          expect(claims.sid).toBe(first.sid);
          expect(claims.sub).toBe(first.sub);
          expect(claims.exp).toBeGreaterThanOrEqual(previousClaims.exp);
          expect(claims.exp - claims.iat).toBe(ACCESS_TTL);
          // The fresh token works on its own, and the client presented it (not the first one) next time.
          expect((await meWith(open, fresh!)).status).toBe(200);
          expect(client.access).toBe(fresh!);
          previous = fresh!;
          previousClaims = claims;
        }
        if (mode === "header") expect(seen.size).toBe(7);
        const health = await send(open.url, "GET", "/health", { headers: credential(mode, previous) });
        expect(health.status).toBe(200);
        expect(health.body).toEqual({ status: "ok" });
        expect(health.headers.get("token")).toBeNull();
      });
    });

    if (mode === "cookie") {
      describe("cookie mode", () => {
        test("login and refresh set both cookies with their exact attributes (PUBLIC_URL http: no Secure); tokens never in a body", async () => {
          expect((await clientOf(open).register("rosa", PASSWORD)).status).toBe(201);
          const client = clientOf(open);
          const login = await client.login("rosa", PASSWORD);
          expectTokenResponse(login, mode, 200, { secure: false });
          const refresh = await client.refreshSession();
          expectTokenResponse(refresh, mode, 200, { secure: false });
          expect(refresh.cookies[REFRESH_COOKIE]!.value).not.toBe(login.cookies[REFRESH_COOKIE]!.value);
          for (const reply of [await client.me(), await client.validate()]) {
            expect(reply.status).toBe(200);
            expect(reply.text).not.toContain(client.jar.get(ACCESS_COOKIE)!.value);
            expect(reply.text).not.toContain(client.jar.get(REFRESH_COOKIE)!.value);
            expect(reply.headers.getSetCookie()).toEqual([]);
          }
        });

        test("CSRF: a cookie-authenticated POST from a foreign or unknown origin gets 403 csrf_rejected and changes nothing", async () => {
          const client = clientOf(open);
          expectTokenResponse(await client.register("sam", PASSWORD), mode, 201);
          const refused: Record<string, string>[] = [
            { origin: "https://evil.example" },
            { origin: PUBLIC_URL, "sec-fetch-site": "cross-site" },
            { origin: APP_ORIGIN, "sec-fetch-site": "cross-site" },
            { origin: "null" },
            { origin: `${PUBLIC_URL}.evil.example` },
            { origin: "http://latchkey.test:8080" },
            { origin: "https://latchkey.test" },
            { referer: "https://evil.example/page" },
            {}, // neither Origin nor Referer
          ];
          client.origin = undefined;
          for (const headers of refused) {
            for (const path of ["/logout", "/refresh"]) {
              const reply = await client.request("POST", `${AUTH}${path}`, { json: {}, headers });
              expectError(reply, 403, "csrf_rejected");
              expect(reply.headers.getSetCookie()).toEqual([]);
            }
          }
          // Nothing changed: the session and its refresh token are intact, and reads need no Origin.
          const read = await client.request("GET", `${AUTH}/me`, { headers: { origin: "https://evil.example" } });
          expect(read.status).toBe(200);
          expect((await client.validate()).status).toBe(200);

          const allowed: Record<string, string>[] = [
            { origin: PUBLIC_URL },
            { origin: APP_ORIGIN },
            { origin: "http://localhost:5173" },
            { referer: `${PUBLIC_URL}/account/settings` },
            { origin: PUBLIC_URL, "sec-fetch-site": "same-origin" },
          ];
          for (const headers of allowed) expectTokenResponse(await client.refreshSession(headers), mode, 200);
          const logout = await client.logout({ origin: APP_ORIGIN });
          expect(logout.status).toBe(200);
          expect(client.jar.size).toBe(0);
          expectError(await client.me(), 401, "unauthorized");
        });

        test("a credential cookie sent twice (one planted for a parent domain or a longer path) is refused, not picked", async () => {
          const client = clientOf(open);
          expect((await client.register("twice", PASSWORD)).status).toBe(201);
          const mine = client.access!;
          const other = clientOf(open);
          expect((await other.register("planter", PASSWORD)).status).toBe(201);
          for (const cookie of [`${ACCESS_COOKIE}=${other.access}; ${ACCESS_COOKIE}=${mine}`, `${ACCESS_COOKIE}=${mine}; ${ACCESS_COOKIE}=${other.access}`])
            expectInvalidToken(await send(open.url, "GET", `${AUTH}/me`, { headers: { cookie } }));
          expect((await meWith(open, mine)).body.user.username).toBe("twice");
          const refreshes = await send(open.url, "POST", `${AUTH}/refresh`, {
            json: {},
            headers: { origin: PUBLIC_URL, cookie: `${REFRESH_COOKIE}=aaaa; ${REFRESH_COOKIE}=bbbb` },
          });
          expectError(refreshes, 401, "invalid_refresh_token");
        });

        test("the Origin check applies to cookie credentials only: a bearer-authenticated POST from anywhere works", async () => {
          const granted = await send(open.url, "POST", `${AUTH}/token`, { json: { grant_type: "password", username: "sam", password: PASSWORD } });
          expect(granted.status).toBe(200);
          const logout = await send(open.url, "POST", `${AUTH}/logout`, {
            headers: { authorization: `Bearer ${granted.body.access_token}`, origin: "https://evil.example" },
          });
          expect(logout.status).toBe(200);
          expectInvalidToken(await send(open.url, "GET", `${AUTH}/me`, { headers: { authorization: `Bearer ${granted.body.access_token}` } }));
        });

        test("register and the second sign-in step from a foreign origin are refused (login CSRF) and set no cookie", async () => {
          const registered = await send(open.url, "POST", `${AUTH}/register`, {
            json: { username: "planted", password: PASSWORD },
            headers: { origin: "https://evil.example" },
          });
          expectError(registered, 403, "csrf_rejected");
          expect(registered.headers.getSetCookie()).toEqual([]);
          // No account was made: the name is still free for its owner.
          expect((await send(open.url, "POST", `${AUTH}/register`, { json: { username: "planted", password: PASSWORD }, headers: { origin: PUBLIC_URL } })).status).toBe(201);
          const verified = await send(open.url, "POST", `${AUTH}/login/verify`, {
            json: { challenge_id: "x".repeat(43), code: "123456" },
            headers: { "sec-fetch-site": "cross-site" },
          });
          expectError(verified, 403, "csrf_rejected");
          expect(verified.headers.getSetCookie()).toEqual([]);
        });

        test("login from a foreign origin is refused (login CSRF) and sets no cookie", async () => {
          const reply = await send(open.url, "POST", `${AUTH}/login`, {
            json: { username: "sam", password: PASSWORD },
            headers: { origin: "https://evil.example" },
          });
          expectError(reply, 403, "csrf_rejected");
          expect(reply.headers.getSetCookie()).toEqual([]);
        });

        describe("PUBLIC_URL https", () => {
          let secure: RunningServer;
          beforeAll(async () => {
            secure = await startServer({ ...BASE_ENV, PUBLIC_URL: "https://auth.example.test", TOKEN_DELIVERY: "cookie", ALLOW_REGISTRATION: "true" });
          });
          afterAll(async () => {
            await stopAndRemove(secure);
          });

          test("both cookies are Secure on register, login, refresh and logout", async () => {
            const client = new Client(secure.url, "cookie", { origin: "https://auth.example.test" });
            const registered = await client.register("tess", PASSWORD);
            expect(registered.status).toBe(201);
            expectCookieAttributes(registered, true);
            expectCookieAttributes(await client.login("tess", PASSWORD), true);
            expectCookieAttributes(await client.refreshSession(), true);
            const logout = await client.logout();
            expect(logout.status).toBe(200);
            expectCookieAttributes(logout, true, true);
          });
        });
      });
    }

    describe("bad input", () => {
      const post = (path: string, raw: RawBody, contentType: string) =>
        send(open.url, "POST", `${AUTH}${path}`, { raw, headers: { "content-type": contentType, origin: PUBLIC_URL } });

      test("malformed JSON: 400 invalid_json", async () => {
        for (const path of ["/register", "/login", "/refresh"]) {
          for (const raw of ["{not json", '{"username": "x",', "{'username': 'x'}"]) {
            const reply = await post(path, raw, "application/json");
            expectError(reply, 400, "invalid_json");
            expect(Object.keys(reply.body).sort()).toEqual(["error", "message"]);
          }
        }
      });

      test("unsupported content type: 415", async () => {
        for (const path of ["/register", "/login", "/refresh"]) {
          for (const [raw, type] of [
            ['{"username":"x","password":"y"}', "text/plain"],
            ["username=x&password=y", "application/x-www-form-urlencoded"],
            ["<login/>", "application/xml"],
          ]) {
            const reply = await post(path, raw!, type!);
            expectError(reply, 415, "unsupported_media_type");
          }
        }
      });

      test("a body over 64 KiB: 413, declared or chunked; exactly 64 KiB is read", async () => {
        const over = JSON.stringify({ username: "nobody-here", password: PASSWORD, pad: "z".repeat(65_536) });
        for (const path of ["/register", "/login", "/refresh", "/token"]) {
          expectError(await post(path, over, "application/json"), 413, "payload_too_large");
        }
        // A stream of unknown length goes out chunked, with no Content-Length to refuse it by.
        const chunked = new ReadableStream<Uint8Array>({
          start(controller) {
            const bytes = new TextEncoder().encode(over);
            for (let at = 0; at < bytes.length; at += 8192) controller.enqueue(bytes.slice(at, at + 8192));
            controller.close();
          },
        });
        expectError(await post("/login", chunked, "application/json"), 413, "payload_too_large");

        const base = JSON.stringify({ username: "nobody-here", password: PASSWORD, pad: "" });
        const exact = JSON.stringify({ username: "nobody-here", password: PASSWORD, pad: "z".repeat(65_536 - base.length) });
        expect(Buffer.byteLength(exact)).toBe(65_536);
        expectError(await post("/login", exact, "application/json"), 401, "invalid_credentials");
      });

      test("unknown route: 404 not_found", async () => {
        for (const [method, path] of [
          ["GET", "/nope"],
          ["GET", "/api/v1/nope"],
          ["POST", `${AUTH}/nope`],
          ["GET", "/api/v2/auth/me"],
        ] as const) {
          const reply = await send(open.url, method, path, method === "POST" ? { json: {} } : {});
          expectError(reply, 404, "not_found");
          expect(Object.keys(reply.body).sort()).toEqual(["error", "message"]);
        }
      });

      test("known path, wrong method: 405 method_not_allowed with Allow", async () => {
        for (const [method, path, allow] of [
          ["GET", `${AUTH}/login`, "POST"],
          ["DELETE", `${AUTH}/me`, "GET, HEAD"],
          ["PUT", "/api/v1/admin/users/0190a0b0-0000-7000-8000-000000000000", "DELETE, GET, HEAD, PATCH"],
        ] as const) {
          const reply = await send(open.url, method, path);
          expectError(reply, 405, "method_not_allowed");
          expect(reply.headers.get("allow")).toBe(allow);
        }
      });

      test("GET / links to the docs (JSON), and sends a browser to its account page", async () => {
        const api = await send(open.url, "GET", "/");
        expect(api.status).toBe(200);
        expect(api.body).toMatchObject({ docs: "/docs", openapi: "/docs/json", health: "/health", sign_in: "/login" });
        const browser = await send(open.url, "GET", "/", { headers: { accept: "text/html,application/xhtml+xml" } });
        expect(browser.status).toBe(302);
        expect(browser.headers.get("location")).toBe("/account");
      });

      test("bodies of the wrong JSON type get 422, never a 500", async () => {
        for (const raw of ["null", "[]", '"text"', "42", "true", '{"username":{"$ne":null},"password":["x"]}', ""]) {
          for (const path of ["/register", "/login"]) {
            const reply = await post(path, raw, "application/json");
            expectError(reply, 422, "validation_failed");
            expect(reply.body.details.length).toBeGreaterThan(0);
          }
        }
        expectError(await post("/refresh", '{"refresh_token": 42}', "application/json"), 422, "validation_failed");
      });
    });

    test("CORS: ALLOWED_ORIGINS get credentialed CORS (header mode exposes Token); other origins get none", async () => {
      const preflight = await send(open.url, "OPTIONS", `${AUTH}/me`, {
        headers: { origin: APP_ORIGIN, "access-control-request-method": "GET", "access-control-request-headers": "token, authorization, content-type" },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
      expect(preflight.headers.get("access-control-allow-credentials")).toBe("true");
      const allowedHeaders = (preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/\s*,\s*/);
      expect(allowedHeaders).toEqual(expect.arrayContaining(mode === "header" ? ["token", "content-type"] : ["content-type"]));

      const client = new Client(open.url, mode, { origin: APP_ORIGIN });
      expect((await client.register("cora", PASSWORD)).status).toBe(201);
      const me = await client.me();
      expect(me.status).toBe(200);
      expect(me.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
      expect(me.headers.get("access-control-allow-credentials")).toBe("true");
      if (mode === "header") expect((me.headers.get("access-control-expose-headers") ?? "").toLowerCase()).toContain("token");

      const foreign = await send(open.url, "OPTIONS", `${AUTH}/me`, { headers: { origin: "https://evil.example", "access-control-request-method": "GET" } });
      expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
      const foreignGet = await send(open.url, "GET", "/health", { headers: { origin: "https://evil.example" } });
      expect(foreignGet.headers.get("access-control-allow-origin")).toBeNull();
    });

    if (mode === "header")
      describe("header mode's sliding session", () => {
        let sliding: RunningServer;
        beforeAll(async () => {
          sliding = await startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true", ACCESS_TOKEN_TTL: "2s", REFRESH_TOKEN_TTL: "3s" });
        });
        afterAll(async () => {
          await stopAndRemove(sliding);
        });

        test("a client that copies Token stays signed in past both TTLs while active, and is signed out after REFRESH_TOKEN_TTL idle", async () => {
          const client = clientOf(sliding);
          expect((await client.register("sam", PASSWORD)).status).toBe(201);
          const sid = jwtClaims(client.access!).sid;
          // Active for 7 s (more than twice each TTL), a request every quarter second, never calling /refresh.
          for (const until = Date.now() + 7000; Date.now() < until; await Bun.sleep(250)) {
            const reply = await client.me();
            expect(reply.status).toBe(200);
            expect(jwtClaims(client.access!).sid).toBe(sid);
          }
          // Idle: wait, without touching the server, until the session's end has passed...
          const db = new Database(join(sliding.dataDir, "latchkey.db"), { readonly: true });
          try {
            const sessionEnd = () => (db.query("SELECT expires_at FROM sessions WHERE id = ?").get(sid) as { expires_at: number }).expires_at;
            await waitFor(
              async () => sessionEnd(),
              (end) => end < Date.now(),
              5000,
            );
          } finally {
            db.close();
          }
          // ...then the last sliding token, which never outlives its session, is refused.
          expectInvalidToken(await client.me());
        });
      });

    describe("a session shorter than ACCESS_TOKEN_TTL", () => {
      let short: RunningServer;
      beforeAll(async () => {
        short = await startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true", ACCESS_TOKEN_TTL: "1h", REFRESH_TOKEN_TTL: "10m" });
      });
      afterAll(async () => {
        await stopAndRemove(short);
      });

      test("no access token outlives its session, sliding ones included", async () => {
        const client = clientOf(short);
        const registered = await client.register("vera", PASSWORD);
        expect(registered.status).toBe(201);
        expect(registered.body.expires_in).toBeLessThanOrEqual(600);
        const tokens = [client.access!];
        if (mode === "cookie") expect(Number(registered.cookies[ACCESS_COOKIE]!.attributes["max-age"])).toBeLessThanOrEqual(600);
        for (let request = 0; request < 2; request++) {
          expect((await client.me()).status).toBe(200);
          tokens.push(client.access!);
        }
        for (const token of tokens) {
          const claims = jwtClaims(token);
          expect(claims.exp - claims.iat).toBeLessThanOrEqual(600);
        }
      });
    });

    test("restart on the same DATA_DIR keeps users, sessions and the generated secret (mode 0600)", async () => {
      const dataDir = tempDataDir();
      const secretPath = join(dataDir, "jwt_secret");
      let server: RunningServer | undefined = await startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true" }, dataDir);
      try {
        const client = clientOf(server);
        const { user, claims } = expectTokenResponse(await client.register("uma", PASSWORD, "uma@example.com"), mode, 201);
        const secret = await Bun.file(secretPath).text();
        expect(secret.trim().length).toBeGreaterThanOrEqual(43);
        expect(statSync(secretPath).mode & 0o777).toBe(0o600);
        expect(await server.stop()).toBe(0);
        server = undefined;

        server = await startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "false" }, dataDir);
        expect(await Bun.file(secretPath).text()).toBe(secret);
        expect(statSync(secretPath).mode & 0o777).toBe(0o600);

        // The access token issued before the restart still validates, the session and its refresh token live on.
        const again = new Client(server.url, mode, { origin: PUBLIC_URL });
        again.setAccess(client.access!);
        again.setRefresh(client.refresh!);
        const validate = await again.validate();
        expect(validate.status).toBe(200);
        expect(validate.body).toMatchObject({ user_id: user.id, username: "uma", session_id: claims.sid });
        expectTokenResponse(await again.refreshSession(), mode, 200);
        expect((await again.me()).body.user.id).toBe(user.id);

        const login = await clientOf(server).login("UMA@example.com", PASSWORD);
        expect(expectTokenResponse(login, mode, 200).user.id).toBe(user.id);
        expectError(await clientOf(server).register("uma2", PASSWORD), 403, "registration_disabled");
      } finally {
        if (server) expect(await server.stop()).toBe(0);
        removeDataDir(dataDir);
      }
    });

    test("the servers log no password, no internal error and no stack trace (after all of the above, and on their own)", async () => {
      const secrets = [PASSWORD, "wrong horse battery", "ﬁne passphrase", "fine passphrase", "secret7", "Pw0rd!x", "é".repeat(64)];
      for (const server of [open, closed, strict]) {
        // Run alone, this test still sends every secret it looks for: it cannot pass for want of anything to log.
        for (const secret of secrets) {
          const reply = await send(server.url, "POST", `${AUTH}/login`, { json: { username: "nobody-here", password: secret } });
          expect([401, 422, 429]).toContain(reply.status);
        }
        expect(server.output()).toContain("login_failed");
        const output = server.output();
        for (const secret of secrets) expect(output).not.toContain(secret);
        expect(output).not.toContain("internal_error");
        expect(output).not.toMatch(/^\s+at /m);
      }
    });
  });
}
