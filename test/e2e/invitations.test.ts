/**
 * Invitations and the sign-up page (issue 24) through the compiled binary, as a browser without JavaScript uses
 * them (form posts with their CSRF tokens), with the invitation mail going through the real SMTP test server.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { openTestDatabase, time } from "../support/database";
import { browserSignIn, cookieJar, csrfOf, type CookieJar } from "../support/pages";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";
import { mailCatcherForFile, smtpEnv } from "../support/smtp";
import { screenshot, sharedChromium } from "../support/browser";

const PASSWORD = "correct horse battery staple";
const mail = mailCatcherForFile();
const chromium = sharedChromium();

interface Instance {
  url: string;
  dataDir: string;
  env: Record<string, string>;
  server: SpawnedServer;
}

/** A server with its own DATA_DIR and an admin `root`; the per-address limit is raised out of the way. */
async function instance(env: Record<string, string>): Promise<Instance> {
  const dataDir = tempDataDir();
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const full = { PATH: process.env.PATH ?? "", DATA_DIR: dataDir, PUBLIC_URL: url, ...env };
  expect((await runCli(["user", "add", "root", "--email", "root@example.com", "--admin"], full, PASSWORD)).code).toBe(0);
  const server = await spawnServer([BINARY, "serve"], { env: { ...full, HOST: "127.0.0.1", PORT: String(port), RATE_LIMIT_IP: "1000/1m", RATE_LIMIT_IP_BURST: "1000" } });
  return { url, dataDir, env: full, server };
}

/** Registration closed (the default), mail on. */
let closed: Instance;
/** ALLOW_REGISTRATION=true, no mail. */
let open: Instance;
/** Registration closed, mail on, REQUIRE_EMAIL_VERIFICATION and MFA_REQUIRED_ROLES=staff. */
let strict: Instance;

beforeAll(async () => {
  await chromium.launch();
  closed = await instance(smtpEnv(mail.catcher, mail.certificate));
  open = await instance({ ALLOW_REGISTRATION: "true" });
  strict = await instance({ ...smtpEnv(mail.catcher, mail.certificate), REQUIRE_EMAIL_VERIFICATION: "true", MFA_REQUIRED_ROLES: "staff" });
});

afterAll(async () => {
  await chromium.close();
  for (const running of [closed, open, strict]) {
    await running?.server.stop();
    if (running) removeDataDir(running.dataDir);
  }
});

/** `latchkey user invite ...` against an instance: the printed link. */
async function cliInvite(on: Instance, args: string[], env: Record<string, string> = on.env): Promise<string> {
  const result = await runCli(["user", "invite", ...args], env);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: expect.stringContaining("invitation ") });
  const link = result.stdout.trim();
  expect(link).toMatch(new RegExp(`^${on.url.replace(/[.]/g, "\\.")}/invite/[A-Za-z0-9_-]{43}$`));
  return link;
}

async function get(url: string, jar: CookieJar) {
  const response = await fetch(url, { headers: { cookie: jar.header() }, redirect: "manual" });
  jar.take(response);
  return { status: response.status, html: await response.text(), response };
}

async function post(url: string, jar: CookieJar, fields: Record<string, string>, origin = new URL(url).origin) {
  const response = await fetch(url, {
    method: "POST",
    headers: { cookie: jar.header(), origin, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields),
    redirect: "manual",
  });
  jar.take(response);
  return { status: response.status, location: response.headers.get("location"), html: await response.text() };
}

/** Opens a sign-up page (an invitation's or /signup) and returns the jar and the form's CSRF token. */
async function openForm(url: string) {
  const jar = cookieJar();
  const page = await get(url, jar);
  expect(page.status).toBe(200);
  return { jar, csrf: csrfOf(page.html), html: page.html };
}

async function signUpWith(url: string, username: string, extra: Record<string, string> = {}) {
  const { jar, csrf } = await openForm(url);
  return { jar, answer: await post(url, jar, { csrf, username, password: PASSWORD, ...extra }) };
}

async function db<T>(on: Instance, use: (db: Awaited<ReturnType<typeof openTestDatabase>>) => Promise<T>, writable = false): Promise<T> {
  const handle = await openTestDatabase(on.dataDir, { writable });
  try {
    return await use(handle);
  } finally {
    await handle.close();
  }
}

const userRow = (on: Instance, username: string) =>
  db(on, (d) => d.get<{ roles: string; email: string | null; email_verified: number }>("SELECT roles, email, email_verified FROM users WHERE username = ?", username));

const tokenOf = (link: string) => link.slice(link.lastIndexOf("/") + 1);

async function adminJar(on: Instance): Promise<CookieJar> {
  const jar = cookieJar();
  await browserSignIn(`${on.url}/login`, "root", PASSWORD, jar);
  return jar;
}

async function adminToken(on: Instance): Promise<string> {
  const login = await fetch(`${on.url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "root", password: PASSWORD }) });
  expect(login.status).toBe(200);
  return ((await login.json()) as { access_token: string }).access_token;
}

describe("an invitation link while registration is closed", () => {
  test("registration stays closed: /signup is a 404 page and the API's register 403 registration_disabled", async () => {
    const page = await get(`${closed.url}/signup`, cookieJar());
    expect(page.status).toBe(404);
    expect(page.response.headers.get("content-type")).toContain("text/html");
    expect(page.html).toContain("Registration is closed");
    expect(page.html).not.toContain('action="/signup"');
    expect((await get(`${closed.url}/login`, cookieJar())).html).not.toContain('href="/signup"');
    const api = await fetch(`${closed.url}/api/v1/auth/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "walkin", password: PASSWORD }) });
    expect(api.status).toBe(403);
    expect(((await api.json()) as { error: string }).error).toBe("registration_disabled");
  });

  test("the CLI's link makes one account with the invitation's roles and signs it in; the second use gets the spent page", async () => {
    const link = await cliInvite(closed, ["--roles", "family,kids", "--uses", "1"], { ...closed.env, SMTP_URL: "" });
    const late = await openForm(link); // opened before the first person used it
    const { jar, answer } = await signUpWith(link, "dora");
    expect(answer.status).toBe(303);
    expect(answer.location).toBe("/account");
    expect((await get(`${closed.url}/account`, jar)).html).toContain("dora");
    expect(await userRow(closed, "dora")).toEqual({ roles: '["family","kids"]', email: null, email_verified: 0 });

    const second = await get(link, cookieJar());
    expect(second.status).toBe(410);
    expect(second.html).toContain("Invitation already used");
    const refused = await post(link, late.jar, { csrf: late.csrf, username: "eve", password: PASSWORD });
    expect(refused.status).toBe(410);
    expect(refused.html).toContain("Invitation already used");
    expect(await userRow(closed, "eve")).toBeUndefined();
    const api = await fetch(`${closed.url}/api/v1/auth/invitations/${tokenOf(link)}`);
    expect(api.status).toBe(410);
    expect(((await api.json()) as { error: string }).error).toBe("invitation_spent");
  });

  test("two sign-ups at once on a --uses 1 link: exactly one account is made and the use is counted once", async () => {
    const link = await cliInvite(closed, ["--uses", "1"]);
    const forms = await Promise.all(["race-a", "race-b"].map(async (username) => ({ username, ...(await openForm(link)) })));
    const answers = await Promise.all(forms.map(({ username, jar, csrf }) => post(link, jar, { csrf, username, password: PASSWORD })));
    expect(answers.map((answer) => answer.status).sort()).toEqual([303, 410]);
    const made = (await Promise.all(forms.map(({ username }) => userRow(closed, username)))).filter(Boolean);
    expect(made.length).toBe(1);
    const uses = await db(closed, (d) => d.get<{ uses: number }>("SELECT uses FROM invitations WHERE token_hash = (SELECT token_hash FROM invitations ORDER BY created_at DESC LIMIT 1)"));
    expect(uses).toEqual({ uses: 1 });
  });

  test("two sign-ups at once with one username on a --uses 2 link: the refused one gives its use back", async () => {
    const link = await cliInvite(closed, ["--uses", "2"]);
    const forms = await Promise.all([0, 1].map(() => openForm(link)));
    const answers = await Promise.all(forms.map(({ jar, csrf }) => post(link, jar, { csrf, username: "twin", password: PASSWORD })));
    expect(answers.map((answer) => answer.status).sort()).toEqual([303, 409]);
    const invitation = () => db(closed, (d) => d.get<{ uses: number }>("SELECT uses FROM invitations ORDER BY created_at DESC LIMIT 1"));
    expect(await invitation()).toEqual({ uses: 1 });
    expect((await signUpWith(link, "twin2")).answer.status).toBe(303);
    expect(await invitation()).toEqual({ uses: 2 });
  });

  test("a refused sign-up (taken username) spends no use; a weak password is shown beside the form with the API's message", async () => {
    const link = await cliInvite(closed, ["--uses", "1"]);
    const taken = await signUpWith(link, "root");
    expect(taken.answer.status).toBe(409);
    expect(taken.answer.html).toContain("That username is already taken.");
    const weak = await signUpWith(link, "frank", { password: "password" });
    expect(weak.answer.status).toBe(422);
    const api = await fetch(`${closed.url}/api/v1/auth/invitations/${tokenOf(link)}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "frank", password: "password" }),
    });
    expect(api.status).toBe(422);
    const apiError = (await api.json()) as { error: string; details: { message: string }[] };
    expect(apiError.error).toBe("weak_password");
    // Beside the form: the message sits in the form's section, before the form.
    const section = weak.answer.html.slice(weak.answer.html.indexOf("<section"), weak.answer.html.indexOf("</form>"));
    expect(section).toContain(`role="alert"`);
    expect(section).toContain(apiError.details[0]!.message);
    expect((await signUpWith(link, "frank")).answer.status).toBe(303);
  });

  test("expired and revoked links get their own page (HTML) and code (API); an unknown one a 404 page", async () => {
    const expired = await cliInvite(closed, ["--expires", "1h"]);
    await db(closed, (d) => d.run("UPDATE invitations SET expires_at = ? WHERE id = (SELECT id FROM invitations ORDER BY created_at DESC LIMIT 1)", time(Date.now() - 1000)), true);
    const expiredPage = await get(expired, cookieJar());
    expect(expiredPage.status).toBe(410);
    expect(expiredPage.response.headers.get("content-type")).toContain("text/html");
    expect(expiredPage.html).toContain("Invitation expired");
    expect(expiredPage.html).not.toContain("<form method=\"post\" action=\"/invite/");
    const expiredApi = await fetch(`${closed.url}/api/v1/auth/invitations/${tokenOf(expired)}`);
    expect([expiredApi.status, ((await expiredApi.json()) as { error: string }).error]).toEqual([410, "invitation_expired"]);

    const revoked = await cliInvite(closed, []);
    const form = await openForm(revoked);
    const access = await adminToken(closed);
    const list = (await (await fetch(`${closed.url}/api/v1/admin/invitations`, { headers: { authorization: `Bearer ${access}` } })).json()) as { invitations: { id: string; state: string }[] };
    const newest = list.invitations[0]!;
    expect(newest.state).toBe("pending");
    const deleted = await fetch(`${closed.url}/api/v1/admin/invitations/${newest.id}`, { method: "DELETE", headers: { authorization: `Bearer ${access}` } });
    expect(deleted.status).toBe(204);
    const revokedPage = await get(revoked, cookieJar());
    expect(revokedPage.status).toBe(410);
    expect(revokedPage.html).toContain("Invitation withdrawn");
    const lateUse = await post(revoked, form.jar, { csrf: form.csrf, username: "gina", password: PASSWORD });
    expect(lateUse.status).toBe(410);
    expect(await userRow(closed, "gina")).toBeUndefined();
    const revokedApi = await fetch(`${closed.url}/api/v1/auth/invitations/${tokenOf(revoked)}`);
    expect([revokedApi.status, ((await revokedApi.json()) as { error: string }).error]).toEqual([410, "invitation_revoked"]);

    const unknown = await get(`${closed.url}/invite/${"A".repeat(43)}`, cookieJar());
    expect(unknown.status).toBe(404);
    expect(unknown.html).toContain("Invitation not found");
  });

  test("--email: the mail arrives at the SMTP server, its link makes the account with that address, verified", async () => {
    const link = await cliInvite(closed, ["--email", "Hana@Example.com", "--roles", "family"]);
    const received = await mail.catcher.waitForMail((m) => m.to === "hana@example.com");
    expect(received.subject).toContain("invited");
    const mailed = /https?:\/\/\S+\/invite\/[A-Za-z0-9_-]{43}/.exec(received.text)?.[0];
    expect(mailed).toBe(link);
    const { html } = await openForm(mailed!);
    expect(html).toContain('value="hana@example.com"');
    // The pinned address wins over whatever the form sends.
    const { answer } = await signUpWith(mailed!, "hana", { email: "other@example.com" });
    expect(answer.status).toBe(303);
    expect(await userRow(closed, "hana")).toEqual({ roles: '["family"]', email: "hana@example.com", email_verified: 1 });
  });

  test("--email with mail off: the address is pinned but stays unverified (the link did not travel through it)", async () => {
    const result = await runCli(["user", "invite", "--email", "ivan@example.com"], { ...closed.env, SMTP_URL: "" });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("mail is off");
    expect((await signUpWith(result.stdout.trim(), "ivan")).answer.status).toBe(303);
    expect(await userRow(closed, "ivan")).toEqual({ roles: "[]", email: "ivan@example.com", email_verified: 0 });
  });

  test("CSRF: no token, another form's token and a foreign Origin are refused, and no account is made", async () => {
    const link = await cliInvite(closed, ["--uses", "5"]);
    const { jar, csrf } = await openForm(link);
    const login = csrfOf((await get(`${closed.url}/login?handoff=none`, jar)).html);
    for (const [name, fields, origin] of [
      ["none", {}, closed.url],
      ["login's", { csrf: login }, closed.url],
      ["foreign", { csrf }, "https://evil.example"],
    ] as const) {
      const answer = await post(link, jar, { ...fields, username: `csrf-${name.replace(/\W/g, "")}`, password: PASSWORD }, origin);
      expect({ name, status: answer.status }).toEqual({ name, status: 403 });
    }
    expect(await db(closed, (d) => d.get("SELECT username FROM users WHERE username LIKE 'csrf-%'"))).toBeUndefined();
  });
});

test("the CLI refuses bad options with one line and exit 1, and makes no invitation", async () => {
  const before = await db(closed, (d) => d.get<{ n: number }>("SELECT COUNT(*) AS n FROM invitations"));
  for (const [args, says] of [
    [["--expires", "7x"], "--expires"],
    [["--uses", "0"], "max_uses"],
    [["--uses", "many"], "--uses"],
    [["--roles", "Bad Role"], "roles"],
    [["--email", "root@example.com"], "already registered"],
    [["--email", "not-an-address"], "email"],
    [["--admin"], "unknown option --admin"],
  ] as const) {
    const result = await runCli(["user", "invite", ...args], closed.env);
    expect({ args, code: result.code, stdout: result.stdout, says: result.stderr.includes(says) }).toEqual({ args, code: 1, stdout: "", says: true });
  }
  expect(await db(closed, (d) => d.get<{ n: number }>("SELECT COUNT(*) AS n FROM invitations"))).toEqual(before);
});

describe("an invitation under REQUIRE_EMAIL_VERIFICATION and MFA_REQUIRED_ROLES", () => {
  const pageCookie = (jar: CookieJar) => jar.get("latchkey_session_page");

  test("a mailed invitation's address is verified: signed in at once", async () => {
    const link = await cliInvite(strict, ["--email", "vera@example.com"]);
    await mail.catcher.waitForMail((m) => m.to === "vera@example.com" && m.text.includes(link));
    const { jar, answer } = await signUpWith(link, "vera");
    expect([answer.status, answer.location]).toEqual([303, "/account"]);
    expect(pageCookie(jar)).toBeDefined();
    expect(await userRow(strict, "vera")).toEqual({ roles: "[]", email: "vera@example.com", email_verified: 1 });
  });

  test("an address typed on the form is not: the account waits for the mailed confirmation, no session", async () => {
    const link = await cliInvite(strict, []);
    const { jar, answer } = await signUpWith(link, "walt", { email: "walt@example.com" });
    expect(answer.status).toBe(201);
    expect(answer.html).toContain("Check your mail");
    expect(pageCookie(jar)).toBeUndefined();
    expect(await userRow(strict, "walt")).toEqual({ roles: "[]", email: "walt@example.com", email_verified: 0 });
    expect((await mail.catcher.waitForMail((m) => m.to === "walt@example.com")).subject).toContain("confirm your email address");
  });

  test("a role that needs an authenticator gets no session from the sign-up: the sign-in page enrols it", async () => {
    const link = await cliInvite(strict, ["--email", "xena@example.com", "--roles", "staff"]);
    await mail.catcher.waitForMail((m) => m.to === "xena@example.com" && m.text.includes(link));
    const { jar, answer } = await signUpWith(link, "xena");
    expect(answer.status).toBe(201);
    expect(answer.html).toContain("Sign in to finish setting it up");
    expect(pageCookie(jar)).toBeUndefined();
    expect(await userRow(strict, "xena")).toEqual({ roles: '["staff"]', email: "xena@example.com", email_verified: 1 });
  });
});

describe("the admin's invitations page", () => {
  test("create (link shown once), list with state, revoke through a confirmation page naming it", async () => {
    const jar = await adminJar(closed);
    const page = await get(`${closed.url}/admin/invitations`, jar);
    expect(page.status).toBe(200);
    expect((await get(`${closed.url}/account`, jar)).html).toContain('href="/admin/invitations"');
    const created = await post(`${closed.url}/admin/invitations`, jar, { csrf: csrfOf(page.html, "/admin/invitations"), email: "", roles: "family", expires: "2d", uses: "2" });
    // POST/redirect/GET: the link waits beside the create form, shown once.
    expect([created.status, created.location]).toEqual([303, "/admin/invitations#create"]);
    const shown = await get(`${closed.url}/admin/invitations`, jar);
    expect(shown.html).toContain("Invitation link created");
    const link = /id="invitation-link">([^<]+)</.exec(shown.html)?.[1];
    expect(link).toMatch(/\/invite\/[A-Za-z0-9_-]{43}$/);
    expect((await signUpWith(link!, "jack")).answer.status).toBe(303);
    expect(await userRow(closed, "jack")).toEqual({ roles: '["family"]', email: null, email_verified: 0 });
    const listed = await get(`${closed.url}/admin/invitations`, jar);
    expect(listed.html).toContain("used 1 of 2");
    expect(listed.html).not.toContain(link!);

    const revokeHref = [...listed.html.matchAll(/href="(\/admin\/invitations\/revoke\?id=[^"]+)"/g)].map((m) => m[1]!.replaceAll("&amp;", "&"))[0]!;
    const confirm = await get(`${closed.url}${revokeHref}`, jar);
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain("Revoke this invitation?");
    expect(confirm.html).toContain("anyone with the link");
    expect(confirm.html).toContain(">family<");
    expect(confirm.html).toContain("used 1 of 2");
    // The confirmation page itself changes nothing.
    expect((await get(link!, cookieJar())).status).toBe(200);
    const id = /name="id" value="([^"]+)"/.exec(confirm.html)![1]!;
    const revoked = await post(`${closed.url}/admin/invitations/revoke`, jar, { csrf: csrfOf(confirm.html, "/admin/invitations/revoke"), id });
    expect([revoked.status, revoked.location]).toEqual([303, "/admin/invitations#invitations"]);
    expect((await get(`${closed.url}/admin/invitations`, jar)).html).toContain("Invitation revoked: its link no longer works.");
    expect((await get(link!, cookieJar())).status).toBe(410);
    const events = await db(closed, (d) => d.all<{ event: string }>("SELECT event FROM audit_events WHERE CAST(detail AS TEXT) LIKE ?", `%${id}%`));
    expect(events.map((event) => event.event).sort()).toEqual(["invitation_created", "invitation_revoked", "invitation_used", "user_registered"]);
  });

  test("its forms refuse no token, another form's token and a foreign Origin; a non-admin gets 403", async () => {
    const jar = await adminJar(closed);
    const page = await get(`${closed.url}/admin/invitations`, jar);
    const before = await db(closed, (d) => d.get<{ n: number }>("SELECT COUNT(*) AS n FROM invitations"));
    const logout = csrfOf(page.html, "/logout");
    for (const [name, fields, origin] of [
      ["none", {}, closed.url],
      ["logout's", { csrf: logout }, closed.url],
      ["foreign", { csrf: csrfOf(page.html, "/admin/invitations") }, "https://evil.example"],
    ] as const) {
      const answer = await post(`${closed.url}/admin/invitations`, jar, { ...fields, roles: "admin" }, origin);
      expect({ name, status: answer.status }).toEqual({ name, status: 403 });
      const revoke = await post(`${closed.url}/admin/invitations/revoke`, jar, { ...fields, id: "x" }, origin);
      expect({ name, revoke: revoke.status }).toEqual({ name, revoke: 403 });
    }
    expect(await db(closed, (d) => d.get<{ n: number }>("SELECT COUNT(*) AS n FROM invitations"))).toEqual(before);

    await cliInvite(closed, []).then((link) => signUpWith(link, "kim"));
    const kim = cookieJar();
    await browserSignIn(`${closed.url}/login`, "kim", PASSWORD, kim);
    expect((await get(`${closed.url}/admin/invitations`, kim)).status).toBe(403);
  });
});

describe("the admin API", () => {
  test("create, list, revoke; unknown id 404 invitation_not_found; a non-admin 403 forbidden", async () => {
    const access = await adminToken(closed);
    const headers = { authorization: `Bearer ${access}`, "content-type": "application/json" };
    const created = await fetch(`${closed.url}/api/v1/admin/invitations`, { method: "POST", headers, body: JSON.stringify({ roles: ["family"], max_uses: 3, expires_in: 3600 }) });
    expect(created.status).toBe(201);
    const body = (await created.json()) as { invitation: { id: string; roles: string[]; max_uses: number; uses: number; state: string; mailed: boolean }; link: string };
    expect(body.invitation).toMatchObject({ roles: ["family"], max_uses: 3, uses: 0, state: "pending", mailed: false });
    expect(body.link).toMatch(new RegExp(`^${closed.url.replace(/[.]/g, "\\.")}/invite/[A-Za-z0-9_-]{43}$`));
    const forUlla = await fetch(`${closed.url}/api/v1/admin/invitations`, { method: "POST", headers, body: JSON.stringify({ email: "ulla@example.com" }) });
    expect(forUlla.status).toBe(201);
    const ulla = (await forUlla.json()) as { invitation: { id: string; mailed: boolean; email: string }; link: string };
    expect(ulla.invitation).toMatchObject({ mailed: true, email: "ulla@example.com" });
    expect((await mail.catcher.waitForMail((m) => m.to === "ulla@example.com")).text).toContain(ulla.link);
    const trail = await db(closed, (d) => d.all<{ detail: string }>("SELECT CAST(detail AS TEXT) AS detail FROM audit_events WHERE event = 'invitation_created'"));
    expect(trail.some((row) => row.detail.includes(ulla.invitation.id))).toBe(true);
    expect(trail.some((row) => row.detail.includes("ulla@"))).toBe(false);
    const offered = await fetch(`${closed.url}/api/v1/auth/invitations/${tokenOf(body.link)}`);
    expect(await offered.json()).toMatchObject({ email: null, roles: ["family"], uses_left: 3 });
    const bad = await fetch(`${closed.url}/api/v1/admin/invitations`, { method: "POST", headers, body: JSON.stringify({ roles: ["Not A Role"] }) });
    expect([bad.status, ((await bad.json()) as { error: string }).error]).toEqual([422, "validation_failed"]);
    const taken = await fetch(`${closed.url}/api/v1/admin/invitations`, { method: "POST", headers, body: JSON.stringify({ email: "root@example.com" }) });
    expect([taken.status, ((await taken.json()) as { error: string }).error]).toEqual([409, "email_taken"]);
    const missing = await fetch(`${closed.url}/api/v1/admin/invitations/nope`, { method: "DELETE", headers });
    expect([missing.status, ((await missing.json()) as { error: string }).error]).toEqual([404, "invitation_not_found"]);

    const registered = await fetch(`${closed.url}/api/v1/auth/invitations/${tokenOf(body.link)}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "lena", password: PASSWORD }),
    });
    expect(registered.status).toBe(201);
    expect(((await registered.json()) as { user: { roles: string[] } }).user.roles).toEqual(["family"]);
    const lena = (await (await fetch(`${closed.url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "lena", password: PASSWORD }) })).json()) as { access_token: string };
    const forbidden = await fetch(`${closed.url}/api/v1/admin/invitations`, { headers: { authorization: `Bearer ${lena.access_token}` } });
    expect([forbidden.status, ((await forbidden.json()) as { error: string }).error]).toEqual([403, "forbidden"]);
  });
});

describe("the sign-up page while registration is open", () => {
  test("linked from sign-in; makes the account and signs it in; errors beside the form", async () => {
    const login = await get(`${open.url}/login`, cookieJar());
    expect(login.html).toContain('href="/signup"');
    expect(login.html).toContain("Create an account");
    const { jar, answer } = await signUpWith(`${open.url}/signup`, "maya", { email: "maya@example.com" });
    expect([answer.status, answer.location]).toEqual([303, "/account"]);
    expect((await get(`${open.url}/account`, jar)).html).toContain("maya");
    expect(await userRow(open, "maya")).toEqual({ roles: "[]", email: "maya@example.com", email_verified: 0 });
    const again = await signUpWith(`${open.url}/signup`, "maya");
    expect(again.answer.status).toBe(409);
    expect(again.answer.html).toContain("That username is already taken.");
    expect(again.answer.html).toContain('value="maya"');
    const short = await signUpWith(`${open.url}/signup`, "nils", { password: "short" });
    expect(short.answer.status).toBe(422);
    expect(short.answer.html).toMatch(/role="alert"[^]*Must be at least \d+ characters\.[^]*<form/);
  });

  test("CSRF: no token, another form's token and a foreign Origin are refused, and no account is made", async () => {
    const { jar, csrf } = await openForm(`${open.url}/signup`);
    const login = csrfOf((await get(`${open.url}/login`, jar)).html);
    for (const [name, fields, origin] of [
      ["none", {}, open.url],
      ["login's", { csrf: login }, open.url],
      ["foreign", { csrf }, "https://evil.example"],
    ] as const) {
      const answer = await post(`${open.url}/signup`, jar, { ...fields, username: "oscar", password: PASSWORD }, origin);
      expect({ name, status: answer.status }).toEqual({ name, status: 403 });
    }
    expect(await userRow(open, "oscar")).toBeUndefined();
  });
});

describe("in Chromium, with JavaScript off", () => {
  test("the CLI's invitation link signs a new person up and in; the pages break no CSP rule", async () => {
    const link = await cliInvite(closed, ["--roles", "family"]);
    const context = await chromium.get().newContext({ javaScriptEnabled: false, viewport: { width: 390, height: 844 } });
    const violations: string[] = [];
    try {
      const page = await context.newPage();
      page.on("console", (message) => {
        if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
      });
      expect((await page.goto(link))!.status()).toBe(200);
      await screenshot(page, "invitation-signup");
      await page.fill("#username", "quinn");
      await page.fill("#password", PASSWORD);
      await Promise.all([page.waitForURL(`${closed.url}/account`), page.click("button[type=submit]")]);
      expect(await page.textContent("body")).toContain("quinn");
      expect(await userRow(closed, "quinn")).toEqual({ roles: '["family"]', email: null, email_verified: 0 });
      // The same link again, in this browser: the spent page.
      expect((await page.goto(link))!.status()).toBe(410);
      expect(await page.textContent("h1")).toBe("Invitation already used");
    } finally {
      await context.close();
    }
    expect(violations).toEqual([]);
  });

  test("the sign-in page's 'Create an account' opens /signup, which makes the account", async () => {
    const context = await chromium.get().newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      await page.goto(`${open.url}/login`);
      await Promise.all([page.waitForURL(`${open.url}/signup`), page.click("text=Create an account")]);
      await screenshot(page, "signup");
      await page.fill("#username", "rosa");
      await page.fill("#password", PASSWORD);
      await Promise.all([page.waitForURL(`${open.url}/account`), page.click("button[type=submit]")]);
      expect(await page.textContent("body")).toContain("rosa");
    } finally {
      await context.close();
    }
  });
});
