/**
 * Issue 2's contract, shared by the contract-*.test.ts files: each runs its rows against the compiled binary in
 * each of the three TOKEN_DELIVERY modes, on three servers per mode (registration open, registration closed,
 * REFRESH_REUSE_INTERVAL=0), and ends by checking that those servers logged no password or stack trace.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ACCESS_COOKIE, AUTH, Client, REFRESH_COOKIE, credential, jwtClaims, send, type Mode, type Reply } from "./client";
import { openTestDatabase } from "./database";
import { removeDataDir, startServer, type RunningServer } from "./server";

export const PASSWORD = "correct horse battery";
export const PUBLIC_URL = "http://latchkey.test";
export const APP_ORIGIN = "https://app.example.test";
export const ACCESS_TTL = 900;
export const REFRESH_TTL = 7 * 86400;
export const BASE_ENV = {
  RATE_LIMIT: "off",
  PUBLIC_URL,
  ALLOWED_ORIGINS: `${APP_ORIGIN}, http://localhost:5173`,
  ACCESS_TOKEN_TTL: "15m",
  REFRESH_TOKEN_TTL: "7d",
  // Long enough that no retry in these tests can fall outside it on a slow machine.
  REFRESH_REUSE_INTERVAL: "5m",
};
export const USER_KEYS = ["created_at", "email", "email_verified", "id", "roles", "username"];

export function expectCookieAttributes(reply: Reply, secure: boolean, cleared = false) {
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
export function expectTokenResponse(reply: Reply, mode: Mode, status: number, options: { secure?: boolean } = {}) {
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

export function expectError(reply: Reply, status: number, code: string) {
  expect({ status: reply.status, error: reply.body?.error }).toEqual({ status, error: code });
  expect(typeof reply.body.message).toBe("string");
  expect(reply.body.message.length).toBeGreaterThan(0);
}

/** 401 invalid_token with the RFC 6750 challenge. */
export function expectInvalidToken(reply: Reply) {
  expectError(reply, 401, "invalid_token");
  expect(reply.headers.get("www-authenticate")).toMatch(/^Bearer\b.*\berror="invalid_token"/);
}

/** Disables the user in the database, behind the server's back (as another process would). */
export async function disableUser(dataDir: string, username: string) {
  const db = await openTestDatabase(dataDir, { writable: true });
  try {
    await db.run("UPDATE users SET disabled = TRUE WHERE username = ?", username);
    expect(await db.get("SELECT disabled FROM users WHERE username = ?", username)).toEqual({ disabled: 1 });
  } finally {
    await db.close();
  }
}

export async function stopAndRemove(...servers: (RunningServer | undefined)[]) {
  for (const server of servers) {
    if (!server) continue;
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  }
}

/** The three servers of one mode's contract rows (started in beforeAll, stopped in afterAll), and how to talk to them. */
export function contractServers(mode: Mode) {
  const servers = {} as { open: RunningServer; closed: RunningServer; strict: RunningServer };
  beforeAll(async () => {
    [servers.open, servers.closed, servers.strict] = await Promise.all([
      startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true" }),
      // ALLOW_REGISTRATION unset: the default is closed.
      startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode }),
      startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true", REFRESH_REUSE_INTERVAL: "0" }),
    ]);
  });
  afterAll(async () => {
    await stopAndRemove(servers.open, servers.closed, servers.strict);
  });
  return {
    servers,
    /** A client of `server` that sends Origin = PUBLIC_URL, like a page served from it. */
    clientOf: (server: RunningServer) => new Client(server.url, mode, { origin: PUBLIC_URL }),
    /** Presents the refresh token `token` the mode's way, with no other credential. */
    refreshWith: (server: RunningServer, token: string) =>
      mode === "cookie"
        ? send(server.url, "POST", `${AUTH}/refresh`, { json: {}, headers: { origin: PUBLIC_URL, cookie: `${REFRESH_COOKIE}=${token}` } })
        : send(server.url, "POST", `${AUTH}/refresh`, { json: { refresh_token: token } }),
    /** GET /me with `token` presented the mode's way and nothing else. */
    meWith: (server: RunningServer, token: string) => send(server.url, "GET", `${AUTH}/me`, { headers: credential(mode, token) }),
  };
}

/** The last test of a contract file: its servers logged no password, no internal error and no stack trace. */
export function testNothingSecretLogged(servers: { open: RunningServer; closed: RunningServer; strict: RunningServer }) {
    test("the servers log no password, no internal error and no stack trace (after all of the above, and on their own)", async () => {
      const secrets = [PASSWORD, "wrong horse battery", "ﬁne passphrase", "fine passphrase", "secret7", "Pw0rd!x", "é".repeat(64)];
      for (const server of [servers.open, servers.closed, servers.strict]) {
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
}
