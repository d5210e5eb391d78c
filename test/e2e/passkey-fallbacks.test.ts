/**
 * Passkey-first accounts and the lost-device paths (issue 25), through the compiled binary over HTTP, on the engine
 * of the pass: an invitation accepted with "Use a passkey instead", an admin's (API) and the CLI's
 * passwordless account with its setup link, a recovery code, a mailed sign-in link (through the SMTP test server)
 * and an admin's reset. Each ends signed in, on /account/passkeys/add (pk-pages' page) with its flash; the session
 * works and says honestly how it was made (amr). The pages are driven as a browser without JavaScript would.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { generateTOTP } from "@oslojs/otp";
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { unseal } from "../../src/lib/crypto";
import { deriveSecrets } from "../../src/secrets";
import { AUTH, Client } from "../support/client";
import { generatedSecret, openTestDatabase } from "../support/database";
import { cookieJar, csrfOf, type CookieJar } from "../support/pages";
import { SoftwareAuthenticator } from "../support/passkeys";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";
import { mailCatcherForFile, smtpEnv } from "../support/smtp";

const PASSWORD = "correct horse battery staple";
/** The public address (passkeys' origin); requests go to the loopback port with this Origin. */
const ORIGIN = "http://localhost";
const mail = mailCatcherForFile();

let server: SpawnedServer;
let url: string;
let dataDir: string;
let env: Record<string, string>;
let admin: Client;

beforeAll(async () => {
  dataDir = tempDataDir();
  const port = freePort();
  url = `http://127.0.0.1:${port}`;
  env = { PATH: process.env.PATH ?? "", DATA_DIR: dataDir, PUBLIC_URL: ORIGIN, ...smtpEnv(mail.catcher, mail.certificate) };
  expect((await runCli(["user", "add", "root", "--admin"], env, PASSWORD)).code).toBe(0);
  server = await spawnServer([BINARY, "serve"], { env: { ...env, HOST: "127.0.0.1", PORT: String(port), RATE_LIMIT_IP: "1000/1m", RATE_LIMIT_IP_BURST: "1000" } });
  admin = new Client(url, "bearer", { origin: ORIGIN });
  expect((await admin.login("root", PASSWORD)).status).toBe(200);
});

afterAll(async () => {
  await server?.stop();
  if (dataDir) removeDataDir(dataDir);
});

async function query<T>(sql: string, ...params: unknown[]): Promise<T[]> {
  const db = await openTestDatabase(dataDir);
  try {
    return await db.all<T>(sql, ...params);
  } finally {
    await db.close();
  }
}

const auditOf = async (event: string, username: string) =>
  (await query<{ detail: string }>("SELECT a.detail FROM audit_events a JOIN users u ON u.id = a.user_id WHERE a.event = ? AND u.username = ? ORDER BY a.created_at", event, username)).map((row) => JSON.parse(row.detail));

async function get(path: string, jar: CookieJar) {
  const response = await fetch(`${url}${path}`, { headers: { cookie: jar.header() }, redirect: "manual" });
  jar.take(response);
  return { status: response.status, html: await response.text(), response };
}

async function post(path: string, jar: CookieJar, fields: Record<string, string>) {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { cookie: jar.header(), origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields),
    redirect: "manual",
  });
  jar.take(response);
  return { status: response.status, location: response.headers.get("location"), html: await response.text(), response };
}

/** The flash a redirect left, unsealed as the server would for the browser session the redirect signed in. */
async function flashOf(response: Response, username: string): Promise<unknown> {
  const line = response.headers.getSetCookie().find((cookie) => /^[^=]+_flash=[^;]+/.test(cookie));
  expect(line).toBeDefined();
  const sealed = line!.slice(line!.indexOf("=") + 1).split(";")[0]!;
  const [session] = await query<{ id: string }>("SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = ? AND s.browser_token_hash IS NOT NULL ORDER BY s.created_at DESC", username);
  const key = deriveSecrets(await generatedSecret(dataDir)).dataKey;
  return JSON.parse(unseal(key, sealed, `latchkey/page-flash/v1|${session!.id}`) ?? "null");
}

/** The amr of the user's browser sessions, newest first. */
const browserAmrs = async (username: string) =>
  (await query<{ amr: string }>("SELECT s.amr FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = ? AND s.browser_token_hash IS NOT NULL ORDER BY s.created_at DESC", username)).map((row) => JSON.parse(row.amr));

/** Signed in as `username` (the page cookie works): the account page names them. */
async function expectSignedIn(jar: CookieJar, username: string) {
  const account = await get("/account", jar);
  expect(account.status).toBe(200);
  expect(account.html).toContain(`>${username}<`);
}

/** Opens a link's page (a GET spends nothing) and presses its button; answers the button's post. */
async function followLink(link: string, jar = cookieJar()) {
  expect(link.startsWith(`${ORIGIN}/`)).toBe(true);
  const path = link.slice(ORIGIN.length);
  const page = await get(path, jar);
  expect(page.status).toBe(200);
  expect(page.html).toContain(">Continue</button>");
  // The page's one form posts back to the link.
  return { jar, answer: await post(path, jar, { csrf: csrfOf(page.html) }), path, html: page.html };
}

async function expectOnAddPasskey(answer: { status: number; location: string | null; response: Response }, username: string, flash: string) {
  expect({ status: answer.status, location: answer.location }).toEqual({ status: 303, location: "/account/passkeys/add" });
  expect(await flashOf(answer.response, username)).toEqual({ form: "passkey-add", kind: "notice", text: flash });
}

/** The admin `root` signed in on the pages. */
async function adminPageJar(): Promise<CookieJar> {
  const jar = cookieJar();
  const login = await get("/login", jar);
  expect((await post("/login", jar, { csrf: csrfOf(login.html), login: "root", password: PASSWORD })).status).toBe(303);
  return jar;
}

const sha256Hex = (text: string) => createHash("sha256").update(text).digest("hex");
const FINISH = "Add a passkey to finish setting up your account.";
const NEW_PASSKEY = "Add a new passkey.";

describe("passkey-first accounts", () => {
  test("an invitation accepted with 'Use a passkey instead': no password, signed in, on to add a passkey", async () => {
    const invited = await runCli(["user", "invite"], env);
    expect(invited.code).toBe(0);
    const path = invited.stdout.trim().slice(ORIGIN.length);
    const jar = cookieJar();
    const page = await get(path, jar);
    expect(page.html).toContain('name="method" value="passkey"');
    expect(page.html).toContain("Use a passkey instead");
    // The password field is left empty: formnovalidate lets the browser send the form without it.
    const answer = await post(path, jar, { csrf: csrfOf(page.html, path), username: "ivy", password: "", method: "passkey" });
    await expectOnAddPasskey(answer, "ivy", FINISH);
    await expectSignedIn(jar, "ivy");
    expect(await query("SELECT password_hash FROM users WHERE username = 'ivy'")).toEqual([{ password_hash: null }]);
    expect(await browserAmrs("ivy")).toEqual([["link"]]);
    expect(await auditOf("login_succeeded", "ivy")).toEqual([{ via: "browser", fallback: "setup_link", invitation: true }]);
    // No password means none matches, not even an empty one.
    const probe = new Client(url, "bearer", { origin: ORIGIN });
    expect((await probe.login("ivy", "")).status).toBe(401);
    // The invitation's single use is spent like any sign-up's.
    expect((await get(path, cookieJar())).html).toContain("Invitation already used");
  });

  test("an admin creates an account without a password: a setup link, stored as its hash, that signs in once and expires in 24 hours", async () => {
    // Asked for, never by forgetting the password; and not both.
    for (const body of [{ username: "paula" }, { username: "paula", password: PASSWORD, passkey_first: true }]) {
      const refused = await admin.request("POST", "/api/v1/admin/users", { json: body });
      expect(refused.status).toBe(422);
      expect(refused.body.details.map((detail: { field: string }) => detail.field)).toEqual(["password"]);
    }
    const created = await admin.request("POST", "/api/v1/admin/users", { json: { username: "paula", email: "paula@example.com", email_verified: true, passkey_first: true } });
    expect(created.status).toBe(201);
    expect(created.body.username).toBe("paula");
    const { link, expires_at: expiresAt } = created.body.passkey_setup;
    expect(link).toMatch(/^http:\/\/localhost\/passkey-setup\/[A-Za-z0-9_-]{43}$/);
    expect(Math.abs(Date.parse(expiresAt) - Date.now() - 24 * 3600_000)).toBeLessThan(60_000);
    const token = link.slice(link.lastIndexOf("/") + 1);
    const [row] = await query<{ token_hash: string; purpose: string }>("SELECT o.token_hash, o.purpose FROM one_time_codes o JOIN users u ON u.id = o.user_id WHERE u.username = 'paula'");
    expect(row).toEqual({ token_hash: sha256Hex(token), purpose: "passkey_setup" });
    expect(await auditOf("passkey_setup_link_created", "paula")).toEqual([{ actor_id: expect.any(String), actor: "root", reset: false }]);

    // A GET (a mail scanner, a preview) spends nothing: the page asks for the button.
    expect((await get(link.slice(ORIGIN.length), cookieJar())).status).toBe(200);
    const { jar, answer, path, html } = await followLink(link);
    await expectOnAddPasskey(answer, "paula", FINISH);
    await expectSignedIn(jar, "paula");
    expect(await browserAmrs("paula")).toEqual([["link"]]);
    expect(await auditOf("passkey_fallback_used", "paula")).toEqual([{ method: "setup_link" }]);

    // Once: the same link again signs nobody in.
    // Another browser (no binding of its own) cannot use this page's token.
    const again = await post(path, cookieJar(), { csrf: csrfOf(html) });
    expect(again.status).toBe(403);
    const replay = await followLink(link);
    expect(replay.answer.status).toBe(400);
    expect(replay.answer.html).toContain("This link is wrong, already used or expired.");
    expect(replay.answer.response.headers.getSetCookie().some((cookie) => cookie.startsWith("latchkey_session="))).toBe(false);
  });

  test("a setup link of a disabled account is refused and not spent: it works once an admin enables the account", async () => {
    const created = await admin.request("POST", "/api/v1/admin/users", { json: { username: "dora", passkey_first: true } });
    expect((await admin.request("PATCH", `/api/v1/admin/users/${created.body.id}`, { json: { disabled: true } })).status).toBe(200);
    const refused = await followLink(created.body.passkey_setup.link);
    expect(refused.answer.status).toBe(403);
    expect(refused.answer.html).toContain("This account has been disabled.");
    expect(await browserAmrs("dora")).toEqual([]);
    expect((await admin.request("PATCH", `/api/v1/admin/users/${created.body.id}`, { json: { disabled: false } })).status).toBe(200);
    await expectOnAddPasskey((await followLink(created.body.passkey_setup.link)).answer, "dora", FINISH);
  });

  test("a forged or made-up setup link is refused like a spent one", async () => {
    for (const token of ["A".repeat(43), "short", "not%20base64url%21%21%21%21%21%21%21%21%21%21"]) {
      const { answer } = await followLink(`${ORIGIN}/passkey-setup/${token}`);
      expect(answer.status).toBe(400);
      expect(answer.html).toContain("This link is wrong, already used or expired.");
    }
  });

  test("the admin page's Add with a passkey instead shows the setup link once, on the new user's page", async () => {
    const jar = await adminPageJar();
    const form = await get("/admin/users/new", jar);
    expect(form.html).toContain('name="method" value="passkey"');
    const added = await post("/admin/users", jar, { csrf: csrfOf(form.html, "/admin/users"), username: "pete", password: "", email: "", roles: "", method: "passkey" });
    expect(added.status).toBe(303);
    const shown = await get(added.location!, jar);
    const link = /set up their passkey: (http:\/\/localhost\/passkey-setup\/[A-Za-z0-9_-]{43})/.exec(shown.html)?.[1];
    expect(link).toBeDefined();
    expect(await query("SELECT password_hash FROM users WHERE username = 'pete'")).toEqual([{ password_hash: null }]);
    expect(shown.html).toContain("none: passkeys only");
    await expectOnAddPasskey((await followLink(link!)).answer, "pete", FINISH);
  });

  test("latchkey user add --passkey prints a setup link (stdout) that works once", async () => {
    const added = await runCli(["user", "add", "cleo", "--passkey"], env);
    expect(added.code).toBe(0);
    expect(added.stderr).toContain("created user cleo");
    const link = added.stdout.trim();
    expect(link).toMatch(/^http:\/\/localhost\/passkey-setup\/[A-Za-z0-9_-]{43}$/);
    expect(await auditOf("passkey_setup_link_created", "cleo")).toEqual([{ via: "cli", reset: false }]);
    const { jar, answer } = await followLink(link);
    await expectOnAddPasskey(answer, "cleo", FINISH);
    await expectSignedIn(jar, "cleo");
  });
});

/** An account made by the admin with a password, signed in by API with a passkey registered. */
async function accountWithPasskey(username: string, email?: string) {
  expect((await admin.request("POST", "/api/v1/admin/users", { json: { username, password: PASSWORD, ...(email ? { email, email_verified: true } : {}) } })).status).toBe(201);
  const client = new Client(url, "bearer", { origin: ORIGIN });
  expect((await client.login(username, PASSWORD)).status).toBe(200);
  const key = new SoftwareAuthenticator({ rpId: "localhost", origin: ORIGIN });
  const options = await client.request("POST", `${AUTH}/passkeys/register/options`);
  expect((await client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: key.register(options.body) } })).status).toBe(201);
  return { client, key, id: (await admin.request("GET", `/api/v1/admin/users?query=${username}`)).body.users[0].id as string };
}

async function passkeySignIn(key: SoftwareAuthenticator) {
  const client = new Client(url, "bearer", { origin: ORIGIN });
  const options = await client.request("POST", `${AUTH}/login/passkey/options`);
  return client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(options.body) } });
}

describe("lost device", () => {
  test("an admin's reset by API: passkeys deleted, sessions ended, a setup link that lands on add a new passkey; the password stays", async () => {
    const { client, key, id } = await accountWithPasskey("rita");
    const reset = await admin.request("POST", `/api/v1/admin/users/${id}/passkeys/reset`);
    expect(reset.status).toBe(200);
    expect(reset.body).toEqual({ passkey_setup: { link: expect.stringMatching(/^http:\/\/localhost\/passkey-setup\//), expires_at: expect.any(String) }, passkeys_deleted: 1, sessions_ended: 1 });
    expect((await client.me()).status).toBe(401);
    const refused = await passkeySignIn(key);
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe("passkey_unknown_credential");
    expect(await auditOf("passkeys_reset", "rita")).toEqual([{ actor_id: expect.any(String), actor: "root", passkeys_deleted: 1, sessions_ended: 1 }]);

    const { jar, answer } = await followLink(reset.body.passkey_setup.link);
    await expectOnAddPasskey(answer, "rita", NEW_PASSKEY);
    await expectSignedIn(jar, "rita");
    expect((await new Client(url, "bearer", { origin: ORIGIN }).login("rita", PASSWORD)).status).toBe(200);
    expect((await admin.request("POST", "/api/v1/admin/users/no-such-user/passkeys/reset")).status).toBe(404);
  });

  test("an admin's reset from the user page: a confirmation page, then the link shown once beside Security", async () => {
    const { id } = await accountWithPasskey("sam");
    const jar = await adminPageJar();
    const user = await get(`/admin/users/${id}`, jar);
    expect(user.html).toContain(`href="/admin/users/${id}/passkeys"`);
    const confirm = await get(`/admin/users/${id}/passkeys`, jar);
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain("Reset the passkeys of sam?");
    const done = await post("/admin/users/passkeys", jar, { csrf: csrfOf(confirm.html, "/admin/users/passkeys"), id });
    expect({ status: done.status, location: done.location }).toEqual({ status: 303, location: `/admin/users/${id}#security` });
    const shown = await get(`/admin/users/${id}`, jar);
    const link = /Hand them this link, which works once, for 24 hours: (http:\/\/localhost\/passkey-setup\/[A-Za-z0-9_-]{43})/.exec(shown.html)?.[1];
    expect(link).toBeDefined();
    expect(await query("SELECT p.id FROM passkeys p JOIN users u ON u.id = p.user_id WHERE u.username = 'sam'")).toEqual([]);
    await expectOnAddPasskey((await followLink(link!)).answer, "sam", NEW_PASSKEY);
    // Not on oneself from the page (it would sign the admin out everywhere): the page has no such button.
    const rootId = (await admin.me()).body.user.id;
    expect((await get(`/admin/users/${rootId}`, jar)).html).not.toContain(`/admin/users/${rootId}/passkeys"`);
  });

  /** A passwordless account with an authenticator app: its recovery codes. */
  async function passwordlessWithRecoveryCodes(username: string) {
    const { client, key } = await accountWithPasskey(username);
    const started = await client.request("POST", `${AUTH}/mfa/totp`);
    expect(started.status).toBe(200);
    const code = generateTOTP(decodeBase32IgnorePadding(started.body.secret), 30, 6);
    const confirmed = await client.request("POST", `${AUTH}/mfa/totp/confirm`, { json: { code } });
    expect(confirmed.status).toBe(200);
    expect((await client.request("DELETE", `${AUTH}/password`, { json: { current_password: PASSWORD } })).status).toBe(200);
    return { key, codes: confirmed.body.recovery_codes as string[] };
  }

  async function recoveryAttempt(login: string, code: string) {
    const jar = cookieJar();
    const page = await get("/login/lost-passkey", jar);
    expect(page.status).toBe(200);
    return post("/login/lost-passkey", jar, { csrf: csrfOf(page.html, "/login/lost-passkey"), login, recovery_code: code });
  }

  test("the sign-in page links 'Lost your passkey?'", async () => {
    expect((await get("/login", cookieJar())).html).toContain('<a href="/login/lost-passkey">Lost your passkey?</a>');
  });

  test("a recovery code: a wrong one, an unknown name and an account with a password fail alike; the right one signs in once (amr otp)", async () => {
    const { codes } = await passwordlessWithRecoveryCodes("otto");
    const wrong = await recoveryAttempt("otto", "aaaaa-bbbbb");
    const unknown = await recoveryAttempt("nobody-at-all", codes[0]!);
    expect(wrong.status).toBe(400);
    expect(unknown.status).toBe(400);
    for (const page of [wrong, unknown]) expect(page.html).toContain("The username or recovery code is incorrect.");

    const answer = await recoveryAttempt("otto", codes[0]!);
    await expectOnAddPasskey(answer, "otto", NEW_PASSKEY);
    expect(await browserAmrs("otto")).toEqual([["otp"]]);
    expect(await auditOf("passkey_fallback_used", "otto")).toEqual([{ method: "recovery_code" }]);
    expect(await auditOf("recovery_code_used", "otto")).toEqual([{ left: 9, via: "lost_passkey" }]);
    // Spent.
    expect((await recoveryAttempt("otto", codes[0]!)).status).toBe(400);
    expect((await recoveryAttempt("otto", codes[1]!)).status).toBe(303);
  });

  test("an account with a password cannot trade a recovery code for its password here, and its code is not spent", async () => {
    const { client } = await accountWithPasskey("pia");
    const started = await client.request("POST", `${AUTH}/mfa/totp`);
    const confirmed = await client.request("POST", `${AUTH}/mfa/totp/confirm`, { json: { code: generateTOTP(decodeBase32IgnorePadding(started.body.secret), 30, 6) } });
    const code = confirmed.body.recovery_codes[0] as string;
    const refused = await recoveryAttempt("pia", code);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain("The username or recovery code is incorrect.");
    expect((await client.request("GET", `${AUTH}/me`)).body.second_factors.recovery_codes_left).toBe(10);
  });

  test("the recovery-code form is throttled per account like every secret: 429 after the limit, even for the right code", async () => {
    const { codes } = await passwordlessWithRecoveryCodes("tess");
    let last = 0;
    for (let attempt = 0; attempt < 30 && last !== 429; attempt++) last = (await recoveryAttempt("tess", `wrong-${attempt}`)).status;
    expect(last).toBe(429);
    const blocked = await recoveryAttempt("tess", codes[0]!);
    expect(blocked.status).toBe(429);
    expect(blocked.html).toContain("Too many attempts");
  });

  test("a mailed sign-in link: the same answer for every address, a link to a passwordless account's verified address only, once (amr email)", async () => {
    const created = await admin.request("POST", "/api/v1/admin/users", { json: { username: "mia", email: "mia@example.com", email_verified: true, passkey_first: true } });
    expect(created.status).toBe(201);
    await accountWithPasskey("nils", "nils@example.com");

    const ask = async (email: string) => {
      const jar = cookieJar();
      const page = await get("/login/lost-passkey", jar);
      return post("/login/lost-passkey/email", jar, { csrf: csrfOf(page.html, "/login/lost-passkey/email"), email });
    };
    const answers = [await ask("mia@example.com"), await ask("nobody@example.com"), await ask("nils@example.com")];
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.html).toContain("If a passkey account has this verified address, a sign-in link is on its way");
    }
    // nils has a password: nothing was made or mailed for him.
    expect(await query("SELECT o.id FROM one_time_codes o JOIN users u ON u.id = o.user_id WHERE u.username = 'nils' AND o.purpose = 'sign_in_link'")).toEqual([]);
    expect(await auditOf("sign_in_link_requested", "nils")).toEqual([]);

    const sent = await mail.catcher.waitForMail((m) => m.to.includes("mia@example.com") && m.subject.includes("add a new passkey"));
    const link = /http:\/\/localhost\/login\/link\/[A-Za-z0-9_-]{43}/.exec(sent.text)?.[0];
    expect(link).toBeDefined();
    expect(await auditOf("sign_in_link_requested", "mia")).toHaveLength(1);
    const { jar, answer } = await followLink(link!);
    await expectOnAddPasskey(answer, "mia", NEW_PASSKEY);
    await expectSignedIn(jar, "mia");
    // No password to confirm an address change with: the account page links to /account/email (a passkey confirms it).
    const account = await get("/account", jar);
    expect(account.html).toContain('<a href="/account/email">Change email address</a>');
    expect(account.html).not.toContain('name="current_password" type="password" autocomplete="current-password"');
    expect(await browserAmrs("mia")).toEqual([["email"]]);
    expect(await auditOf("passkey_fallback_used", "mia")).toEqual([{ method: "email_link" }]);
    expect((await followLink(link!)).answer.status).toBe(400);
  });
});
