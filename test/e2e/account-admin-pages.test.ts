/**
 * The account and admin pages through the compiled binary, as a browser without JavaScript uses them: every
 * action is a form POST with its CSRF token, answered by a redirect back or by the page with a message.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { browserSignIn, cookieJar, csrfOf, type CookieJar } from "../support/pages";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";

const PASSWORD = "correct horse battery staple";
let dataDir: string;
let server: SpawnedServer;
let lk: string;

beforeAll(async () => {
  dataDir = tempDataDir();
  for (const [name, admin] of [["root", true], ["alice", false], ["carol", false]] as const)
    expect((await runCli(["user", "add", name, "--email", `${name}@example.com`, ...(admin ? ["--admin"] : [])], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  const port = freePort();
  lk = `http://127.0.0.1:${port}`;
  // Many sign-ins from one address: the per-address limit (tested in pages.test.ts) is raised out of the way.
  server = await spawnServer([BINARY, "serve"], { env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, PUBLIC_URL: lk, RATE_LIMIT_IP: "1000/1m", RATE_LIMIT_IP_BURST: "1000" } });
});

afterAll(async () => {
  await server?.stop();
  removeDataDir(dataDir);
});

async function signedIn(username: string, password = PASSWORD): Promise<CookieJar> {
  const jar = cookieJar();
  await browserSignIn(`${lk}/login`, username, password, jar);
  return jar;
}

async function page(path: string, jar: CookieJar): Promise<string> {
  const response = await fetch(`${lk}${path}`, { headers: { cookie: jar.header() } });
  expect(response.status).toBe(200);
  return response.text();
}

/** Posts the form at `action` found on the page at `from`, with `fields` (its CSRF token is taken from the page). */
async function submit(jar: CookieJar, from: string, action: string, fields: Record<string, string> = {}, html?: string) {
  const source = html ?? (await page(from, jar));
  return fetch(`${lk}${action}`, {
    method: "POST",
    headers: { cookie: jar.header(), origin: lk, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrf: csrfOf(source, action), ...fields }),
    redirect: "manual",
  });
}

const forwardStatus = async (headers: Record<string, string>) => (await fetch(`${lk}/api/v1/auth/forward`, { headers })).status;

describe("account page", () => {
  test("signed out, /account sends to sign-in and back", async () => {
    const response = await fetch(`${lk}/account`, { redirect: "manual" });
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("/login?rd=%2Faccount");
  });

  test("lists this browser's and other sessions; signs out one, then all others", async () => {
    const here = await signedIn("alice");
    const phone = await signedIn("alice");
    const tablet = await signedIn("alice");
    const html = await page("/account", here);
    expect(html).toContain("<strong>This browser</strong>");
    const ids = [...html.matchAll(/name="session_id" value="([^"]+)"/g)].map((match) => match[1]!);
    expect(ids.length).toBeGreaterThanOrEqual(2);
    // Which id is the phone's: the one whose revocation makes the phone's cookie stop working.
    let revoked = await submit(here, "/account", "/account/sessions/revoke", { session_id: ids[0]! }, html);
    expect(revoked.status).toBe(303);
    expect(revoked.headers.get("location")).toBe("/account?done=session-revoked");
    const alive = [await forwardStatus({ cookie: phone.header() }), await forwardStatus({ cookie: tablet.header() })];
    expect(alive.sort()).toEqual([200, 401]);
    expect(await page("/account?done=session-revoked", here)).toContain("That session is signed out.");

    revoked = await submit(here, "/account", "/account/sessions/revoke-others");
    expect(revoked.status).toBe(303);
    expect(await forwardStatus({ cookie: phone.header() })).toBe(401);
    expect(await forwardStatus({ cookie: tablet.header() })).toBe(401);
    expect(await forwardStatus({ cookie: here.header() })).toBe(200);
  });

  test("another user's session id is not found, and nothing of theirs ends", async () => {
    const carol = await signedIn("carol");
    const carolIds = [...(await page("/account", carol)).matchAll(/name="session_id" value="([^"]+)"/g)].map((m) => m[1]);
    const other = await signedIn("carol");
    const otherId = [...(await page("/account", other)).matchAll(/name="session_id" value="([^"]+)"/g)].map((m) => m[1]!).find((id) => !carolIds.includes(id));
    const alice = await signedIn("alice");
    const answer = await submit(alice, "/account", "/account/sessions/revoke", { session_id: otherId ?? "x" });
    expect(answer.status).toBe(404);
    expect(await answer.text()).toContain("No such session.");
    expect(await forwardStatus({ cookie: other.header() })).toBe(200);
  });

  test("creates an API key shown once, lists it, and deletes it: the key stops working on its next request", async () => {
    const jar = await signedIn("alice");
    const created = await submit(jar, "/account", "/account/keys", { name: "nas <backup>", expires_in: "" });
    expect(created.status).toBe(201);
    const html = await created.text();
    const secret = /<p class="secret" id="new-key">(lk_[0-9A-Za-z]{49})<\/p>/.exec(html)?.[1];
    expect(secret).toBeDefined();
    expect(html).toContain("API key &quot;nas &lt;backup&gt;&quot; created");
    expect(await forwardStatus({ "x-api-key": secret! })).toBe(200);
    const listing = await page("/account", jar);
    expect(listing).not.toContain(secret!);
    expect(listing).toContain(`lk_${secret!.slice(3, 11)}…`);
    const keyId = /name="key_id" value="([^"]+)"/.exec(listing)![1]!;
    // A token of another form (key-create) does not work on this one.
    const crossForm = await fetch(`${lk}/account/keys/delete`, {
      method: "POST",
      headers: { cookie: jar.header(), origin: lk, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: csrfOf(listing, "/account/keys"), key_id: keyId }),
      redirect: "manual",
    });
    expect(crossForm.status).toBe(403);
    const deleted = await submit(jar, "/account", "/account/keys/delete", { key_id: keyId }, listing);
    expect(deleted.status).toBe(303);
    expect(await forwardStatus({ "x-api-key": secret! })).toBe(401);
  });

  test("a bad key name is shown on the page (422), and creates nothing", async () => {
    const jar = await signedIn("alice");
    const answer = await submit(jar, "/account", "/account/keys", { name: "   " });
    expect(answer.status).toBe(422);
    expect(await answer.text()).toContain('role="alert">Must be 1-64 characters.');
  });

  test("changes the password with the current one; a wrong current one is refused; other sessions end", async () => {
    const jar = await signedIn("carol");
    const other = await signedIn("carol");
    const wrong = await submit(jar, "/account", "/account/password", { current_password: "nope", new_password: `${PASSWORD}!` });
    expect(wrong.status).toBe(403);
    expect(await wrong.text()).toContain("The current password is incorrect.");
    const weak = await submit(jar, "/account", "/account/password", { current_password: PASSWORD, new_password: "carol" });
    expect(weak.status).toBe(422);
    const changed = await submit(jar, "/account", "/account/password", { current_password: PASSWORD, new_password: `${PASSWORD}!` });
    expect(changed.status).toBe(303);
    expect(changed.headers.get("location")).toBe("/account?done=password-changed");
    expect(await forwardStatus({ cookie: other.header() })).toBe(401);
    expect(await forwardStatus({ cookie: jar.header() })).toBe(200);
    await signedIn("carol", `${PASSWORD}!`);
  });
});

describe("admin page", () => {
  test("needs the admin role: 403 page for others, sign-in for nobody", async () => {
    const alice = await signedIn("alice");
    const refused = await fetch(`${lk}/admin`, { headers: { cookie: alice.header() } });
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("This page needs the admin role.");
    const anonymous = await fetch(`${lk}/admin`, { redirect: "manual" });
    expect(anonymous.headers.get("location")).toBe("/login?rd=%2Fadmin");
    // A form posted by a non-admin with a valid token of its own session is refused too.
    const forged = await fetch(`${lk}/admin/users/delete`, {
      method: "POST",
      headers: { cookie: alice.header(), origin: lk, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: csrfOf(await page("/account", alice), "/logout"), id: "x" }),
      redirect: "manual",
    });
    expect(forged.status).toBe(403);
  });

  test("creates a user, searches, sets roles, disables (the user's next proxied request is refused), enables, resets the password, deletes", async () => {
    const root = await signedIn("root");
    const created = await submit(root, "/admin", "/admin/users", { username: "dave", email: "dave@example.com", roles: "family, media", password: PASSWORD });
    expect(created.status).toBe(303);
    expect(created.headers.get("location")).toBe("/admin?done=created");
    const found = await page("/admin?q=dave", root);
    expect(found).toContain("<strong>dave</strong>");
    expect(found).not.toContain("<strong>alice</strong>");
    const id = /name="id" value="([^"]+)"/.exec(found)![1]!;

    const dave = await signedIn("dave");
    expect(await forwardStatus({ cookie: dave.header() })).toBe(200);
    expect((await fetch(`${lk}/api/v1/auth/forward?roles=media`, { headers: { cookie: dave.header() } })).status).toBe(200);
    expect((await submit(root, "/admin?q=dave", "/admin/users/roles", { id, roles: "family" })).status).toBe(303);
    expect((await fetch(`${lk}/api/v1/auth/forward?roles=media`, { headers: { cookie: dave.header() } })).status).toBe(403);

    // Email, verified flag and metadata: what the proxied apps are told (Remote-Email, Remote-Name).
    expect((await submit(root, "/admin?q=dave", "/admin/users/email", { id, email: "dave@example.net", email_verified: "true" })).status).toBe(303);
    const badMetadata = await submit(root, "/admin?q=dave", "/admin/users/metadata", { id, metadata: "{not json" });
    expect(badMetadata.status).toBe(422);
    expect(await badMetadata.text()).toContain("Must be a JSON object");
    expect((await submit(root, "/admin?q=dave", "/admin/users/metadata", { id, metadata: '{"name":"Dave Davies"}' })).status).toBe(303);
    const told = await fetch(`${lk}/api/v1/auth/forward`, { headers: { cookie: dave.header() } });
    expect([told.headers.get("remote-email"), told.headers.get("remote-name")]).toEqual(["dave@example.net", "Dave Davies"]);
    const mfaReset = await submit(root, "/admin?q=dave", "/admin/users/mfa", { id });
    expect(mfaReset.headers.get("location")).toBe("/admin?done=mfa");

    expect((await submit(root, "/admin?q=dave", "/admin/users/status", { id, disabled: "true" })).status).toBe(303);
    expect(await forwardStatus({ cookie: dave.header() })).toBe(401);
    expect(await page("/admin?q=dave", root)).toContain("<td>disabled</td>");
    expect((await submit(root, "/admin?q=dave", "/admin/users/status", { id, disabled: "false" })).status).toBe(303);

    const again = await signedIn("dave");
    const reset = await submit(root, "/admin?q=dave", "/admin/users/password", { id, password: `${PASSWORD} reset` });
    expect(reset.status).toBe(303);
    expect(await forwardStatus({ cookie: again.header() })).toBe(401);
    const newSession = await signedIn("dave", `${PASSWORD} reset`);

    expect((await submit(root, "/admin?q=dave", "/admin/users/delete", { id })).status).toBe(303);
    expect(await forwardStatus({ cookie: newSession.header() })).toBe(401);
    expect(await page("/admin?q=dave", root)).toContain("No users match.");
  });

  test("the last admin cannot be disabled, demoted or deleted; the page says why", async () => {
    const root = await signedIn("root");
    const html = await page("/admin?q=root", root);
    const id = /name="id" value="([^"]+)"/.exec(html)![1]!;
    for (const [action, fields] of [
      ["/admin/users/status", { id, disabled: "true" }],
      ["/admin/users/roles", { id, roles: "" }],
      ["/admin/users/delete", { id }],
    ] as const) {
      const answer = await submit(root, "/admin?q=root", action, fields, html);
      expect(answer.status).toBe(409);
      expect(await answer.text()).toContain("last");
    }
    expect(await forwardStatus({ cookie: root.header() })).toBe(200);
  });

  test("the audit log filters by user and by event", async () => {
    const root = await signedIn("root");
    // Its own events, so that it does not depend on what the tests before it did (each runs alone: bun test -t).
    for (const username of ["audited", "gone"]) expect((await submit(root, "/admin", "/admin/users", { username, password: PASSWORD })).status).toBe(303);
    const audited = await signedIn("audited");
    expect((await submit(audited, "/account", "/account/password", { current_password: PASSWORD, new_password: `${PASSWORD} again` })).status).toBe(303);
    const row = await page("/admin?q=gone", root);
    const id = /action="\/admin\/users\/delete"[\s\S]*?name="id" value="([^"]+)"/.exec(row)![1]!;
    expect((await submit(root, "/admin?q=gone", "/admin/users/delete", { id }, row)).status).toBe(303);
    const byEvent = await page("/admin?audit_event=admin_user_deleted", root);
    const section = byEvent.slice(byEvent.indexOf('id="audit"'));
    expect(section).toContain("<td>admin_user_deleted</td>");
    expect(section).not.toContain("<td>login_succeeded</td>");
    const byUser = await page("/admin?audit_user=audited&audit_event=password_changed", root);
    const rows = byUser.slice(byUser.indexOf('id="audit"')).match(/<td>password_changed<\/td>/g) ?? [];
    expect(rows.length).toBe(1);
    expect(byUser).toContain('<option value="password_changed" selected>password_changed</option>');
  });
});
