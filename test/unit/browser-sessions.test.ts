import { afterEach, describe, expect, setSystemTime, test } from "bun:test";
import { migrate, openDatabase } from "../../src/db/client";
import { users } from "../../src/db/schema";
import { createHandoffCodes, createHandoffLimits, HANDOFF_TTL_MS, HANDOFFS_PER_ADDRESS, HANDOFFS_PER_SESSION } from "../../src/modules/pages/handoff";
import { readCookie } from "../../src/http/cookies";
import { createSessionService } from "../../src/modules/sessions/service";
import { loadConfig } from "../../src/config";
import { createBrowserSessions, pageCookieName } from "../../src/modules/pages/session";

const client = { ip: "192.0.2.1", userAgent: "test" };
const IDLE = 600;
const ABSOLUTE = 3600;

function setUp() {
  const db = openDatabase(":memory:");
  migrate(db);
  db.insert(users).values({ id: "u1", username: "someone", passwordHash: "unused" }).run();
  const sessions = createSessionService(db, { refreshTokenTtl: ABSOLUTE, refreshReuseInterval: 10, refreshRotationKey: new Uint8Array(32), browserIdleTtl: IDLE });
  const row = (id: string) =>
    db.$client.query("SELECT browser_token_hash AS hash, expires_at AS expires, created_at AS created FROM sessions WHERE id = ?").get(id) as
      | { hash: string; expires: number; created: number }
      | null;
  /** Moves a session back in time, as if it had been created `createdAgo` and last seen `seenAgo` seconds ago. */
  const age = (id: string, createdAgo: number, seenAgo: number) =>
    db.$client
      .query("UPDATE sessions SET created_at = ?1, last_seen_at = ?2, expires_at = min(?2 + ?3, ?1 + ?4) WHERE id = ?5")
      .run(Date.now() - createdAgo * 1000, Date.now() - seenAgo * 1000, IDLE * 1000, ABSOLUTE * 1000, id);
  return { db, sessions, row, age };
}

test("a browser session's cookie is random and stored only as its SHA-256", async () => {
  const { sessions, row } = setUp();
  const { sessionId, token } = await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd"] });
  expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(row(sessionId)!.hash).toBe(new Bun.CryptoHasher("sha256").update(token).digest("hex"));
  expect((await sessions.browserPrincipal(token))?.sessionId).toBe(sessionId);
  expect(await sessions.browserPrincipal(`${token}x`)).toBeUndefined();
});

test("activity slides the idle expiry (SESSION_IDLE_TTL), never past the absolute one (REFRESH_TOKEN_TTL)", async () => {
  const { sessions, row, age } = setUp();
  const young = await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd"] });
  age(young.sessionId, 300, 120);
  const before = Date.now();
  expect((await sessions.browserPrincipal(young.token))?.sessionExpiresAt).toBeGreaterThanOrEqual(before + IDLE * 1000);
  expect(row(young.sessionId)!.expires).toBeGreaterThanOrEqual(before + IDLE * 1000);

  const old = await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd"] });
  age(old.sessionId, ABSOLUTE - 100, 120);
  await sessions.browserPrincipal(old.token);
  expect(row(old.sessionId)!.expires).toBe(row(old.sessionId)!.created + ABSOLUTE * 1000);

  const idle = await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd"] });
  age(idle.sessionId, 2000, IDLE + 1);
  expect(await sessions.browserPrincipal(idle.token)).toBeUndefined();
});

test("signing out, a disabled user and a deleted user end browser sessions at once, cached or not", async () => {
  const { db, sessions } = setUp();
  const a = await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd"] });
  expect((await sessions.browserPrincipal(a.token))?.sessionId).toBe(a.sessionId);
  await sessions.revoke(a.sessionId);
  expect(await sessions.browserPrincipal(a.token)).toBeUndefined();

  const b = await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd"] });
  expect((await sessions.browserPrincipal(b.token))?.sessionId).toBe(b.sessionId);
  db.$client.query("UPDATE users SET disabled = 1 WHERE id = 'u1'").run();
  await sessions.forgetUser("u1");
  expect(await sessions.browserPrincipal(b.token)).toBeUndefined();
});

test("a handed-off session ends with its parent; 'sign out others' from it keeps the family", async () => {
  const { sessions, row } = setUp();
  const parent = await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd"] });
  const child = await sessions.createBrowser({ userId: "u1" }, client, { parentId: parent.sessionId });
  const stranger = await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd"] });
  expect((await sessions.browserPrincipal(child.token))?.rootSessionId).toBe(parent.sessionId);
  expect(await sessions.revokeOthers("u1", child.sessionId)).toBe(1);
  expect(row(stranger.sessionId)).toBeNull();
  expect((await sessions.browserPrincipal(parent.token))?.sessionId).toBe(parent.sessionId);
  await sessions.revoke(parent.sessionId);
  expect(row(child.sessionId)).toBeNull();
  expect(await sessions.browserPrincipal(child.token)).toBeUndefined();
});

test("a handoff carries its parent's authentication (auth_time, amr): it authenticates nobody, so prompt=login and max_age still ask", async () => {
  const { db, sessions, age } = setUp();
  const parent = await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd", "otp", "mfa"] });
  const signedInAt = Date.now() - 7_200_000;
  db.$client.query("UPDATE sessions SET auth_time = ? WHERE id = ?").run(signedInAt, parent.sessionId);
  const child = await sessions.createBrowser({ userId: "u1" }, client, { parentId: parent.sessionId });
  expect(await sessions.authenticationOf(child.sessionId)).toEqual({ authTime: signedInAt, amr: ["pwd", "otp", "mfa"] });
  // Activity slides the session, never its authentication.
  age(child.sessionId, 120, 120);
  expect((await sessions.browserPrincipal(child.token))?.sessionId).toBe(child.sessionId);
  expect(await sessions.authenticationOf(child.sessionId)).toEqual({ authTime: signedInAt, amr: ["pwd", "otp", "mfa"] });
  // A session from before auth_time was recorded: its creation stands in.
  db.$client.query("UPDATE sessions SET auth_time = NULL WHERE id = ?").run(parent.sessionId);
  const created = (db.$client.query("SELECT created_at AS created FROM sessions WHERE id = ?").get(parent.sessionId) as { created: number }).created;
  expect((await sessions.authenticationOf(parent.sessionId))?.authTime).toBe(created);
});

test("handoff codes: single use, short-lived, only for their target host and their browser", async () => {
  let now = 1_000_000;
  const codes = createHandoffCodes(() => now);
  const code = codes.issue("s1", "https://auth.example.net", "state-1");
  expect(codes.redeem(code, "https://auth.example.net", "state-1")).toBe("s1");
  expect(codes.redeem(code, "https://auth.example.net", "state-1")).toBeUndefined();
  const otherHost = codes.issue("s1", "https://auth.example.net", "state-1");
  expect(codes.redeem(otherHost, "https://auth.example.org", "state-1")).toBeUndefined();
  expect(codes.redeem(otherHost, "https://auth.example.net", "state-1")).toBeUndefined();
  const otherBrowser = codes.issue("s1", "https://auth.example.net", "state-1");
  expect(codes.redeem(otherBrowser, "https://auth.example.net", "state-2")).toBeUndefined();
  const late = codes.issue("s1", "https://auth.example.net", "state-1");
  now += HANDOFF_TTL_MS;
  expect(codes.redeem(late, "https://auth.example.net", "state-1")).toBeUndefined();
});

test("a full store of handoff codes evicts the oldest instead of refusing, and says which code it evicted, once", () => {
  let now = 1_000_000;
  const codes = createHandoffCodes(() => now, 3);
  const issued = ["s1", "s2", "s3", "s4", "s5"].map((session) => codes.issue(session, "https://auth.example.net", "state"));
  // The two oldest made room for the two newest.
  expect(issued.slice(2).map((code) => codes.redeem(code, "https://auth.example.net", "state"))).toEqual(["s3", "s4", "s5"]);
  expect(issued.slice(0, 2).map((code) => codes.redeem(code, "https://auth.example.net", "state"))).toEqual([undefined, undefined]);
  expect(codes.evicted(issued[0]!)).toBe(true);
  expect(codes.evicted(issued[0]!)).toBe(false);
  expect(codes.evicted(issued[2]!)).toBe(false);
  expect(codes.evicted("forged")).toBe(false);
  // Expired codes go first: nothing live is evicted while they can make room.
  const old = [codes.issue("a", "https://auth.example.net", "state"), codes.issue("b", "https://auth.example.net", "state")];
  now += HANDOFF_TTL_MS;
  const fresh = [codes.issue("c", "https://auth.example.net", "state"), codes.issue("d", "https://auth.example.net", "state")];
  expect(old.map((code) => codes.evicted(code))).toEqual([false, false]);
  expect(fresh.map((code) => codes.redeem(code, "https://auth.example.net", "state"))).toEqual(["c", "d"]);
  // An evicted code is remembered only until it would have expired.
  const gone = codes.issue("e", "https://auth.example.net", "state");
  for (let i = 0; i < 3; i++) codes.issue("f", "https://auth.example.net", "state");
  now += HANDOFF_TTL_MS;
  codes.issue("g", "https://auth.example.net", "state");
  expect(codes.evicted(gone)).toBe(false);
});

test("a session cookie sent twice (one planted by a sibling subdomain) counts as none", async () => {
  expect(readCookie("a=1; latchkey_session=abc; b=2", "latchkey_session")).toBe("abc");
  expect(readCookie("latchkey_session=abc; latchkey_session=evil", "latchkey_session")).toBeUndefined();
  expect(readCookie("xlatchkey_session=abc", "latchkey_session")).toBeUndefined();
  expect(readCookie("latchkey_session=", "latchkey_session")).toBeUndefined();
  expect(readCookie(null, "latchkey_session")).toBeUndefined();
});

test("a handoff's source must be a live browser session of an enabled user, and looking it up does not slide it", async () => {
  const { db, sessions, row } = setUp();
  const browserSession = await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd"] });
  const apiSession = await sessions.create({ userId: "u1" }, client, ["pwd"]);
  const before = row(browserSession.sessionId)!.expires;
  expect(await sessions.browserSessionOwner(browserSession.sessionId)).toBe("u1");
  expect(row(browserSession.sessionId)!.expires).toBe(before);
  expect(await sessions.browserSessionOwner(apiSession.sessionId)).toBeUndefined();
  expect(await sessions.browserSessionOwner("no-such-session")).toBeUndefined();
  db.$client.query("UPDATE users SET disabled = 1 WHERE id = 'u1'").run();
  expect(await sessions.browserSessionOwner(browserSession.sessionId)).toBeUndefined();
});

test("under https the page cookie is __Host- (Secure, Path=/, no Domain); the session cookie has the parent domain", async () => {
  const { sessions } = setUp();
  const config = loadConfig({ DATA_DIR: "/nonexistent", PUBLIC_URL: "https://auth.example.com", SIGN_IN_URLS: "https://auth.example.net" });
  const browser = createBrowserSessions(config, sessions, new Uint8Array(32).fill(7));
  const { token } = await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd"] });
  const headers: Record<string, string[]> = {};
  browser.setSession(headers, browser.hosts[1]!, token);
  const [session, page] = headers["set-cookie"]!;
  expect(session).toBe(`latchkey_session=${token}; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax; Domain=example.net; Secure`);
  expect(page).toMatch(new RegExp(`^__Host-latchkey_session_page=${token}\\.[A-Za-z0-9_-]{43}; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax; Secure$`));
  const value = page!.slice(page!.indexOf("=") + 1, page!.indexOf(";"));
  const request = (cookie: string) => new Request("https://auth.example.net/account", { headers: { cookie } });
  expect((await browser.current(request(`__Host-latchkey_session_page=${value}`)))?.userId).toBe("u1");
  expect(browser.token(request(`latchkey_session=${token}`))).toBe(token);
  // The domain-wide cookie is no page session, under its own name or the page cookie's.
  expect(await browser.current(request(`latchkey_session=${token}`))).toBeNull();
  expect(await browser.current(request(`__Host-latchkey_session_page=${token}`))).toBeNull();
  expect(await browser.current(request(`latchkey_session_page=${value}`))).toBeNull();
  // Another server key makes another HMAC.
  const elsewhere = createBrowserSessions(config, sessions, new Uint8Array(32).fill(8));
  expect(await elsewhere.current(request(`__Host-latchkey_session_page=${value}`))).toBeNull();
  const cleared: Record<string, string[]> = {};
  browser.clearSession(cleared, browser.hosts[1]!);
  expect(cleared["set-cookie"]).toEqual([
    "latchkey_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Domain=example.net; Secure",
    "__Host-latchkey_session_page=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure",
  ]);
});

test("the page cookie's name: SESSION_COOKIE_NAME's, without a prefix of its own, and _page; __Host- under https", () => {
  expect(pageCookieName("latchkey_session", false)).toBe("latchkey_session_page");
  expect(pageCookieName("latchkey_session", true)).toBe("__Host-latchkey_session_page");
  expect(pageCookieName("__Secure-lk", true)).toBe("__Host-lk_page");
  expect(pageCookieName("__Host-lk", true)).toBe("__Host-lk_page");
});

test("the memory of evicted codes is bounded too: past maxPending of them, the oldest is forgotten", () => {
  const codes = createHandoffCodes(() => 1_000_000, 2);
  const issued = ["a", "b", "c", "d", "e"].map((session) => codes.issue(session, "https://auth.example.net", "state"));
  // a, b and c were evicted; only the two newest of them are remembered.
  expect(issued.map((code) => codes.evicted(code))).toEqual([false, true, true, false, false]);
});

test("handoff limits: per address (IPv6 per /64, no address as one more), per browser session", () => {
  const limits = createHandoffLimits();
  const drain = (take: () => { allowed: boolean }) => Array.from({ length: HANDOFFS_PER_ADDRESS + 1 }, take).filter((decision) => decision.allowed).length;
  expect(drain(() => limits.address("2001:db8:1:2::1"))).toBe(HANDOFFS_PER_ADDRESS);
  expect(limits.address("2001:db8:1:2::ffff").allowed).toBe(false);
  expect(limits.address("2001:db8:1:3::1").allowed).toBe(true);
  expect(limits.address("192.0.2.1").allowed).toBe(true);
  expect(drain(() => limits.address(null))).toBe(HANDOFFS_PER_ADDRESS);
  expect(limits.address("192.0.2.2").allowed).toBe(true);
  expect(drain(() => limits.session("root-1"))).toBe(HANDOFFS_PER_SESSION);
  expect(limits.session("root-1")).toEqual({ allowed: false, retryAfter: expect.any(Number) });
  expect(limits.session("root-2").allowed).toBe(true);
});

test("an expired browser session row owns no session, even before anything prunes it (a handoff from it signs nobody in)", async () => {
  const { db, sessions } = setUp();
  const { sessionId } = await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd"] });
  expect(await sessions.browserSessionOwner(sessionId)).toBe("u1");
  db.$client.query("UPDATE sessions SET expires_at = ? WHERE id = ?").run(Date.now() - 1, sessionId);
  expect(await sessions.browserSessionOwner(sessionId)).toBeUndefined();
  db.$client.query("UPDATE sessions SET expires_at = ? WHERE id = ?").run(Date.now(), sessionId);
  expect(await sessions.browserSessionOwner(sessionId)).toBeUndefined();
});

describe("the principal cache: what another process changes is seen within CACHE_TTL_MS (1 s, README), not later", () => {
  const T0 = Date.parse("2026-01-01T00:00:00Z");
  afterEach(() => setSystemTime());

  for (const kind of ["access-token session", "browser session"] as const)
    test(`${kind}: cached for 999 ms after its lookup, read again at 1000 ms`, async () => {
      setSystemTime(new Date(T0));
      const { db, sessions } = setUp();
      const lookUp =
        kind === "browser session"
          ? await sessions.createBrowser({ userId: "u1" }, client, { amr: ["pwd"] }).then(({ token }) => () => sessions.browserPrincipal(token))
          : await sessions.create({ userId: "u1" }, client, ["pwd"]).then(({ sessionId }) => () => sessions.principal(sessionId));
      expect((await lookUp())?.userId).toBe("u1");
      // Another process (the CLI, or another instance without the announcement) disables the user.
      db.$client.query("UPDATE users SET disabled = 1 WHERE id = 'u1'").run();
      setSystemTime(new Date(T0 + 999));
      expect((await lookUp())?.userId).toBe("u1");
      setSystemTime(new Date(T0 + 1000));
      expect(await lookUp()).toBeUndefined();
    });
});
