/**
 * A passwordless account changes its email address with a recent passkey sign-in instead of the password: the
 * binary over HTTP, on the engine of the pass (LATCHKEY_TEST_ENGINE), with the software authenticator of
 * test/support/passkeys.ts and the suite's SMTP server. The API (POST /auth/email, then /email/confirm), and the
 * account pages without JavaScript: /account/email, the passkey step it asks for first, and back to its form.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AUTH, Client, jwtClaims } from "../support/client";
import { minus, openTestDatabase } from "../support/database";
import { TEST_ENGINE } from "../support/engine";
import { cookieJar, csrfOf, type CookieJar } from "../support/pages";
import { SoftwareAuthenticator } from "../support/passkeys";
import { removeDataDir, startServer, type RunningServer } from "../support/server";
import { codeIn, mailCatcherForFile, smtpEnv, type ReceivedMail } from "../support/smtp";

const PASSWORD = "a long passphrase";
const ORIGIN = "http://localhost";
const SIX_MINUTES = 6 * 60_000;
const REAUTHENTICATE = {
  error: "reauthentication_required",
  message: "Your account has no password, so changing its email address needs a passkey sign-in of the last 5 minutes: sign in again with a passkey (in a browser, /login/passkey-step).",
};

const smtp = mailCatcherForFile();
const mailTo = (address: string, subject: string) => (mail: ReceivedMail) => mail.to === address && mail.subject.includes(subject);

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ ...smtpEnv(smtp.catcher, smtp.certificate), ALLOW_REGISTRATION: "true", PUBLIC_URL: ORIGIN, RATE_LIMIT_IP_BURST: "1000" });
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

async function sql<T = Record<string, unknown>>(query: string, ...params: unknown[]): Promise<T[]> {
  const db = await openTestDatabase(server.dataDir, { writable: true });
  try {
    return await db.all<T>(query, ...params);
  } finally {
    await db.close();
  }
}

const emailOf = async (name: string) => (await sql<{ email: string }>("SELECT email FROM users WHERE username = ?", name))[0]!.email;
/** The refusals of a change, as audited. */
const failures = async (name: string) =>
  (await sql<{ detail: string }>("SELECT a.detail FROM audit_events a JOIN users u ON u.id = a.user_id WHERE a.event = 'email_change_failed' AND u.username = ? ORDER BY a.id", name)).map((row) => JSON.parse(row.detail));
const changeCodes = (name: string) => sql("SELECT o.id FROM one_time_codes o JOIN users u ON u.id = o.user_id WHERE u.username = ? AND o.purpose = 'email_change'", name);
/** The session's last authentication moved `ms` back, as time would leave it. */
const age = (sessionId: string, ms: number) => sql(`UPDATE sessions SET auth_time = ${minus("auth_time", ms)} WHERE id = ?`, sessionId);
/** The session's amr as another way in would have recorded it (a recovery code: otp; a setup link: link). */
const recordAmr = (sessionId: string, amr: string[]) => sql(`UPDATE sessions SET amr = ${TEST_ENGINE === "postgres" ? "?::jsonb" : "?"} WHERE id = ?`, JSON.stringify(amr), sessionId);
const sessionOf = (client: Client) => jwtClaims(client.accessToken!).sid as string;

let n = 0;
/** An account with a passkey, and (unless `keepPassword`) its password removed; its first session's amr is ["pwd"]. */
async function account({ keepPassword = false } = {}) {
  const name = `ep-${++n}`;
  const client = new Client(server.url, "bearer", { origin: ORIGIN });
  expect((await client.register(name, PASSWORD, `${name}@example.test`)).status).toBe(201);
  const key = new SoftwareAuthenticator({ rpId: "localhost", origin: ORIGIN });
  const options = await client.request("POST", `${AUTH}/passkeys/register/options`);
  expect((await client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: key.register(options.body) } })).status).toBe(201);
  if (!keepPassword) expect((await client.request("DELETE", `${AUTH}/password`, { json: { current_password: PASSWORD } })).status).toBe(200);
  return { name, client, key, email: `${name}@example.test` };
}

/** A new API session from a passkey sign-in (with user verification: a complete sign-in). */
async function passkeySignIn(key: SoftwareAuthenticator) {
  const client = new Client(server.url, "bearer", { origin: ORIGIN });
  const options = await client.request("POST", `${AUTH}/login/passkey/options`);
  expect((await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(options.body) } })).status).toBe(200);
  return client;
}

const requestChange = (client: Client, json: Record<string, string>) => client.request("POST", `${AUTH}/email`, { json });

describe("POST /auth/email for an account without a password", () => {
  test("a fresh passkey sign-in: 202 without current_password, the code to the new address changes it, the old address is told", async () => {
    const { name, key, email } = await account();
    const fresh = await passkeySignIn(key);
    const newEmail = `${name}-new@example.test`;
    const requested = await requestChange(fresh, { new_email: newEmail });
    expect(requested.status).toBe(202);
    expect(requested.body).toEqual({ message: "A code is on its way to the new address; confirm it at POST /email/confirm." });
    const code = codeIn(await smtp.catcher.waitForMail(mailTo(newEmail, "confirm your new email")));
    expect(await emailOf(name)).toBe(email);
    const confirmed = await fresh.request("POST", `${AUTH}/email/confirm`, { json: { code } });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body.user).toMatchObject({ email: newEmail, email_verified: true });
    expect(await emailOf(name)).toBe(newEmail);
    const notice = await smtp.catcher.waitForMail(mailTo(email, "your email address was changed"));
    expect(notice.text).toContain(`The email address of your account is now ${newEmail}.`);
  });

  test("a session without hwk (the password sign-in before its removal, a recovery code's otp, a setup link's link): 403 reauthentication_required, no code", async () => {
    const { name, client, key, email } = await account();
    const pwd = await requestChange(client, { new_email: `${name}-pwd@example.test` });
    expect(pwd.status).toBe(403);
    expect(pwd.body).toEqual(REAUTHENTICATE);
    for (const amr of [["otp"], ["link"], ["email"]]) {
      const other = await passkeySignIn(key);
      await recordAmr(sessionOf(other), amr);
      const refused = await requestChange(other, { new_email: `${name}-${amr[0]}@example.test` });
      expect(refused.status).toBe(403);
      expect(refused.body).toEqual(REAUTHENTICATE);
    }
    expect(await changeCodes(name)).toEqual([]);
    expect(await emailOf(name)).toBe(email);
    expect(await failures(name)).toEqual(Array(4).fill({ reason: "reauthentication_required" }));
  });

  test("a passkey sign-in older than 5 minutes: 403 reauthentication_required and no code; a new passkey sign-in then may", async () => {
    const { name, key, email } = await account();
    const old = await passkeySignIn(key);
    await age(sessionOf(old), SIX_MINUTES);
    const refused = await requestChange(old, { new_email: `${name}-old@example.test` });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual(REAUTHENTICATE);
    // A refresh keeps the session's authentication: it renews nothing.
    expect((await old.refreshSession()).status).toBe(200);
    expect((await requestChange(old, { new_email: `${name}-old@example.test` })).body).toEqual(REAUTHENTICATE);
    expect(await changeCodes(name)).toEqual([]);
    expect(await emailOf(name)).toBe(email);

    expect((await requestChange(await passkeySignIn(key), { new_email: `${name}-old@example.test` })).status).toBe(202);
    expect(await changeCodes(name)).toHaveLength(1);
  });

  test("a current_password sent for it fails exactly like a wrong password of an account that has one, even from a fresh passkey sign-in", async () => {
    const passwordless = await account();
    const withPassword = await account({ keepPassword: true });
    const fresh = await passkeySignIn(passwordless.key);
    const sent = await requestChange(fresh, { new_email: `${passwordless.name}-x@example.test`, current_password: PASSWORD });
    const wrong = await requestChange(withPassword.client, { new_email: `${withPassword.name}-x@example.test`, current_password: "not the password" });
    expect(sent.status).toBe(403);
    expect(sent.body).toEqual({ error: "invalid_current_password", message: "The current password is incorrect." });
    expect(sent.body).toEqual(wrong.body);
    expect(await changeCodes(passwordless.name)).toEqual([]);
    expect(await failures(passwordless.name)).toEqual([{ reason: "invalid_current_password" }]);
    expect(await failures(withPassword.name)).toEqual([{ reason: "invalid_current_password" }]);
  });
});

describe("POST /auth/email for an account with a password: today's contract", () => {
  test("no current_password is 422 validation_failed, even from a fresh passkey sign-in (a passkey never stands in for the password)", async () => {
    const { name, client, key } = await account({ keepPassword: true });
    const missing = { error: "validation_failed", message: "The request is not valid.", details: [{ field: "current_password", message: "Is required." }] };
    for (const session of [client, await passkeySignIn(key)]) {
      const refused = await requestChange(session, { new_email: `${name}-new@example.test` });
      expect(refused.status).toBe(422);
      expect(refused.body).toEqual(missing);
    }
    expect(await changeCodes(name)).toEqual([]);
    expect(await failures(name)).toEqual([]);
    expect((await requestChange(client, { new_email: `${name}-new@example.test`, current_password: PASSWORD })).status).toBe(202);
  });
});

describe("the account page of an account without a password", () => {
  const get = async (jar: CookieJar, path: string) => {
    const reply = await fetch(`${server.url}${path}`, { headers: { cookie: jar.header() }, redirect: "manual" });
    jar.take(reply);
    return { status: reply.status, location: reply.headers.get("location"), html: await reply.text() };
  };
  const post = async (jar: CookieJar, path: string, fields: Record<string, string>) => {
    const reply = await fetch(`${server.url}${path}`, {
      method: "POST",
      headers: { cookie: jar.header(), origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields),
      redirect: "manual",
    });
    jar.take(reply);
    return { status: reply.status, location: reply.headers.get("location"), html: await reply.text() };
  };
  const optionsOf = (html: string) => JSON.parse(/name="options" value="([^"]*)"/.exec(html)![1]!.replaceAll("&quot;", '"').replaceAll("&#34;", '"').replaceAll("&amp;", "&"));

  /** Signs a browser in on the sign-in page with the passkey. */
  async function pageSignIn(key: SoftwareAuthenticator) {
    const jar = cookieJar();
    const login = await get(jar, "/login");
    const options = await fetch(`${server.url}${AUTH}/login/passkey/options`, { method: "POST", headers: { origin: ORIGIN } });
    const signedIn = await post(jar, "/login/passkey", { csrf: csrfOf(login.html, "/login/passkey"), credential: JSON.stringify(key.assert((await options.json()) as { challenge: string })) });
    expect(signedIn.status).toBe(303);
    expect(signedIn.location).toBe("/account");
    return jar;
  }

  const browserSessions = async (name: string) =>
    (await sql<{ id: string }>("SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = ? AND s.browser_token_hash IS NOT NULL", name)).map((row) => row.id);

  test("the account page links to /account/email, which asks for the passkey before its form when the passkey sign-in is older; the step comes back to it, where a refusal is shown beside the form, then the address is sent and confirmed", async () => {
    const { name, key, email } = await account();
    const jar = await pageSignIn(key);
    const account_ = await get(jar, "/account");
    // No form on the account page: the address typed there would be lost on the way through the passkey step.
    expect(account_.html).not.toContain('action="/account/email"');
    expect(account_.html).toContain('<a href="/account/email">Change email address</a>');
    expect(account_.html).not.toContain('id="email_password"');

    // Its passkey sign-in is 6 minutes old: /account/email asks for the passkey first, and shows no form yet.
    for (const id of await browserSessions(name)) await age(id, SIX_MINUTES);
    const before = await get(jar, "/account/email");
    expect(before.status).toBe(200);
    expect(before.html).not.toContain('action="/account/email"');
    expect(before.html).not.toContain("You confirmed with your passkey");
    expect(before.html).toContain("First confirm it is you with your passkey, then type the new address.");
    expect(before.html).toContain('<a class="button" href="/login/passkey-step?rd=%2Faccount%2Femail">Confirm with your passkey</a>');

    // The step asks for the passkey (an old passkey sign-in is not let through), then goes back to rd.
    const step = await get(jar, "/login/passkey-step?rd=%2Faccount%2Femail");
    expect(step.status).toBe(200);
    expect(step.html).toContain("Confirm with a passkey");
    const stepped = await post(jar, "/login/passkey-step", { csrf: csrfOf(step.html, "/login/passkey-step"), rd: "/account/email", credential: JSON.stringify(key.assert(optionsOf(step.html))) });
    expect(stepped.status).toBe(303);
    expect(stepped.location).toBe(`${ORIGIN}/account/email`);

    const page = await get(jar, "/account/email");
    expect(page.status).toBe(200);
    expect(page.html).toContain("<h1>Change your email address</h1>");
    expect(page.html).toContain('role="status">You confirmed with your passkey: type the new address and send it within 5 minutes.');
    expect(page.html).not.toContain('id="email_password"');
    expect(page.html).toContain('<input type="hidden" name="page" value="email"/>');

    // A refusal comes back to this page, beside its form, not to the account page.
    const refused = await post(jar, "/account/email", { csrf: csrfOf(page.html, "/account/email"), page: "email", new_email: email });
    expect(refused.status).toBe(303);
    expect(refused.location).toBe("/account/email");
    const again = await get(jar, "/account/email");
    expect(again.html).toContain('role="alert">That email address is already registered.');
    expect(again.html.indexOf('role="alert"')).toBeLessThan(again.html.indexOf('action="/account/email"'));
    expect(await changeCodes(name)).toEqual([]);

    const newEmail = `${name}-page@example.test`;
    const requested = await post(jar, "/account/email", { csrf: csrfOf(again.html, "/account/email"), page: "email", new_email: newEmail });
    expect(requested.status).toBe(303);
    expect(requested.location).toBe("/account/email/confirm");
    const code = codeIn(await smtp.catcher.waitForMail(mailTo(newEmail, "confirm your new email")));
    const codePage = await get(jar, "/account/email/confirm");
    const confirmed = await post(jar, "/account/email/confirm", { csrf: csrfOf(codePage.html, "/account/email/confirm"), code });
    expect(confirmed.status).toBe(303);
    expect((await get(jar, "/account")).html).toContain(`Your email address is now ${newEmail}.`);
    expect(await emailOf(name)).toBe(newEmail);
  });

  test("a form sent after the 5 minutes have run out goes through the passkey step, and nothing is mailed", async () => {
    const { name, key } = await account();
    const jar = await pageSignIn(key);
    const page = await get(jar, "/account/email");
    expect(page.html).toContain('action="/account/email"');
    for (const id of await browserSessions(name)) await age(id, SIX_MINUTES);
    const sent = await post(jar, "/account/email", { csrf: csrfOf(page.html, "/account/email"), page: "email", new_email: `${name}-late@example.test` });
    expect(sent.status).toBe(303);
    expect(sent.location).toBe("/login/passkey-step?rd=%2Faccount%2Femail");
    expect(await changeCodes(name)).toEqual([]);
  });

  test("/account/email signed out is the sign-in page, coming back to it", async () => {
    const reply = await get(cookieJar(), "/account/email");
    expect(reply.status).toBe(302);
    expect(reply.location).toBe("/login?rd=%2Faccount%2Femail");
  });
});
