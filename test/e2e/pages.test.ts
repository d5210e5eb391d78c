/**
 * The sign-in pages and forward auth through the compiled binary, over plain HTTP (as a browser without
 * JavaScript): forms, CSRF and origin checks, the shared limiter, the session cookie, and forward auth's answers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { apiSignIn, browserSignIn, cookieJar, csrfOf } from "../support/pages";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";

const PASSWORD = "correct horse battery staple";
const FORM = "application/x-www-form-urlencoded";

interface Instance {
  url: string;
  dataDir: string;
  server: SpawnedServer;
}
const started: Instance[] = [];

async function start(env: Record<string, string> = {}, users: [string, string][] = [["alice", "family"]]): Promise<Instance> {
  const dataDir = tempDataDir();
  for (const [name, roles] of users) {
    expect((await runCli(["user", "add", name, "--email", `${name}@example.com`, ...(roles === "admin" ? ["--admin"] : [])], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
    if (roles && roles !== "admin") expect((await runCli(["user", "roles", name, roles], { DATA_DIR: dataDir })).code).toBe(0);
  }
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = await spawnServer([BINARY, "serve"], {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, PUBLIC_URL: url, ...env },
  });
  const instance = { url, dataDir, server };
  started.push(instance);
  return instance;
}

afterAll(async () => {
  for (const { server, dataDir } of started) {
    await server.stop();
    removeDataDir(dataDir);
  }
});

/** GET /login for a fresh browser: its jar (holding the pre-session cookie) and the form's CSRF token. */
async function loginForm(url: string, rd?: string) {
  const jar = cookieJar();
  const page = await fetch(`${url}/login${rd ? `?rd=${encodeURIComponent(rd)}` : ""}`);
  jar.take(page);
  return { jar, page, html: await page.text() };
}

function postLogin(url: string, jar: ReturnType<typeof cookieJar>, fields: Record<string, string>, headers: Record<string, string> = { origin: url }) {
  return fetch(`${url}/login`, {
    method: "POST",
    headers: { cookie: jar.header(), "content-type": FORM, ...headers },
    body: new URLSearchParams(fields),
    redirect: "manual",
  });
}

describe("sign-in page", () => {
  let lk: Instance;
  beforeAll(async () => {
    lk = await start({ APP_NAME: "<Home> & Co" });
  });

  test("GET /login: a form with a CSRF token, no script, its own CSP, APP_NAME escaped, a pre-session cookie", async () => {
    const { page, html, jar } = await loginForm(lk.url);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("cache-control")).toBe("no-store");
    // same-origin, not no-referrer: under no-referrer Chromium posts the form with Origin: null.
    expect(page.headers.get("referrer-policy")).toBe("same-origin");
    expect(page.headers.get("content-security-policy")).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; .*frame-ancestors 'none'$/);
    expect(html).toStartWith("<!doctype html>");
    expect(html).toContain("<title>Sign in · &lt;Home&gt; &amp; Co</title>");
    expect(html).not.toContain("<Home>");
    expect(html).not.toContain("<script");
    expect(html).toContain('name="viewport"');
    expect(html).toContain("prefers-color-scheme:dark");
    expect(csrfOf(html)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(page.headers.getSetCookie()[0]).toMatch(/^latchkey_session_csrf=[A-Za-z0-9_-]{32}; Path=\/; Max-Age=3600; HttpOnly; SameSite=Lax$/);
    expect(jar.get("latchkey_session_csrf")).toBeDefined();
  });

  test("a NUL byte or another control character in the login is the form again (422), never a 500 (issue 22: PostgreSQL refuses NUL)", async () => {
    const { jar, html } = await loginForm(lk.url);
    for (const login of ["al\u0000ice", "alice\u001b", "al\u0085ice"]) {
      const reply = await postLogin(lk.url, jar, { csrf: csrfOf(html), login, password: PASSWORD });
      expect({ login, status: reply.status }).toEqual({ login, status: 422 });
      expect(await reply.text()).toContain("Enter your username or email and your password.");
    }
    expect(lk.server.output()).not.toContain("internal_error");
  });

  test("a wrong password and an unknown user get the same page; the right one a session cookie and /account", async () => {
    const { jar, html } = await loginForm(lk.url);
    const csrf = csrfOf(html);
    const wrong = await postLogin(lk.url, jar, { csrf, login: "alice", password: "not the password" });
    const unknown = await postLogin(lk.url, jar, { csrf, login: "nobody", password: "not the password" });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const [wrongHtml, unknownHtml] = [await wrong.text(), await unknown.text()];
    expect(wrongHtml).toContain("The username or password is incorrect.");
    expect(unknownHtml.replace('value="nobody"', 'value="alice"')).toBe(wrongHtml);
    expect(wrong.headers.getSetCookie()).toEqual([]);

    const right = await postLogin(lk.url, jar, { csrf, login: "Alice@Example.com", password: PASSWORD, rd: "//evil.example/" });
    expect(right.status).toBe(303);
    expect(right.headers.get("location")).toBe("/account");
    const cookie = right.headers.getSetCookie()[0]!;
    expect(cookie).toMatch(/^latchkey_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=2592000; HttpOnly; SameSite=Lax$/);
    jar.take(right);
    const account = await fetch(`${lk.url}/account`, { headers: { cookie: jar.header() } });
    expect(account.status).toBe(200);
    expect(await account.text()).toContain("<td>alice@example.com</td>");
  });

  test("a form without its CSRF token, with another form's, from another origin or cross-site is refused (403) and signs no one in", async () => {
    const { jar, html } = await loginForm(lk.url);
    const csrf = csrfOf(html);
    const fields = { login: "alice", password: PASSWORD };
    const attempts = [
      await postLogin(lk.url, jar, fields),
      await postLogin(lk.url, jar, { ...fields, csrf: `${csrf.slice(0, -1)}${csrf.endsWith("A") ? "B" : "A"}` }),
      await postLogin(lk.url, cookieJar(), { ...fields, csrf }),
      await postLogin(lk.url, jar, { ...fields, csrf }, { origin: "https://evil.example" }),
      await postLogin(lk.url, jar, { ...fields, csrf }, { origin: lk.url, "sec-fetch-site": "cross-site" }),
      await postLogin(lk.url, jar, { ...fields, csrf }, {}),
    ];
    for (const response of attempts) {
      expect(response.status).toBe(403);
      expect(response.headers.getSetCookie()).toEqual([]);
      expect(await response.text()).toContain("This form expired or came from another site.");
    }
  });

  test("a safe rd is followed after sign-in; an already signed-in browser skips the form", async () => {
    const { jar, html } = await loginForm(lk.url, `${lk.url.replace(/:\d+$/, ":9")}/app?x=1`);
    expect(html).toContain(`name="rd" value="${lk.url.replace(/:\d+$/, ":9")}/app?x=1"`);
    const landed = await browserSignIn(`${lk.url}/login?rd=${encodeURIComponent("http://127.0.0.1:9/app?x=1")}`, "alice", PASSWORD, jar);
    expect(landed).toBe("http://127.0.0.1:9/app?x=1");
    const again = await fetch(`${lk.url}/login?rd=%2Faccount`, { headers: { cookie: jar.header() }, redirect: "manual" });
    expect(again.status).toBe(302);
    expect(again.headers.get("location")).toBe(`${lk.url}/account`);
  });
});

describe("a second sign-in step (LOGIN_EMAIL_CODE) is its own page", () => {
  test("password, then the emailed code: a wrong code keeps the page (401), the right one sets the cookie and follows rd", async () => {
    const lk = await start({ LOGIN_EMAIL_CODE: "true", MAIL_TRANSPORT: "log" });
    const { jar, html } = await loginForm(lk.url);
    const step = await postLogin(lk.url, jar, { csrf: csrfOf(html), login: "alice", password: PASSWORD, rd: "/account" });
    expect(step.status).toBe(200);
    expect(step.headers.getSetCookie()).toEqual([]);
    const page = await step.text();
    expect(page).toContain("Enter the code we emailed you.");
    const challengeId = /name="challenge_id" value="([^"]+)"/.exec(page)![1]!;
    const mailed = await lk.server.waitForOutput("alice@example.com", 5000);
    const code = /\b(\d{6})\b/.exec(mailed.slice(mailed.lastIndexOf("alice@example.com")))![1]!;
    const verify = (answer: string, csrf = csrfOf(page, "/login/verify")) =>
      fetch(`${lk.url}/login/verify`, {
        method: "POST",
        headers: { cookie: jar.header(), origin: lk.url, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ csrf, challenge_id: challengeId, methods: "email_code", code: answer, rd: "/account" }),
        redirect: "manual",
      });
    // The sign-in form's own token does not open the second step.
    expect((await verify(code, csrfOf(html))).status).toBe(403);
    const wrong = await verify(code === "000000" ? "111111" : "000000");
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain("That code is wrong or was already used.");
    const right = await verify(code);
    expect(right.status).toBe(303);
    expect(right.headers.get("location")).toBe(`${lk.url}/account`);
    jar.take(right);
    expect((await fetch(`${lk.url}/api/v1/auth/forward`, { headers: { cookie: jar.header() } })).status).toBe(200);
  });
});

describe("the sign-in page shares the API's limiter", () => {
  test("attempts on POST /api/v1/auth/login and on the page count together; the 429 page says how long to wait", async () => {
    const lk = await start({ RATE_LIMIT_IP: "1/1h", RATE_LIMIT_IP_BURST: "2" });
    for (let i = 0; i < 2; i++) {
      const api = await fetch(`${lk.url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: "nope" }) });
      expect(api.status).toBe(401);
    }
    const { jar, html } = await loginForm(lk.url);
    const limited = await postLogin(lk.url, jar, { csrf: csrfOf(html), login: "alice", password: PASSWORD });
    expect(limited.status).toBe(429);
    const wait = limited.headers.get("retry-after");
    expect(Number(wait)).toBeGreaterThan(0);
    expect(await limited.text()).toContain(`Too many sign-in attempts. Try again in ${wait} seconds.`);
    expect(limited.headers.getSetCookie()).toEqual([]);
  });
});

describe("forward auth, asked directly", () => {
  let lk: Instance;
  let alice: ReturnType<typeof cookieJar>;
  beforeAll(async () => {
    lk = await start({ TRUST_PROXY: "127.0.0.1" }, [["alice", "family"], ["root", "admin"]]);
    alice = cookieJar();
    await browserSignIn(`${lk.url}/login`, "alice", PASSWORD, alice);
  });
  const forward = (query = "", headers: Record<string, string> = {}, method = "GET") =>
    fetch(`${lk.url}/api/v1/auth/forward${query}`, { method, headers, redirect: "manual" });
  const traefik = { "x-forwarded-proto": "http", "x-forwarded-host": "127.0.0.1:9", "x-forwarded-uri": "/app?a=1" };

  test("a browser navigation: 302 for GET and HEAD, 303 for other methods; nginx's X-Original-URL: 401 with the Location", async () => {
    const location = `${lk.url}/login?rd=${encodeURIComponent("http://127.0.0.1:9/app?a=1")}`;
    for (const [method, status] of [["GET", 302], ["HEAD", 302], ["POST", 303], ["DELETE", 303]] as const) {
      const answer = await forward("", { ...traefik, "x-forwarded-method": method, accept: "text/html" });
      expect({ method, status: answer.status, location: answer.headers.get("location") }).toEqual({ method, status, location });
    }
    const nginx = await forward("", { "x-original-url": "http://127.0.0.1:9/app?a=1", "x-original-method": "GET", accept: "text/html" });
    expect(nginx.status).toBe(401);
    expect(nginx.headers.get("location")).toBe(location);
    const xhr = await forward("", { ...traefik, accept: "text/html", "x-requested-with": "XMLHttpRequest" });
    expect(xhr.status).toBe(401);
    expect(xhr.headers.get("www-authenticate")).toBe('Bearer realm="Latchkey", Basic realm="Latchkey", charset="UTF-8"');
    expect(await xhr.json()).toEqual({ error: "unauthorized", message: "Sign in, or send an access token or API key." });
  });

  test("?roles= and ?users= on the forward URL: any match allows; otherwise 403 (a page for browsers)", async () => {
    expect((await forward("?roles=family", { cookie: alice.header() })).status).toBe(200);
    expect((await forward("?users=bob,alice", { cookie: alice.header() })).status).toBe(200);
    expect((await forward("?roles=admin&users=alice", { cookie: alice.header() })).status).toBe(200);
    const json = await forward("?roles=admin", { cookie: alice.header() });
    expect(json.status).toBe(403);
    expect(await json.json()).toEqual({ error: "forbidden", message: "This account may not access this resource." });
    const page = await forward("?users=bob", { cookie: alice.header(), accept: "text/html" });
    expect(page.status).toBe(403);
    const html = await page.text();
    expect(html).toContain("Signed in as <strong>alice</strong>. This account may not open this page.");
    expect(html).toContain(`<a href="${lk.url}/logout">Sign out</a>`);
    const described = await forward("?users=bob", { ...traefik, "x-forwarded-method": "GET", cookie: alice.header(), accept: "text/html" });
    expect(described.status).toBe(403);
    expect(await described.text()).toContain(`<a href="${lk.url}/logout?rd=${encodeURIComponent("http://127.0.0.1:9/app?a=1")}">Switch account</a>`);
    expect(html).toContain(`<a href="${lk.url}/logout">Sign out</a>`);
  });

  test("the 403 page's links: GET /logout shows who is signed in and signs out with a form; with rd it then signs in again", async () => {
    const jar = cookieJar();
    await browserSignIn(`${lk.url}/login`, "alice", PASSWORD, jar);
    const page = await fetch(`${lk.url}/logout?rd=${encodeURIComponent(`${lk.url}/account`)}`, { headers: { cookie: jar.header() } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("Signed in as <strong>alice</strong>.");
    expect(html).toContain(`<input type="hidden" name="rd" value="${lk.url}/account"/>`);
    const out = await fetch(`${lk.url}/logout`, {
      method: "POST",
      headers: { cookie: jar.header(), origin: lk.url, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: csrfOf(html), rd: `${lk.url}/account` }),
      redirect: "manual",
    });
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe(`/login?rd=${encodeURIComponent(`${lk.url}/account`)}`);
    expect((await forward("", { cookie: jar.header() })).status).toBe(401);
    // Signed out already: straight to the sign-in page; an rd elsewhere is dropped.
    const again = await fetch(`${lk.url}/logout?rd=${encodeURIComponent("https://evil.example/")}`, { headers: { cookie: jar.header() }, redirect: "manual" });
    expect(again.status).toBe(302);
    expect(again.headers.get("location")).toBe("/login");
  });

  test("a key limited to scopes passes only where ?scopes= names one of them; an unscoped key stays a full key", async () => {
    const { accessToken } = await apiSignIn(lk.url, "alice", PASSWORD);
    const create = async (name: string, scopes?: string[]) => {
      const created = await fetch(`${lk.url}/api/v1/auth/keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
        body: JSON.stringify({ name, scopes }),
      });
      expect(created.status).toBe(201);
      return ((await created.json()) as { api_key: string }).api_key;
    };
    const scoped = await create("backup", ["backup:write"]);
    const full = await create("full");
    expect((await forward("", { "x-api-key": scoped })).status).toBe(403);
    expect((await forward("?scopes=photos:read", { "x-api-key": scoped })).status).toBe(403);
    expect((await forward("?scopes=photos:read,backup:write", { "x-api-key": scoped })).status).toBe(200);
    expect((await forward("?scopes=backup:write&roles=admin", { "x-api-key": scoped })).status).toBe(403);
    expect((await forward("", { "x-api-key": full })).status).toBe(200);
    expect((await forward("?scopes=backup:write", { "x-api-key": full })).status).toBe(200);
    expect((await forward("?scopes=backup:write", { cookie: alice.header() })).status).toBe(200);
  });

  test("an access token and an API key pass as Bearer; an unknown key or a forged token is 401", async () => {
    const { accessToken, apiKey } = await apiSignIn(lk.url, "root", PASSWORD, { createKey: "bench" });
    for (const authorization of [`Bearer ${accessToken}`, `Bearer ${apiKey}`]) {
      const answer = await forward("", { authorization });
      expect(answer.status).toBe(200);
      expect(answer.headers.get("remote-user")).toBe("root");
      expect(answer.headers.get("remote-groups")).toBe("admin");
      // Not verified (the command line added it): no app hears it as root's address.
      expect(answer.headers.get("remote-email")).toBe("");
      expect(await answer.text()).toBe("");
    }
    const users = (await (await fetch(`${lk.url}/api/v1/admin/users?query=root`, { headers: { authorization: `Bearer ${accessToken}` } })).json()) as { users: { id: string }[] };
    const verified = await fetch(`${lk.url}/api/v1/admin/users/${users.users[0]!.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({ email_verified: true }),
    });
    expect(verified.status).toBe(200);
    expect((await forward("", { authorization: `Bearer ${apiKey}` })).headers.get("remote-email")).toBe("root@example.com");
    expect((await forward("", { authorization: `Bearer ${accessToken}x` })).status).toBe(401);
    const mistyped = `${apiKey!.slice(0, -1)}${apiKey!.endsWith("0") ? "1" : "0"}`;
    expect((await forward("", { "x-api-key": mistyped })).status).toBe(401);
  });

  test("signing out, a password change and an admin disabling the account refuse the cookie on the very next request", async () => {
    const { accessToken: rootToken } = await apiSignIn(lk.url, "root", PASSWORD);
    const jar = cookieJar();
    await browserSignIn(`${lk.url}/login`, "alice", PASSWORD, jar);
    expect((await forward("", { cookie: jar.header() })).status).toBe(200);
    // The browser session is an ordinary session: the API lists it.
    const { accessToken } = await apiSignIn(lk.url, "alice", PASSWORD);
    const listed = (await (await fetch(`${lk.url}/api/v1/auth/sessions`, { headers: { authorization: `Bearer ${accessToken}` } })).json()) as unknown[];
    expect(listed.length).toBeGreaterThanOrEqual(3);
    // A password change from the API ends every other session, the browser's included.
    const changed = await fetch(`${lk.url}/api/v1/auth/password`, {
      method: "POST",
      headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({ current_password: PASSWORD, new_password: `${PASSWORD} 2` }),
    });
    expect(changed.status).toBe(200);
    expect((await forward("", { cookie: jar.header() })).status).toBe(401);
    expect((await forward("", { cookie: alice.header() })).status).toBe(401);

    const again = cookieJar();
    await browserSignIn(`${lk.url}/login`, "alice", `${PASSWORD} 2`, again);
    expect((await forward("", { cookie: again.header() })).status).toBe(200);
    const users = (await (await fetch(`${lk.url}/api/v1/admin/users?query=alice`, { headers: { authorization: `Bearer ${rootToken}` } })).json()) as { users: { id: string }[] };
    const disabled = await fetch(`${lk.url}/api/v1/admin/users/${users.users[0]!.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${rootToken}`, "content-type": "application/json" },
      body: JSON.stringify({ disabled: true }),
    });
    expect(disabled.status).toBe(200);
    expect((await forward("", { cookie: again.header() })).status).toBe(401);
  });
});

describe("proxy headers only from TRUST_PROXY", () => {
  test("with rules, a proxy TRUST_PROXY does not name is denied; a trusted one's own family applies, both families are refused", async () => {
    const rulesDir = tempDataDir();
    writeFileSync(join(rulesDir, "rules.toml"), '[[rule]]\nname = "public"\npaths = ["/public"]\npolicy = "bypass"\n');
    const forwarded = { "x-forwarded-proto": "http", "x-forwarded-host": "127.0.0.1:9", "x-forwarded-uri": "/public/x", "x-forwarded-method": "GET" };
    const nginx = { "x-original-url": "http://127.0.0.1:9/public/x", "x-original-method": "GET" };
    const untrusted = await start({ ACCESS_RULES_FILE: join(rulesDir, "rules.toml"), TRUST_PROXY: "10.9.9.9" }, []);
    const refused = await fetch(`${untrusted.url}/api/v1/auth/forward`, { headers: forwarded });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: "forbidden", message: "This account may not access this resource." });
    const trusted = await start({ ACCESS_RULES_FILE: join(rulesDir, "rules.toml"), TRUST_PROXY: "127.0.0.1" }, []);
    expect((await fetch(`${trusted.url}/api/v1/auth/forward`, { headers: forwarded })).status).toBe(200);
    expect((await fetch(`${trusted.url}/api/v1/auth/forward`, { headers: nginx })).status).toBe(200);
    expect((await fetch(`${trusted.url}/api/v1/auth/forward`, { headers: { ...forwarded, "x-forwarded-uri": "/private", "x-original-url": nginx["x-original-url"] } })).status).toBe(403);
    // What cannot be parsed is denied, never given the default policy: a bad port, an undecodable path.
    for (const bad of [{ "x-forwarded-host": "127.0.0.1:99999" }, { "x-forwarded-host": "127.0.0.1:80:80" }, { "x-forwarded-uri": "/public/%ff" }, { "x-forwarded-uri": "/public/%5c" }])
      expect((await fetch(`${trusted.url}/api/v1/auth/forward`, { headers: { ...forwarded, ...bad } })).status).toBe(403);
    removeDataDir(rulesDir);
  });
});

describe("configuration", () => {
  const serve = (env: Record<string, string>) => runCli(["serve"], { DATA_DIR: tempDataDir(), HOST: "127.0.0.1", PORT: String(freePort()), ...env });

  test("a bad ACCESS_RULES_FILE stops the start with exit 2 and one line naming the rule", async () => {
    const dir = tempDataDir();
    writeFileSync(join(dir, "rules.toml"), '[[rule]]\nname = "ok"\npolicy = "deny"\n\n[[rule]]\nname = "lan"\nnetworks = ["192.168.1.0/40"]\npolicy = "bypass"\n');
    const result = await serve({ ACCESS_RULES_FILE: join(dir, "rules.toml"), TRUST_PROXY: "127.0.0.1" });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toEqual([
      `latchkey: configuration error: ACCESS_RULES_FILE=${join(dir, "rules.toml")}: rule 2 ("lan"): network "192.168.1.0/40" must be an address or CIDR, e.g. 192.168.1.0/24`,
    ]);
    const missing = await serve({ ACCESS_RULES_FILE: join(dir, "absent.toml"), TRUST_PROXY: "127.0.0.1" });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`latchkey: configuration error: ACCESS_RULES_FILE=${join(dir, "absent.toml")} does not exist\n`);
    removeDataDir(dir);
  });

  test('roles = ["Family"] in ACCESS_RULES_FILE (which would match nobody: roles are lower case) stops the start naming the value', async () => {
    const dir = tempDataDir();
    writeFileSync(join(dir, "rules.toml"), '[[rule]]\nname = "photos"\nhosts = ["photos.example.com"]\nroles = ["family", "Family"]\n');
    const result = await serve({ ACCESS_RULES_FILE: join(dir, "rules.toml") });
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 2,
      stderr:
        `latchkey: configuration error: ACCESS_RULES_FILE=${join(dir, "rules.toml")}: rule 1 ("photos"): role "Family" is not a role name: ` +
        `roles are 1-32 characters of a-z, 0-9, '_' or '-', as the API stores them (write "family")\n`,
    });
    removeDataDir(dir);
  });

  test("ACCESS_RULES_FILE without TRUST_PROXY stops the start with exit 2 and one line naming TRUST_PROXY", async () => {
    const dir = tempDataDir();
    writeFileSync(join(dir, "rules.toml"), '[[rule]]\nname = "public"\npaths = ["/public"]\npolicy = "bypass"\n');
    for (const env of [{}, { TRUST_PROXY: "false" }] as Record<string, string>[]) {
      const result = await serve({ ACCESS_RULES_FILE: join(dir, "rules.toml"), ...env });
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        "latchkey: configuration error: TRUST_PROXY must name your reverse proxy when ACCESS_RULES_FILE is set: the rules match the request only a trusted proxy can describe\n",
      );
    }
    removeDataDir(dir);
  });

  for (const [env, named] of [
    [{ SESSION_IDLE_TTL: "soon" }, "SESSION_IDLE_TTL"],
    [{ SESSION_COOKIE_NAME: "bad name" }, "SESSION_COOKIE_NAME"],
    [{ SESSION_COOKIE_NAME: "latchkey_access" }, "SESSION_COOKIE_NAME"],
    [{ SIGN_IN_URLS: "auth.example.net" }, "SIGN_IN_URLS"],
    [{ SIGN_IN_URLS: "https://auth.example.net/login" }, "SIGN_IN_URLS"],
    [{ APP_NAME: "x".repeat(101) }, "APP_NAME"],
  ] as [Record<string, string>, string][])
    test(`${JSON.stringify(env).slice(0, 60)} stops the start with exit 2 naming ${named}`, async () => {
      const result = await serve(env);
      expect(result.code).toBe(2);
      expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(result.stderr).toContain(named);
    });
});
