import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../support/client";
import { bearer, call } from "../support/http";
import { removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";
import { openTestDatabase, time, minus, type TestDatabase } from "../support/database";

const PASSWORD = "a long passphrase";
const from = (ip: string) => ({ "x-forwarded-for": ip });

async function addUser(server: RunningServer, username: string, extra: string[] = []) {
  const result = await runCli(["user", "add", username, ...extra], { DATA_DIR: server.dataDir }, PASSWORD);
  expect(result.code).toBe(0);
}

const login = (server: RunningServer, username: string, password: string, headers: Record<string, string> = {}) =>
  call(server.url, "POST", "/api/v1/auth/login", { username, password }, headers);

describe("brute-force limits per (account, IP) and per account", () => {
  let server: RunningServer;
  beforeAll(async () => {
    // The per-IP bucket is large here so that only the failure counters are under test.
    server = await startServer({ TRUST_PROXY: "true", RATE_LIMIT_IP: "1000/1m", RATE_LIMIT_IP_BURST: "1000" });
    await addUser(server, "victim");
    await addUser(server, "owner");
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("the 6th bad password from one address is delayed; the owner at another address still signs in", async () => {
    for (let attempt = 1; attempt <= 5; attempt++) expect((await login(server, "victim", "wrong password", from("203.0.113.1"))).status).toBe(401);
    const sixth = await login(server, "victim", "wrong password", from("203.0.113.1"));
    expect(sixth.status).toBe(429);
    expect(sixth.body).toEqual({ error: "rate_limited", message: "Too many attempts. Try again later." });
    expect(Number(sixth.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // Even the right password waits out the delay from the attacker's address...
    expect((await login(server, "victim", PASSWORD, from("203.0.113.1"))).status).toBe(429);
    // ...while the owner's own address is untouched.
    expect((await login(server, "victim", PASSWORD, from("198.51.100.7"))).status).toBe(200);
    // The refusals are in the victim's audit trail with the attacker's address, once a minute per address.
    const db = await openTestDatabase(server.dataDir);
    try {
      const rows = await db.all(
        "SELECT a.event, a.ip, a.detail FROM audit_events a JOIN users u ON u.id = a.user_id WHERE u.username = 'victim' AND a.event = 'rate_limited' ORDER BY a.id",
      );
      expect(rows).toEqual([{ event: "rate_limited", ip: "203.0.113.1", detail: '{"scope":"account"}' }]);
    } finally {
      await db.close();
    }
  });

  test("a throttled unknown name answers exactly like a throttled real account", async () => {
    for (let attempt = 1; attempt <= 5; attempt++) {
      expect((await login(server, "owner", "wrong password", from("203.0.113.2"))).status).toBe(401);
      expect((await login(server, "ghost-user", "wrong password", from("203.0.113.2"))).status).toBe(401);
    }
    const real = await login(server, "owner", "wrong password", from("203.0.113.2"));
    const ghost = await login(server, "ghost-user", "wrong password", from("203.0.113.2"));
    expect(real.status).toBe(429);
    expect(ghost.status).toBe(429);
    expect(ghost.body).toEqual(real.body);
    expect(ghost.headers.get("retry-after")).toBe(real.headers.get("retry-after"));
  });

  test("the 51st failure in a row across many addresses hits the account backstop", async () => {
    await addUser(server, "backstop");
    for (let attempt = 0; attempt < 50; attempt++) {
      const response = await login(server, "backstop", "wrong password", from(`192.0.2.${Math.floor(attempt / 4) + 1}`));
      expect(response.status).toBe(401);
    }
    const fiftyFirst = await login(server, "backstop", PASSWORD, from("192.0.2.200"));
    expect(fiftyFirst.status).toBe(429);
    expect(fiftyFirst.body.error).toBe("rate_limited");
  });
});

describe("brute-force limits under parallel load, across names, over time", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ TRUST_PROXY: "true", RATE_LIMIT_IP: "1000/1m", RATE_LIMIT_IP_BURST: "1000", RATE_LIMIT_MAX_DELAY: "2s" });
    await addUser(server, "racer");
    await addUser(server, "spread");
    await addUser(server, "vic", ["--email", "vic@example.com"]);
    await addUser(server, "timer");
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  const statuses = (replies: { status: number }[]) =>
    replies.reduce<Record<number, number>>((counts, reply) => ({ ...counts, [reply.status]: (counts[reply.status] ?? 0) + 1 }), {});

  test("40 wrong passwords sent at once from one address: exactly 5 are checked, 35 get 429", async () => {
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => login(server, "racer", `wrong password ${i}`, from("203.0.113.40"))));
    expect(statuses(replies)).toEqual({ 401: 5, 429: 35 });
  });

  test("120 wrong passwords sent at once from 120 addresses: the account backstop lets exactly 50 through", async () => {
    const replies = await Promise.all(
      Array.from({ length: 120 }, (_, i) => login(server, "spread", "wrong password", from(`198.18.${Math.floor(i / 100)}.${i % 100}`))),
    );
    expect(statuses(replies)).toEqual({ 401: 50, 429: 70 });
  });

  test("an account's username and email share one counter", async () => {
    for (let attempt = 1; attempt <= 3; attempt++) expect((await login(server, "vic", "wrong password", from("203.0.113.41"))).status).toBe(401);
    for (let attempt = 1; attempt <= 2; attempt++)
      expect((await login(server, "VIC@example.com", "wrong password", from("203.0.113.41"))).status).toBe(401);
    expect((await login(server, "vic@example.com", PASSWORD, from("203.0.113.41"))).status).toBe(429);
    expect((await login(server, "vic", PASSWORD, from("203.0.113.41"))).status).toBe(429);
  });

  test("delays double from 1 s up to RATE_LIMIT_MAX_DELAY, and a correct password ends the run", async () => {
    const ip = from("203.0.113.42");
    const retryAfter = async () => {
      const refused = await login(server, "timer", "wrong password", ip);
      expect(refused.status).toBe(429);
      return Number(refused.headers.get("retry-after"));
    };
    // Waits out the current delay by asking until the account answers again (no fixed sleep).
    const afterDelay = (password: string) =>
      waitFor(
        () => login(server, "timer", password, ip),
        (reply) => reply.status !== 429,
        5000,
      );
    for (let attempt = 1; attempt <= 5; attempt++) expect((await login(server, "timer", "wrong password", ip)).status).toBe(401);
    expect(await retryAfter()).toBe(1);
    expect((await afterDelay("wrong password")).status).toBe(401); // the 6th failure: 2 s
    expect(await retryAfter()).toBe(2);
    expect((await afterDelay("wrong password")).status).toBe(401); // the 7th: 4 s, capped at 2 s
    expect(await retryAfter()).toBe(2);
    expect((await afterDelay(PASSWORD)).status).toBe(200);
    // The run is over: the next wrong password is checked again rather than delayed.
    expect((await login(server, "timer", "wrong password", ip)).status).toBe(401);
  });

  test("/password is behind the same limiter: the current password is throttled per (account, address)", async () => {
    const session = await login(server, "vic", PASSWORD, from("203.0.113.43"));
    expect(session.status).toBe(200);
    const change = (current: string) =>
      call(
        server.url,
        "POST",
        "/api/v1/auth/password",
        { current_password: current, new_password: "another long passphrase" },
        { ...bearer(session.body.access_token), ...from("203.0.113.43") },
      );
    for (let attempt = 1; attempt <= 5; attempt++) {
      const wrong = await change("wrong password");
      expect(wrong.status).toBe(403);
      expect(wrong.body.error).toBe("invalid_current_password");
    }
    const limited = await change(PASSWORD);
    expect(limited.status).toBe(429);
    expect(limited.body.error).toBe("rate_limited");
    // The same counter as a login to that account from that address.
    expect((await login(server, "vic", PASSWORD, from("203.0.113.43"))).status).toBe(429);
  });
});

test("failure counters live in SQLite and survive a restart", async () => {
  const dataDir = tempDataDir();
  const env = { TRUST_PROXY: "true", RATE_LIMIT_IP: "1000/1m", RATE_LIMIT_IP_BURST: "1000" };
  let server = await startServer(env, dataDir);
  await addUser(server, "restarter");
  for (let attempt = 1; attempt <= 4; attempt++) expect((await login(server, "restarter", "wrong password", from("203.0.113.9"))).status).toBe(401);
  expect(await server.stop()).toBe(0);

  server = await startServer(env, dataDir);
  // Four failures before the restart plus this fifth one reach the threshold only if the count survived.
  expect((await login(server, "restarter", "wrong password", from("203.0.113.9"))).status).toBe(401);
  expect((await login(server, "restarter", PASSWORD, from("203.0.113.9"))).status).toBe(429);
  expect(await server.stop()).toBe(0);
  removeDataDir(dataDir);
});

describe("per-IP limit and TRUST_PROXY", () => {
  test("over the per-IP burst: 429 with Retry-After, and a spoofed X-Forwarded-For changes nothing", async () => {
    const server = await startServer({ RATE_LIMIT_IP: "20/1m", RATE_LIMIT_IP_BURST: "3" });
    try {
      for (let attempt = 0; attempt < 3; attempt++)
        expect((await login(server, "nobody", "wrong password", from(`10.0.0.${attempt}`))).status).toBe(401);
      const limited = await login(server, "nobody", "wrong password", from("10.9.9.9"));
      expect(limited.status).toBe(429);
      expect(limited.body.error).toBe("rate_limited");
      expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      // The limit is checked before the body is even validated.
      const invalid = await call(server.url, "POST", "/api/v1/auth/register", {});
      expect(invalid.status).toBe(429);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });

  test("IPv6 clients are limited per /64: addresses of one /64 share a bucket", async () => {
    const server = await startServer({ TRUST_PROXY: "true", RATE_LIMIT_IP_BURST: "2" });
    try {
      expect((await login(server, "nobody", "wrong password", from("2001:db8:1:2::1"))).status).toBe(401);
      expect((await login(server, "nobody", "wrong password", from("2001:db8:1:2:ffff::9"))).status).toBe(401);
      expect((await login(server, "nobody", "wrong password", from("2001:db8:1:2:abcd::1"))).status).toBe(429);
      expect((await login(server, "nobody", "wrong password", from("2001:db8:1:3::1"))).status).toBe(401);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });

  test("TRUST_PROXY as a hop count takes the address that many hops back; a client's own entries never move into the proxy's slot", async () => {
    const server = await startServer({ TRUST_PROXY: "1", RATE_LIMIT_IP_BURST: "1" });
    try {
      // One trusted hop (the loopback peer): the client is the last X-Forwarded-For entry, whatever precedes it.
      expect((await login(server, "nobody", "wrong password", from("198.51.100.1, 10.1.1.1"))).status).toBe(401);
      expect((await login(server, "nobody", "wrong password", from("198.51.100.2, 10.1.1.1"))).status).toBe(429);
      // A proxy that appends the client's port: the address is still 10.1.1.1 ([v6]:port likewise).
      expect((await login(server, "nobody", "wrong password", from("198.51.100.3, 10.1.1.1:51234"))).status).toBe(429);
      expect((await login(server, "nobody", "wrong password", from("[2001:db8:9::1]:443"))).status).toBe(401);
      expect((await login(server, "nobody", "wrong password", from("2001:db8:9::2"))).status).toBe(429);
      // An entry that is no address is kept, not dropped (dropping it would promote the client's own entry).
      expect((await login(server, "nobody", "wrong password", from("198.51.100.4, unknown"))).status).toBe(401);
      expect((await login(server, "nobody", "wrong password", from("198.51.100.5, unknown"))).status).toBe(429);
      // X-Real-IP is not the configured header: a client sending it picks nothing.
      expect((await login(server, "nobody", "wrong password", { ...from("10.1.1.1"), "x-real-ip": "10.9.9.9" })).status).toBe(429);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });

  test("TRUST_PROXY_HEADER=x-real-ip: the trusted proxy's X-Real-IP is the client, and X-Forwarded-For is ignored", async () => {
    const server = await startServer({ TRUST_PROXY: "127.0.0.1/32", TRUST_PROXY_HEADER: "x-real-ip", RATE_LIMIT_IP_BURST: "1" });
    try {
      expect((await login(server, "nobody", "wrong password", { "x-real-ip": "10.1.1.2", ...from("6.6.6.1") })).status).toBe(401);
      expect((await login(server, "nobody", "wrong password", { "x-real-ip": "10.1.1.2", ...from("6.6.6.2") })).status).toBe(429);
      expect((await login(server, "nobody", "wrong password", { "x-real-ip": "10.1.1.3" })).status).toBe(401);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });

  test("a flood from one IPv6 /64 past its bucket writes one rate_limited row, not one per address", async () => {
    const server = await startServer({ TRUST_PROXY: "true", RATE_LIMIT_IP_BURST: "1" });
    const db = await openTestDatabase(server.dataDir);
    try {
      const replies = [];
      for (let n = 1; n <= 20; n++) replies.push((await login(server, "nobody", "wrong password", from(`2001:db8:7:7::${n.toString(16)}`))).status);
      expect(replies).toEqual([401, ...Array(19).fill(429)]);
      // The per-address audit row follows the 429 (db/../limits/plugin.ts): awaited, not assumed.
      const rows = await waitFor(() => db.all("SELECT ip FROM audit_events WHERE event = 'rate_limited'"), (found) => found.length > 0);
      expect(rows).toEqual([{ ip: "2001:db8:7:7::2" }]);
    } finally {
      await db.close();
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });

  test("with TRUST_PROXY set, each forwarded client has its own bucket", async () => {
    const server = await startServer({ TRUST_PROXY: "127.0.0.1/8", RATE_LIMIT_IP_BURST: "2" });
    try {
      for (const ip of ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
        for (let attempt = 0; attempt < 2; attempt++) expect((await login(server, "nobody", "wrong password", from(ip))).status).toBe(401);
      expect((await login(server, "nobody", "wrong password", from("10.0.0.1"))).status).toBe(429);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });
});

describe("sessions, password change, weak passwords, audit", () => {
  let server: RunningServer;
  let db: TestDatabase;
  beforeAll(async () => {
    server = await startServer({ ALLOW_REGISTRATION: "true", RATE_LIMIT: "off", TOKEN_DELIVERY: "bearer" });
    db = await openTestDatabase(server.dataDir, { writable: true });
  });
  afterAll(async () => {
    await db.close();
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  const events = async (userId: string) =>
    (await db.all<{ event: string }>("SELECT event FROM audit_events WHERE user_id = ? ORDER BY id", userId)).map((row) => row.event);

  test("weak passwords are refused with 422 weak_password", async () => {
    for (const [username, password] of [
      ["weakling", "password123"],
      ["weakling", "Password123"],
      ["samesame", "samesame"],
      ["mailer", "mailer@example.com"],
    ]) {
      const response = await call(server.url, "POST", "/api/v1/auth/register", { username, password, email: "mailer@example.com" });
      expect(response.status).toBe(422);
      expect(response.body.error).toBe("weak_password");
      expect(JSON.stringify(response.body)).not.toContain(password);
    }
  });

  test("list sessions, end one, other users' sessions are not found, logout scopes", async () => {
    const first = await call(server.url, "POST", "/api/v1/auth/register", { username: "dana", password: PASSWORD }, { "user-agent": "first-device" });
    expect(first.status).toBe(201);
    const second = await login(server, "dana", PASSWORD, { "user-agent": "second-device" });
    const third = await login(server, "dana", PASSWORD, { "user-agent": "third-device" });

    const listed = await call(server.url, "GET", "/api/v1/auth/sessions", undefined, bearer(first.body.access_token));
    expect(listed.status).toBe(200);
    expect(listed.body).toHaveLength(3);
    const current = listed.body.filter((session: { current: boolean }) => session.current);
    expect(current).toHaveLength(1);
    expect(current[0].user_agent).toBe("first-device");
    expect(current[0].ip).toBe("127.0.0.1");
    const secondId = listed.body.find((session: { user_agent: string }) => session.user_agent === "second-device").session_id;

    const stranger = await call(server.url, "POST", "/api/v1/auth/register", { username: "eve", password: PASSWORD });
    const notFound = await call(server.url, "DELETE", `/api/v1/auth/sessions/${secondId}`, undefined, bearer(stranger.body.access_token));
    expect(notFound.status).toBe(404);
    expect(notFound.body.error).toBe("session_not_found");

    const ended = await call(server.url, "DELETE", `/api/v1/auth/sessions/${secondId}`, undefined, bearer(first.body.access_token));
    expect(ended.status).toBe(204);
    expect((await call(server.url, "GET", "/api/v1/auth/me", undefined, bearer(second.body.access_token))).status).toBe(401);

    const others = await call(server.url, "POST", "/api/v1/auth/logout?scope=others", undefined, bearer(first.body.access_token));
    expect(others.status).toBe(200);
    expect((await call(server.url, "GET", "/api/v1/auth/me", undefined, bearer(third.body.access_token))).status).toBe(401);
    expect((await call(server.url, "GET", "/api/v1/auth/me", undefined, bearer(first.body.access_token))).status).toBe(200);

    const fourth = await login(server, "dana", PASSWORD);
    const all = await call(server.url, "POST", "/api/v1/auth/logout/all", undefined, bearer(fourth.body.access_token));
    expect(all.status).toBe(200);
    for (const token of [first.body.access_token, fourth.body.access_token])
      expect((await call(server.url, "GET", "/api/v1/auth/me", undefined, bearer(token))).status).toBe(401);
    const refresh = await call(server.url, "POST", "/api/v1/auth/refresh", { refresh_token: first.body.refresh_token });
    expect(refresh.status).toBe(401);
    expect(refresh.body.error).toBe("invalid_refresh_token");

    // scope=global is /logout/all under another name.
    const fifth = await login(server, "dana", PASSWORD);
    const sixth = await login(server, "dana", PASSWORD);
    const global = await call(server.url, "POST", "/api/v1/auth/logout?scope=global", undefined, bearer(fifth.body.access_token));
    expect(global.status).toBe(200);
    expect(global.body.message).toBe("Signed out of 2 session(s).");
    for (const token of [fifth.body.access_token, sixth.body.access_token])
      expect((await call(server.url, "GET", "/api/v1/auth/me", undefined, bearer(token))).status).toBe(401);
    // Ending nothing (scope=others, alone) is answered but writes no audit row: it changed nothing.
    const only = await login(server, "dana", PASSWORD);
    const alone = await call(server.url, "POST", "/api/v1/auth/logout?scope=others", undefined, bearer(only.body.access_token));
    expect(alone.status).toBe(200);
    expect(alone.body.message).toBe("Signed out of 0 session(s).");
    const badScope = await call(server.url, "POST", "/api/v1/auth/logout?scope=everything", undefined, bearer(only.body.access_token));
    expect(badScope.status).toBe(422);

    const userId = first.body.user.id;
    expect(await events(userId)).toEqual([
      "user_registered",
      "login_succeeded",
      "login_succeeded",
      "session_revoked",
      "logout",
      "login_succeeded",
      "logout",
      "login_succeeded",
      "login_succeeded",
      "logout",
      "login_succeeded",
    ]);
  });

  test("password change keeps this session, ends the others, and needs the current password", async () => {
    const here = await call(server.url, "POST", "/api/v1/auth/register", { username: "frank", password: PASSWORD });
    const elsewhere = await login(server, "frank", PASSWORD);

    const wrong = await call(server.url, "POST", "/api/v1/auth/password", { current_password: "not it at all", new_password: "another long passphrase" }, bearer(here.body.access_token));
    expect(wrong.status).toBe(403);
    expect(wrong.body.error).toBe("invalid_current_password");
    const weak = await call(server.url, "POST", "/api/v1/auth/password", { current_password: PASSWORD, new_password: "qwerty123" }, bearer(here.body.access_token));
    expect(weak.status).toBe(422);
    expect(weak.body.error).toBe("weak_password");
    expect(weak.body.details).toEqual([{ field: "new_password", message: weak.body.message }]);
    const unauthenticated = await call(server.url, "POST", "/api/v1/auth/password", {});
    expect(unauthenticated.status).toBe(401);

    const changed = await call(server.url, "POST", "/api/v1/auth/password", { current_password: PASSWORD, new_password: "another long passphrase" }, bearer(here.body.access_token));
    expect(changed.status).toBe(200);
    expect((await call(server.url, "GET", "/api/v1/auth/me", undefined, bearer(here.body.access_token))).status).toBe(200);
    expect((await call(server.url, "GET", "/api/v1/auth/me", undefined, bearer(elsewhere.body.access_token))).status).toBe(401);
    expect((await login(server, "frank", PASSWORD)).status).toBe(401);
    expect((await login(server, "frank", "another long passphrase")).status).toBe(200);
    expect(await events(here.body.user.id)).toContain("password_changed");
  });

  test("refresh reuse is audited and a failed login names no password", async () => {
    const session = await call(server.url, "POST", "/api/v1/auth/register", { username: "gina", password: PASSWORD });
    await login(server, "gina", "the wrong one entirely");
    const rotated = await call(server.url, "POST", "/api/v1/auth/refresh", { refresh_token: session.body.refresh_token });
    expect(rotated.status).toBe(200);
    await db.run(`UPDATE refresh_tokens SET spent_at = ${minus("spent_at", 60000)} WHERE spent_at IS NOT NULL`);
    const reused = await call(server.url, "POST", "/api/v1/auth/refresh", { refresh_token: session.body.refresh_token });
    expect(reused.status).toBe(401);
    expect(reused.body.error).toBe("refresh_token_reused");
    expect(await events(session.body.user.id)).toEqual(["user_registered", "login_failed", "refresh_reuse_detected"]);
    expect(await server.waitForOutput('"event":"refresh_reuse_detected"')).not.toContain("the wrong one entirely");
  });
});

test("a hash made with weaker parameters is upgraded on the next successful login", async () => {
  const dataDir = tempDataDir();
  let server = await startServer({ PASSWORD_HASH_TIME_COST: "2" }, dataDir);
  await addUser(server, "upgrader");
  expect(await server.stop()).toBe(0);
  const stored = async () => {
    const db = await openTestDatabase(dataDir);
    const hash = (await db.get<{ password_hash: string }>("SELECT password_hash FROM users WHERE username = 'upgrader'"))!.password_hash;
    await db.close();
    return hash;
  };
  expect(await stored()).toContain("m=19456,t=2,");

  server = await startServer({ PASSWORD_HASH_TIME_COST: "3" }, dataDir);
  expect((await login(server, "upgrader", PASSWORD)).status).toBe(200);
  expect(await stored()).toContain("m=19456,t=3,");
  expect((await login(server, "upgrader", PASSWORD)).status).toBe(200);
  expect(await server.stop()).toBe(0);

  // More memory is an upgrade too; a hash stronger than configured is left as it is.
  server = await startServer({ PASSWORD_HASH_MEMORY_KIB: "24576", PASSWORD_HASH_TIME_COST: "2" }, dataDir);
  expect((await login(server, "upgrader", PASSWORD)).status).toBe(200);
  expect(await stored()).toContain("m=24576,t=2,");
  expect(await server.stop()).toBe(0);
  server = await startServer({}, dataDir);
  expect((await login(server, "upgrader", PASSWORD)).status).toBe(200);
  expect(await stored()).toContain("m=24576,t=2,");
  expect(await server.stop()).toBe(0);
  removeDataDir(dataDir);
});

test("audit events older than AUDIT_RETENTION_DAYS are pruned in the background (at start, then hourly)", async () => {
  const dataDir = tempDataDir();
  let server = await startServer({ AUDIT_RETENTION_DAYS: "30" }, dataDir);
  expect(await server.stop()).toBe(0);
  const db = await openTestDatabase(dataDir, { writable: true });
  try {
    const day = 86_400_000;
    for (const age of [31 * day, 29 * day]) await db.run("INSERT INTO audit_events (created_at, event, detail) VALUES (?, 'login_failed', '{}')", time(Date.now() - age));
    server = await startServer({ AUDIT_RETENTION_DAYS: "30" }, dataDir);
    const ages = (await db.all<{ created_at: number }>("SELECT created_at FROM audit_events WHERE event = 'login_failed'")).map(
      (row) => Math.round((Date.now() - row.created_at) / day),
    );
    expect(ages).toEqual([29]);
    expect(await server.stop()).toBe(0);
  } finally {
    await db.close();
    removeDataDir(dataDir);
  }
});

describe("response hardening", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({
      ALLOW_REGISTRATION: "true",
      TOKEN_DELIVERY: "cookie",
      RATE_LIMIT: "off",
      PUBLIC_URL: "https://auth.example.test",
      ALLOWED_ORIGINS: "https://app.example.test",
    });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("every JSON response carries the security headers, HSTS behind https", async () => {
    // /validate and /forward build their whole answer (and are served by Bun's router directly): the same headers.
    for (const path of ["/health", "/api/v1/auth/me", "/no/such/route", "/api/v1/auth/validate", "/api/v1/auth/forward"]) {
      const response = await fetch(`${server.url}${path}`);
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("referrer-policy")).toBe("no-referrer");
      expect(response.headers.get("x-frame-options")).toBe("DENY");
      expect(response.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(response.headers.get("strict-transport-security")).toBe("max-age=31536000; includeSubDomains");
      expect(response.headers.get("x-powered-by")).toBeNull();
    }
  });

  test("CORS answers only ALLOWED_ORIGINS, never a reflected foreign origin", async () => {
    const allowed = await fetch(`${server.url}/api/v1/auth/login`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example.test", "access-control-request-method": "POST" },
    });
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.test");
    expect(allowed.headers.get("access-control-allow-credentials")).toBe("true");
    const foreign = await fetch(`${server.url}/api/v1/auth/login`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
    const plain = await fetch(`${server.url}/health`, { headers: { origin: "https://evil.example" } });
    expect(plain.headers.get("access-control-allow-origin")).toBeNull();
  });

  test("cookie-mode logout sends Clear-Site-Data and clears both cookies", async () => {
    const origin = { origin: "https://app.example.test" };
    const registered = await fetch(`${server.url}/api/v1/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json", ...origin },
      body: JSON.stringify({ username: "hank", password: PASSWORD }),
    });
    expect(registered.status).toBe(201);
    expect(registered.headers.get("cache-control")).toBe("no-store");
    expect(registered.headers.get("pragma")).toBe("no-cache");
    const cookies = registered.headers.getSetCookie().map((cookie) => cookie.split(";")[0]).join("; ");
    const logout = await fetch(`${server.url}/api/v1/auth/logout`, { method: "POST", headers: { cookie: cookies, ...origin } });
    expect(logout.status).toBe(200);
    expect(logout.headers.get("clear-site-data")).toBe('"cookies"');
    expect(logout.headers.getSetCookie().every((cookie) => cookie.includes("Max-Age=0"))).toBe(true);
    expect(logout.headers.getSetCookie()).toHaveLength(2);
  });
});
