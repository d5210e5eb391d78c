/**
 * Passwordless accounts (issue 25): the password becomes optional, can be removed while a passkey remains, and
 * neither the password nor the last passkey can be removed when it is the last way in. The binary over HTTP, on
 * the engine of the pass (LATCHKEY_TEST_ENGINE), with the software authenticator of test/support/passkeys.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AUTH, Client, MODES } from "../support/client";
import { openTestDatabase } from "../support/database";
import { browserSignIn, cookieJar, csrfOf, type CookieJar } from "../support/pages";
import { SoftwareAuthenticator } from "../support/passkeys";
import { removeDataDir, startServer, type RunningServer } from "../support/server";

const PASSWORD = "a long passphrase";
const ORIGIN = "http://localhost";

const authenticator = () => new SoftwareAuthenticator({ rpId: "localhost", origin: ORIGIN });

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ ALLOW_REGISTRATION: "true", PUBLIC_URL: ORIGIN, RATE_LIMIT_IP_BURST: "1000" });
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

let n = 0;
async function registered(prefix = "pl") {
  const client = new Client(server.url, "bearer", { origin: ORIGIN });
  const name = `${prefix}-${++n}`;
  expect((await client.register(name, PASSWORD)).status).toBe(201);
  return { client, name };
}

async function addPasskey(client: Client, key = authenticator()) {
  const options = await client.request("POST", `${AUTH}/passkeys/register/options`);
  expect(options.status).toBe(200);
  const added = await client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: key.register(options.body) } });
  expect(added.status).toBe(201);
  return { key, id: added.body.id as string };
}

async function passkeySignIn(key: SoftwareAuthenticator) {
  const client = new Client(server.url, "bearer", { origin: ORIGIN });
  const options = await client.request("POST", `${AUTH}/login/passkey/options`);
  const signedIn = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(options.body) } });
  expect(signedIn.status).toBe(200);
  return client;
}

async function auditOf(event: string, username: string) {
  const db = await openTestDatabase(server.dataDir);
  try {
    const rows = await db.all<{ detail: string | object }>("SELECT a.detail FROM audit_events a JOIN users u ON u.id = a.user_id WHERE a.event = ? AND u.username = ?", event, username);
    return rows.map((row) => (typeof row.detail === "string" ? JSON.parse(row.detail) : row.detail));
  } finally {
    await db.close();
  }
}

async function passwordHashOf(username: string) {
  const db = await openTestDatabase(server.dataDir);
  try {
    return (await db.get<{ password_hash: string | null }>("SELECT password_hash FROM users WHERE username = ?", username))!.password_hash;
  } finally {
    await db.close();
  }
}

describe("removing the password by API (DELETE /auth/password)", () => {
  test("refused with 409 last_sign_in_method while the account has no passkey, before the password is even checked", async () => {
    const { client, name } = await registered();
    const refused = await client.request("DELETE", `${AUTH}/password`, { json: { current_password: "not even the password" } });
    expect(refused.status).toBe(409);
    expect(refused.body).toEqual({ error: "last_sign_in_method", message: expect.stringContaining("add a passkey") });
    expect(await passwordHashOf(name)).toStartWith("$argon2id$");
    expect(await auditOf("password_change_failed", name)).toEqual([]);
  });

  test("with a passkey: a wrong password is 403 invalid_current_password; the right one removes it, ends the other sessions, keeps this one, and is audited", async () => {
    const { client, name } = await registered();
    const other = new Client(server.url, "bearer", { origin: ORIGIN });
    expect((await other.login(name, PASSWORD)).status).toBe(200);
    const { key } = await addPasskey(client);

    const wrong = await client.request("DELETE", `${AUTH}/password`, { json: { current_password: "wrong password!" } });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error).toBe("invalid_current_password");
    expect(await passwordHashOf(name)).toStartWith("$argon2id$");

    const removed = await client.request("DELETE", `${AUTH}/password`, { json: { current_password: PASSWORD } });
    expect(removed.status).toBe(200);
    expect(removed.body.message).toBe("Password removed: sign in with a passkey from now on; 1 other session(s) ended.");
    expect(await passwordHashOf(name)).toBeNull();
    expect((await client.me()).status).toBe(200);
    expect((await other.me()).status).toBe(401);
    expect(await auditOf("password_removed", name)).toEqual([{ sessions_ended: 1 }]);

    // Gone: a second removal has nothing to remove; a passkey still signs in.
    const again = await client.request("DELETE", `${AUTH}/password`, { json: { current_password: PASSWORD } });
    expect(again.status).toBe(409);
    expect(again.body.error).toBe("no_password");
    expect((await (await passkeySignIn(key)).me()).body.user.username).toBe(name);
  });

  test("a password sign-in to a passwordless account answers exactly like an unknown user (401 invalid_credentials), and so does /token", async () => {
    const { client, name } = await registered();
    await addPasskey(client);
    expect((await client.request("DELETE", `${AUTH}/password`, { json: { current_password: PASSWORD } })).status).toBe(200);
    const probe = new Client(server.url, "bearer", { origin: ORIGIN });
    const passwordless = await probe.login(name, PASSWORD);
    const unknown = await probe.login(`nobody-${n}`, PASSWORD);
    expect(passwordless.status).toBe(401);
    expect(passwordless.body).toEqual(unknown.body);
    expect(passwordless.body.error).toBe("invalid_credentials");
    // Not even the empty password: nothing matches a missing hash.
    expect((await probe.login(name, "")).status).toBe(401);
    const grant = await probe.request("POST", `${AUTH}/token`, { form: { grant_type: "password", username: name, password: PASSWORD } });
    expect(grant.status).toBe(400);
    expect(grant.body.error).toBe("invalid_grant");
    expect(await auditOf("login_failed", name)).toContainEqual({ reason: "invalid_credentials" });
  });

  test("the last passkey of a passwordless account cannot be deleted (409 last_sign_in_method); the one before it can", async () => {
    const { client, name } = await registered();
    const first = await addPasskey(client);
    const second = await addPasskey(client);
    expect((await client.request("DELETE", `${AUTH}/password`, { json: { current_password: PASSWORD } })).status).toBe(200);
    expect((await client.request("DELETE", `${AUTH}/passkeys/${first.id}`)).status).toBe(204);
    const last = await client.request("DELETE", `${AUTH}/passkeys/${second.id}`);
    expect(last.status).toBe(409);
    expect(last.body).toEqual({ error: "last_sign_in_method", message: expect.stringContaining("only passkey") });
    expect((await client.request("GET", `${AUTH}/passkeys`)).body.passkeys.map((p: { id: string }) => p.id)).toEqual([second.id]);
    // Someone else's passkey id is still just not found, before the rule.
    expect((await client.request("DELETE", `${AUTH}/passkeys/${first.id}`)).status).toBe(404);
    expect(await auditOf("passkey_deleted", name)).toEqual([{ passkey_id: first.id }]);
  });

  test("an account with a password may delete its last passkey", async () => {
    const { client } = await registered();
    const only = await addPasskey(client);
    expect((await client.request("DELETE", `${AUTH}/passkeys/${only.id}`)).status).toBe(204);
  });

  test("a passwordless account sets a password without current_password (then it is needed again), and signs in with it", async () => {
    const { client, name } = await registered();
    await addPasskey(client);
    expect((await client.request("DELETE", `${AUTH}/password`, { json: { current_password: PASSWORD } })).status).toBe(200);
    const set = await client.request("POST", `${AUTH}/password`, { json: { new_password: "another long passphrase" } });
    expect(set.status).toBe(200);
    expect(await auditOf("password_changed", name)).toEqual([{ sessions_ended: 0, first_password: true }]);
    // The password is right: an account with a passkey owes its second step (202), a wrong one would be 401.
    const probe = new Client(server.url, "bearer", { origin: ORIGIN });
    const login = await probe.login(name, "another long passphrase");
    expect(login.status).toBe(202);
    expect(login.body.methods).toContain("passkey");
    const withoutCurrent = await client.request("POST", `${AUTH}/password`, { json: { new_password: "a third long passphrase" } });
    expect(withoutCurrent.status).toBe(403);
    expect(withoutCurrent.body.error).toBe("invalid_current_password");
  });
});

describe("removing the password in every delivery mode: the session that removed it stays, the password no longer signs in", () => {
  for (const mode of MODES) {
    test(mode, async () => {
      const own = await startServer({ TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true", PUBLIC_URL: ORIGIN, RATE_LIMIT_IP_BURST: "1000" });
      try {
        const client = new Client(own.url, mode, { origin: ORIGIN });
        expect((await client.register(`mode-${mode}`, PASSWORD)).status).toBe(201);
        const options = await client.request("POST", `${AUTH}/passkeys/register/options`);
        expect((await client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: authenticator().register(options.body) } })).status).toBe(201);
        const removed = await client.request("DELETE", `${AUTH}/password`, { json: { current_password: PASSWORD } });
        expect(removed.status).toBe(200);
        expect((await client.me()).status).toBe(200);
        const probe = new Client(own.url, mode, { origin: ORIGIN });
        expect((await probe.login(`mode-${mode}`, PASSWORD)).body.error).toBe("invalid_credentials");
      } finally {
        expect(await own.stop()).toBe(0);
        removeDataDir(own.dataDir);
      }
    });
  }
});

/** Signs a browser in through the sign-in page with the password. */
async function pageSignIn(name: string): Promise<CookieJar> {
  const jar = cookieJar();
  expect(await browserSignIn(`${server.url}/login`, name, PASSWORD, jar, ORIGIN)).toBe("/account");
  return jar;
}

async function accountPage(jar: CookieJar) {
  const page = await fetch(`${server.url}/account`, { headers: { cookie: jar.header() } });
  expect(page.status).toBe(200);
  jar.take(page);
  return page.text();
}

async function post(jar: CookieJar, path: string, html: string, fields: Record<string, string>) {
  const posted = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { cookie: jar.header(), origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrf: csrfOf(html, path), ...fields }),
    redirect: "manual",
  });
  jar.take(posted);
  return posted;
}

describe("the account page's password section", () => {
  test("no Remove password without a passkey", async () => {
    const { name } = await registered("page");
    const html = await accountPage(await pageSignIn(name));
    expect(html).toContain('action="/account/password"');
    expect(html).not.toContain("/account/password/remove");
  });

  test("with a passkey: Remove password, confirmed by the password; a wrong one is said beside it; then the page offers to set one", async () => {
    const { client, name } = await registered("page");
    // Signed in before the passkey exists (with one, a password sign-in owes the passkey as its second step).
    const jar = await pageSignIn(name);
    await addPasskey(client);
    let html = await accountPage(jar);
    expect(html).toContain("<summary>Remove password</summary>");

    const wrong = await post(jar, "/account/password/remove", html, { current_password: "wrong password!" });
    expect(wrong.status).toBe(303);
    expect(wrong.headers.get("location")).toBe("/account#password");
    html = await accountPage(jar);
    expect(html).toContain("The current password is incorrect.");
    expect(await passwordHashOf(name)).toStartWith("$argon2id$");

    const removed = await post(jar, "/account/password/remove", html, { current_password: PASSWORD });
    expect(removed.status).toBe(303);
    html = await accountPage(jar);
    expect(html).toContain("Password removed: you sign in with a passkey from now on.");
    expect(html).toContain("Your account has no password: you sign in with a passkey.");
    expect(html).not.toContain('id="current_password"');
    expect(await passwordHashOf(name)).toBeNull();
    // The API client's session was another one: it ended.
    expect((await client.me()).status).toBe(401);

    const set = await post(jar, "/account/password", html, { new_password: "a brand new passphrase" });
    expect(set.status).toBe(303);
    html = await accountPage(jar);
    expect(html).toContain("Password changed.");
    expect(await passwordHashOf(name)).toStartWith("$argon2id$");
  });
});
