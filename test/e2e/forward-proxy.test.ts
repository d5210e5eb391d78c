/**
 * Forward auth through real proxies: Debian's nginx (auth_request + error_page 401) and Caddy (forward_auth) on
 * loopback in front of an echo app, asking the compiled binary, each configured with the app block of its file in
 * examples/ (moved to loopback ports). The same scenarios run behind both.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { caddyExampleAppSite, nginxExampleAppBlock, startCaddy, startEcho, startNginx, type Echo, type Proxy } from "../support/proxies";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";
import { apiSignIn, browserSignIn, cookieJar, signOut } from "../support/pages";

const PASSWORD = "correct horse battery staple";
const RULES = `
default_policy = "signed_in"

[[rule]]
name = "health checks"
paths = ["/api/health"]
methods = ["GET"]
policy = "bypass"

[[rule]]
name = "admins only"
paths = ["/admin-area"]
roles = ["admin"]

[[rule]]
name = "closed"
paths = ["/blocked"]
policy = "deny"
`;

let dataDir: string;
let latchkey: SpawnedServer;
let lk: string;
let echo: Echo;

beforeAll(async () => {
  dataDir = tempDataDir();
  for (const [name, roles] of [["alice", "family"], ["bob", ""]] as const) {
    expect((await runCli(["user", "add", name, "--email", `${name}@example.com`], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
    expect((await runCli(["user", "roles", name, roles], { DATA_DIR: dataDir })).code).toBe(0);
  }
  expect((await runCli(["user", "add", "root", "--admin"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  writeFileSync(join(dataDir, "rules.toml"), RULES);
  const port = freePort();
  lk = `http://127.0.0.1:${port}`;
  latchkey = await spawnServer([BINARY, "serve"], {
    env: {
      PATH: process.env.PATH ?? "",
      HOST: "127.0.0.1",
      PORT: String(port),
      DATA_DIR: dataDir,
      PUBLIC_URL: lk,
      TRUST_PROXY: "127.0.0.1",
      ACCESS_RULES_FILE: join(dataDir, "rules.toml"),
    },
  });
  echo = startEcho();
  // alice's address is verified (by an admin); bob's is not, so no app hears it as his.
  const { accessToken } = await apiSignIn(lk, "root", PASSWORD);
  const admin = { authorization: `Bearer ${accessToken}`, "content-type": "application/json" };
  const found = (await (await fetch(`${lk}/api/v1/admin/users?query=alice`, { headers: admin })).json()) as { users: { id: string }[] };
  const verified = await fetch(`${lk}/api/v1/admin/users/${found.users[0]!.id}`, { method: "PATCH", headers: admin, body: JSON.stringify({ email_verified: true }) });
  expect(verified.status).toBe(200);
});

afterAll(async () => {
  echo?.stop();
  await latchkey?.stop();
  removeDataDir(dataDir);
});

/** The app blocks of examples/nginx/latchkey.conf and examples/caddy/Caddyfile, as they are, on loopback ports. */
const nginxBlock = (port: number) => nginxExampleAppBlock(port, lk, echo.url);
const caddyfile = (port: number) => caddyExampleAppSite(port, lk, echo.url);

const HTML = { accept: "text/html,application/xhtml+xml" };

for (const kind of ["nginx", "caddy"] as const) {
  describe(`behind ${kind}`, () => {
    let proxy: Proxy;
    beforeAll(async () => {
      proxy = kind === "nginx" ? await startNginx(nginxBlock) : await startCaddy(caddyfile);
    });
    afterAll(async () => {
      await proxy?.stop();
    });

    const get = (path: string, headers: Record<string, string> = {}) => fetch(`${proxy.url}${path}`, { headers, redirect: "manual" });

    test("an anonymous browser is sent to the sign-in page with rd; an API client gets 401", async () => {
      const page = await get("/private/page?x=1", HTML);
      expect(page.status).toBe(302);
      expect(page.headers.get("location")).toBe(`${lk}/login?rd=${encodeURIComponent(`${proxy.url}/private/page?x=1`)}`);
      const api = await get("/private/data", { accept: "application/json" });
      expect(api.status).toBe(401);
      if (kind === "caddy") {
        expect(api.headers.get("www-authenticate")).toContain("Bearer");
        expect(await api.json()).toMatchObject({ error: "unauthorized" });
      }
    });

    test("signed in through the page, the app sees Remote-User, -Groups, -Email, -Name; logout blocks at once", async () => {
      const first = await get("/private/page", HTML);
      const jar = cookieJar();
      const landed = await browserSignIn(first.headers.get("location")!, "alice", PASSWORD, jar);
      expect(landed).toBe(`${proxy.url}/private/page`);
      const through = await get("/private/page", { ...HTML, cookie: jar.header() });
      expect(through.status).toBe(200);
      expect(await through.json()).toEqual({
        method: "GET",
        path: "/private/page",
        remote_user: "alice",
        remote_groups: "family",
        remote_email: "alice@example.com",
        remote_name: "alice",
        remote_user_underscore: null,
        remote_groups_underscore: null,
      });
      // Rules: an admin-only path and a denied one are 403 for alice; a bypassed path passes without anyone.
      expect((await get("/admin-area/x", { cookie: jar.header() })).status).toBe(403);
      expect((await get("/blocked", { cookie: jar.header() })).status).toBe(403);
      // A client's own Remote-User never reaches the app: the proxy overwrites it with the empty answer.
      const health = await get("/api/health", { "remote-user": "admin", "remote-groups": "admin" });
      expect(health.status).toBe(200);
      // nginx leaves an empty header out; Caddy passes it on empty.
      const none = kind === "nginx" ? null : "";
      expect(await health.json()).toMatchObject({ path: "/api/health", remote_user: none, remote_groups: none });
      // A bypass is for GET only here; another method still needs a session.
      expect((await fetch(`${proxy.url}/api/health`, { method: "POST", redirect: "manual" })).status).toBe(401);

      // A refusal shows Latchkey's own page, behind nginx too: who is signed in, a sign-out and a switch-account link.
      const refused = await get("/admin-area/x?y=1", { ...HTML, cookie: jar.header() });
      expect(refused.status).toBe(403);
      expect(refused.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(refused.headers.get("content-security-policy")).toContain("default-src 'none'");
      const page = await refused.text();
      expect(page).toContain("Signed in as <strong>alice</strong>");
      expect(page).toContain(`<a class="button" href="${lk}/logout?switch=1&rd=${encodeURIComponent(`${proxy.url}/admin-area/x?y=1`)}">Switch account</a>`);
      expect(page).toContain(`<a class="button secondary" href="${lk}/logout">Sign out</a>`);
      expect(page).not.toContain("<script");
      // A POST refused behind nginx still shows the page (nginx asks again as a GET for it).
      const refusedPost = await fetch(`${proxy.url}/blocked`, { method: "POST", headers: { ...HTML, cookie: jar.header() }, redirect: "manual" });
      expect(refusedPost.status).toBe(403);
      expect(await refusedPost.text()).toContain("Signed in as <strong>alice</strong>");

      // Logout ends the session on the server: the cookie the browser had before signing out, replayed (as a copy
      // of it would be), is refused at once. The jar itself drops the cookie, so it proves nothing on its own.
      const before = jar.header();
      await signOut(lk, jar);
      expect(jar.header()).not.toBe(before);
      expect((await get("/private/page", { accept: "application/json", cookie: before })).status).toBe(401);
      expect((await get("/private/page", { accept: "application/json", cookie: jar.header() })).status).toBe(401);
    });

    test("a client's own headers steer nothing: X-Original-*, X-Forwarded-*, Remote-User and Remote_User", async () => {
      // The bypass named in the other family's headers does not open a private page...
      const steered = await get("/private", { "x-original-url": `${proxy.url}/api/health`, "x-original-method": "GET" });
      // (nginx overwrites X-Original-*; Caddy drops a client's, and Latchkey would refuse the mix if it did not.)
      expect(steered.status).toBe(401);
      const forwarded = await get("/private", { "x-forwarded-uri": "/api/health", "x-forwarded-host": new URL(proxy.url).host, "x-forwarded-method": "GET" });
      expect(forwarded.status).toBe(401);
      // ...a POST does not become the bypassed GET...
      const post = await fetch(`${proxy.url}/api/health`, { method: "POST", headers: { "x-original-method": "GET", "x-forwarded-method": "GET" }, redirect: "manual" });
      expect([401, 403]).toContain(post.status);
      // ...and the app never hears a client's Remote-User, with either spelling.
      const health = await get("/api/health", { "remote-user": "root", remote_user: "root", "remote-groups": "admin", remote_groups: "admin" });
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ remote_user: kind === "nginx" ? null : "", remote_user_underscore: null, remote_groups_underscore: null });
    });

    test("Basic with an API key as the password passes; Basic with the account password never does", async () => {
      const { apiKey } = await apiSignIn(lk, "bob", PASSWORD, { createKey: `webdav-${kind}` });
      const basic = (password: string) => ({ authorization: `Basic ${btoa(`bob:${password}`)}` });
      const withKey = await get("/dav/file.txt", basic(apiKey!));
      expect(withKey.status).toBe(200);
      // bob's address is not verified: Remote-Email stays empty (nginx leaves an empty header out).
      expect(await withKey.json()).toMatchObject({ remote_user: "bob", remote_email: kind === "nginx" ? null : "" });
      expect((await get("/dav/file.txt", basic(PASSWORD))).status).toBe(401);
      expect((await get("/dav/file.txt", { "x-api-key": apiKey! })).status).toBe(200);
    });
  });
}
