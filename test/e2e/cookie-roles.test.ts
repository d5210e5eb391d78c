/**
 * The two cookies of a browser session, through the compiled binary (issue 20, "a protected app's cookie opens
 * nothing else"): every protected app receives the domain-wide session cookie, so replaying it must open nothing
 * but forward auth: not the account pages (API-key minting, password), not the admin pages, not the API, not a
 * handoff to another sign-in host. The host-only page cookie opens the pages; a sign-out, a password change and a
 * disabled account end both at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { apiSignIn, browserSignIn, cookieJar, csrfOf, type CookieJar } from "../support/pages";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";

const PASSWORD = "correct horse battery staple";
const FORM = "application/x-www-form-urlencoded";
const SESSION = "latchkey_session";
const PAGE = "latchkey_session_page";

let dataDir: string;
let server: SpawnedServer;
let lk: string;
/** The second sign-in host: the same server by another name (cookies are per host name, not per port). */
let other: string;

beforeAll(async () => {
  dataDir = tempDataDir();
  expect((await runCli(["user", "add", "alice", "--email", "alice@example.com"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  expect((await runCli(["user", "add", "root", "--email", "root@example.com", "--admin"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  expect((await runCli(["oidc", "client", "add", "wiki", "--redirect-uri", "http://127.0.0.1:1/callback"], { DATA_DIR: dataDir })).code).toBe(0);
  const port = freePort();
  lk = `http://127.0.0.1:${port}`;
  other = `http://localhost:${port}`;
  server = await spawnServer([BINARY, "serve"], {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, PUBLIC_URL: lk, SIGN_IN_URLS: other, TRUST_PROXY: "127.0.0.1",
      // Many sign-ins from one address: this file is not about the per-address limit.
      RATE_LIMIT_IP: "1000/1m", RATE_LIMIT_IP_BURST: "1000" },
  });
});

afterAll(async () => {
  await server?.stop();
  removeDataDir(dataDir);
});

/** A browser signed in through the sign-in form (no handoff: straight to the form). */
async function signedIn(login: string, password = PASSWORD): Promise<CookieJar> {
  const jar = cookieJar();
  expect(await browserSignIn(`${lk}/login?handoff=none`, login, password, jar)).toBe("/account");
  return jar;
}

/** Only the domain-wide cookie: what every protected app receives, and what one that leaks headers gives away. */
const appCopy = (jar: CookieJar) => `${SESSION}=${jar.get(SESSION)}`;
/** Only the page cookie. */
const pageCopy = (jar: CookieJar) => `${PAGE}=${jar.get(PAGE)}`;

const get = (path: string, cookie: string, headers: Record<string, string> = {}) => fetch(`${lk}${path}`, { headers: { cookie, ...headers }, redirect: "manual" });
const post = (path: string, cookie: string, fields: Record<string, string>) =>
  fetch(`${lk}${path}`, { method: "POST", headers: { cookie, origin: lk, "content-type": FORM }, body: new URLSearchParams(fields), redirect: "manual" });
/** Forward auth as Caddy or Traefik ask it, for an app on this host name. */
const forward = (cookie: string) =>
  fetch(`${lk}/api/v1/auth/forward`, {
    headers: { cookie, accept: "application/json", "x-forwarded-proto": "http", "x-forwarded-host": "127.0.0.1:9", "x-forwarded-uri": "/app", "x-forwarded-method": "GET" },
    redirect: "manual",
  });

async function keyCount(accessToken: string): Promise<number> {
  const listed = await fetch(`${lk}/api/v1/auth/keys`, { headers: { authorization: `Bearer ${accessToken}` } });
  expect(listed.status).toBe(200);
  return ((await listed.json()) as unknown[]).length;
}

describe("the domain-wide session cookie is good for forward auth only", () => {
  test("a sign-in sets both: the session cookie for forward auth, the host-only page cookie (token.HMAC) for the pages", async () => {
    const page = await fetch(`${lk}/login?handoff=none`);
    const jar = cookieJar();
    jar.take(page);
    const posted = await fetch(`${lk}/login`, {
      method: "POST",
      headers: { cookie: jar.header(), origin: lk, "content-type": FORM },
      body: new URLSearchParams({ csrf: csrfOf(await page.text()), login: "alice", password: PASSWORD }),
      redirect: "manual",
    });
    expect(posted.status).toBe(303);
    const [session, pageCookie, ...rest] = posted.headers.getSetCookie().filter((line) => line.startsWith("latchkey_session"));
    expect(rest).toEqual([]);
    expect(session).toMatch(/^latchkey_session=([A-Za-z0-9_-]{43}); Path=\/; Max-Age=2592000; HttpOnly; SameSite=Lax$/);
    const token = /^latchkey_session=([^;]+)/.exec(session!)![1]!;
    expect(pageCookie).toMatch(/^latchkey_session_page=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Path=\/; Max-Age=2592000; HttpOnly; SameSite=Lax$/);
    expect(pageCookie!.startsWith(`${PAGE}=${token}.`)).toBe(true);
  });

  test("replayed alone, it opens no page, mints no key, changes no password, reaches no admin page and no API", async () => {
    const alice = await signedIn("alice");
    const root = await signedIn("root");
    const { accessToken } = await apiSignIn(lk, "alice", PASSWORD);
    // The whole jar opens the account page (the control); its form tokens are what a replay would need.
    const account = await get("/account", alice.header());
    expect(account.status).toBe(200);
    const html = await account.text();
    const stolen = appCopy(alice);
    const stolenAdmin = appCopy(root);

    // Forward auth accepts it: that is its job.
    const passed = await forward(stolen);
    expect(passed.status).toBe(200);
    expect(passed.headers.get("remote-user")).toBe("alice");

    // The pages: sent to sign in, as a browser without a session.
    for (const path of ["/account", "/admin", "/admin/applications"]) {
      const answer = await get(path, stolen);
      expect([path, answer.status]).toEqual([path, 302]);
      expect(answer.headers.get("location")).toStartWith("/login");
    }
    const rootAdmin = await get("/admin", stolenAdmin);
    expect(rootAdmin.status).toBe(302);
    expect(rootAdmin.headers.get("location")).toBe("/login?rd=%2Fadmin");
    expect((await get("/admin", root.header())).status).toBe(200);
    // /login shows the form: the cookie is not a signed-in browser here.
    const login = await get("/login?handoff=none", stolen);
    expect(login.status).toBe(200);
    expect(await login.text()).toContain('action="/login"');

    // The forms, even with the real page's CSRF tokens: to sign-in, and nothing changed.
    const forms: [string, Record<string, string>][] = [
      ["/account/keys", { csrf: csrfOf(html, "/account/keys"), name: "stolen" }],
      ["/account/password", { csrf: csrfOf(html, "/account/password"), current_password: PASSWORD, new_password: `${PASSWORD} stolen` }],
      ["/account/sessions/revoke-others", { csrf: csrfOf(html, "/account/sessions/revoke-others") }],
      ["/admin/users/status", { csrf: "x", username: "alice", disabled: "true" }],
    ];
    for (const [path, fields] of forms) {
      const answer = await post(path, stolen, fields);
      expect([path, answer.status, answer.headers.get("location")]).toEqual([path, 303, "/login"]);
    }
    expect(await keyCount(accessToken)).toBe(0);
    expect((await forward(appCopy(alice))).status).toBe(200);
    expect((await apiSignIn(lk, "alice", PASSWORD)).accessToken).toBeString();

    // The API takes access tokens and API keys, never a browser cookie.
    const me = await get("/api/v1/auth/me", stolen, { origin: lk });
    expect(me.status).toBe(401);
    expect(((await me.json()) as { error: string }).error).toBe("unauthorized");
    const minted = await fetch(`${lk}/api/v1/auth/keys`, { method: "POST", headers: { cookie: stolen, origin: lk, "content-type": "application/json" }, body: JSON.stringify({ name: "stolen" }) });
    expect(minted.status).toBe(401);
    expect(await keyCount(accessToken)).toBe(0);

    // Nor does it sign the browser in to an OpenID Connect application: the authorisation asks for a sign-in.
    const authorize = `/oidc/authorize?${new URLSearchParams({ client_id: "wiki", response_type: "code", scope: "openid", redirect_uri: "http://127.0.0.1:1/callback", code_challenge: "A".repeat(43), code_challenge_method: "S256" })}`;
    const asked = await get(authorize, stolen);
    expect(asked.status).toBe(302);
    expect(asked.headers.get("location")).toStartWith("/login?");
    const consent = await get(authorize, alice.header());
    expect(consent.status).toBe(200);
    expect(await consent.text()).toContain('action="/oidc/authorize/consent"');

    // Nor does it buy a session on another sign-in host through the handoff: that one is asked on, as for a stranger.
    const handoff = await get(`/handoff/start?to=${encodeURIComponent(other)}&state=abc`, stolen);
    expect(handoff.status).toBe(302);
    expect(handoff.headers.get("location")).toBe(`${other}/login?handoff=none`);
    const honest = await get(`/handoff/start?to=${encodeURIComponent(other)}&state=abc`, alice.header());
    expect(honest.status).toBe(302);
    expect(honest.headers.get("location")).toStartWith(`${other}/handoff/accept?code=`);
  });

  test("a page cookie without its HMAC, with another's, or made from the session cookie opens nothing", async () => {
    const alice = await signedIn("alice");
    const bob = await signedIn("root");
    const token = alice.get(SESSION)!;
    const mac = alice.get(PAGE)!.split(".")[1]!;
    const otherMac = bob.get(PAGE)!.split(".")[1]!;
    for (const value of [token, `${token}.`, `${token}.${otherMac}`, `${token}.${mac.slice(0, -1)}${mac.endsWith("A") ? "B" : "A"}`, `.${mac}`]) {
      const answer = await get("/account", `${PAGE}=${value}`);
      expect([value, answer.status]).toEqual([value, 302]);
    }
    expect((await get("/account", pageCopy(alice))).status).toBe(200);
  });

  test("a signed-in browser that lost its session cookie gets it back from /login (no loop between the app and /login)", async () => {
    const alice = await signedIn("alice");
    const back = await get("/login?rd=%2Faccount", pageCopy(alice));
    expect(back.status).toBe(302);
    expect(back.headers.getSetCookie()).toEqual([`${SESSION}=${alice.get(SESSION)}; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax`]);
    // With both already there, nothing is set.
    expect((await get("/login?rd=%2Faccount", alice.header())).headers.getSetCookie()).toEqual([]);
  });
});

describe("a sign-out, a password change and a disabled account end both cookies at once", () => {
  test("signing out", async () => {
    const alice = await signedIn("alice");
    const account = await get("/account", alice.header());
    const [session, page] = [appCopy(alice), pageCopy(alice)];
    const out = await post("/logout", alice.header(), { csrf: csrfOf(await account.text(), "/logout") });
    expect(out.status).toBe(303);
    expect(out.headers.getSetCookie().filter((line) => line.startsWith("latchkey_session"))).toEqual([
      `${SESSION}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax`,
      `${PAGE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax`,
    ]);
    expect((await forward(session)).status).toBe(401);
    expect((await get("/account", page)).status).toBe(302);
  });

  test("a password change on the account page ends the other browsers' two cookies", async () => {
    const first = await signedIn("alice");
    const second = await signedIn("alice");
    const account = await get("/account", second.header());
    const changed = await post("/account/password", second.header(), {
      csrf: csrfOf(await account.text(), "/account/password"),
      current_password: PASSWORD,
      new_password: `${PASSWORD} 2`,
    });
    expect(changed.status).toBe(303);
    expect(changed.headers.get("location")).toBe("/account#password");
    expect((await forward(appCopy(first))).status).toBe(401);
    expect((await get("/account", pageCopy(first))).status).toBe(302);
    // The browser that changed it keeps both.
    expect((await forward(appCopy(second))).status).toBe(200);
    expect((await get("/account", pageCopy(second))).status).toBe(200);
    // Back to the old password for the other tests.
    const again = await get("/account", second.header());
    const reverted = await post("/account/password", second.header(), { csrf: csrfOf(await again.text(), "/account/password"), current_password: `${PASSWORD} 2`, new_password: PASSWORD });
    expect(reverted.status).toBe(303);
  });

  test("an admin disabling the account", async () => {
    const alice = await signedIn("alice");
    const { accessToken: rootToken } = await apiSignIn(lk, "root", PASSWORD);
    const users = (await (await fetch(`${lk}/api/v1/admin/users?query=alice`, { headers: { authorization: `Bearer ${rootToken}` } })).json()) as { users: { id: string }[] };
    const disabled = await fetch(`${lk}/api/v1/admin/users/${users.users[0]!.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${rootToken}`, "content-type": "application/json" },
      body: JSON.stringify({ disabled: true }),
    });
    expect(disabled.status).toBe(200);
    expect((await forward(appCopy(alice))).status).toBe(401);
    expect((await get("/account", pageCopy(alice))).status).toBe(302);
  });
});
