/**
 * Requiring a passkey, against the binary over HTTP with a software authenticator (no browser): the amr every API
 * sign-in records, forward auth's `require = "passkey"` for tokens, API keys and browsers, and the passkey step-up
 * page (/login/passkey-step) driven as a browser without JavaScript would post it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateHOTP } from "@oslojs/otp";
import { AUTH, Client, jwtClaims } from "../support/client";
import { openTestDatabase } from "../support/database";
import { browserSignIn, cookieJar, csrfOf, type CookieJar } from "../support/pages";
import { SoftwareAuthenticator } from "../support/passkeys";
import { removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";

const PASSWORD = "a long passphrase";
const ORIGIN = "http://localhost";
// An app on the sign-in host's name (localhost: a host-only cookie covers every port of it), so `rd` may go back.
const VAULT = "http://localhost:8080/vault/secrets?x=1";
const OPEN = "http://localhost:8080/open";

const RULES = `
[[rule]]
name = "the vault, with a passkey"
paths = ["/vault"]
require = "passkey"
`;

let server: RunningServer;
beforeAll(async () => {
  const dataDir = tempDataDir();
  const rules = join(dataDir, "rules.toml");
  writeFileSync(rules, RULES);
  expect((await runCli(["user", "add", "root", "--admin"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  server = await startServer({ ALLOW_REGISTRATION: "true", PUBLIC_URL: ORIGIN, RATE_LIMIT_IP_BURST: "1000", TRUST_PROXY: "127.0.0.1", ACCESS_RULES_FILE: rules, MFA_REQUIRED_ROLES: "ops" }, dataDir);
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

const authenticator = (userVerified = true) => new SoftwareAuthenticator({ rpId: "localhost", origin: ORIGIN, userVerified });

async function registerPasskey(client: Client, key: SoftwareAuthenticator) {
  const options = await client.request("POST", `${AUTH}/passkeys/register/options`);
  expect(options.status).toBe(200);
  const made = await client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: key.register(options.body) } });
  expect(made.status).toBe(201);
}

async function passkeyLogin(client: Client, key: SoftwareAuthenticator) {
  const options = await client.request("POST", `${AUTH}/login/passkey/options`);
  return client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(options.body) } });
}

async function account(name: string) {
  const client = new Client(server.url, "bearer", { origin: ORIGIN });
  expect((await client.register(name, PASSWORD)).status).toBe(201);
  return client;
}

/** The amr stored with the session an access token belongs to. */
async function amrOf(accessToken: string): Promise<string[]> {
  const db = await openTestDatabase(server.dataDir);
  try {
    const row = await db.get<{ amr: string }>("SELECT amr FROM sessions WHERE id = ?", jwtClaims(accessToken).sid);
    return JSON.parse(row!.amr);
  } finally {
    await db.close();
  }
}

/** Forward auth as a trusted proxy (Caddy/Traefik headers) asks it for `url`, with the caller's credential headers. */
function forward(url: string, headers: Record<string, string> = {}) {
  const target = new URL(url);
  return fetch(`${server.url}${AUTH}/forward`, {
    headers: { "x-forwarded-proto": target.protocol.slice(0, -1), "x-forwarded-host": target.host, "x-forwarded-uri": target.pathname + target.search, "x-forwarded-method": "GET", ...headers },
    redirect: "manual",
  });
}

describe("API sign-ins record how they authenticated (RFC 8176 amr), as the browser's do", () => {
  test("registration and a password sign-in: pwd; a refresh keeps the session's amr", async () => {
    const client = await account("amr-password");
    expect(await amrOf(client.accessToken!)).toEqual(["pwd"]);
    expect((await client.login("amr-password", PASSWORD)).status).toBe(200);
    const sid = jwtClaims(client.accessToken!).sid;
    expect(await amrOf(client.accessToken!)).toEqual(["pwd"]);
    expect((await client.refreshSession()).status).toBe(200);
    expect(jwtClaims(client.accessToken!).sid).toBe(sid);
    expect(await amrOf(client.accessToken!)).toEqual(["pwd"]);
  });

  test("a passkey with user verification: hwk, user, mfa; kept by a refresh", async () => {
    const client = await account("amr-passkey");
    const key = authenticator();
    await registerPasskey(client, key);
    client.reset();
    expect((await passkeyLogin(client, key)).status).toBe(200);
    expect(await amrOf(client.accessToken!)).toEqual(["hwk", "user", "mfa"]);
    expect((await client.refreshSession()).status).toBe(200);
    expect(await amrOf(client.accessToken!)).toEqual(["hwk", "user", "mfa"]);
  });

  test("a passkey without user verification then TOTP: hwk, otp, mfa; a password then a passkey: pwd, hwk, mfa", async () => {
    const client = await account("amr-two-steps");
    const key = authenticator(false);
    await registerPasskey(client, key);
    const { secret } = (await client.request("POST", `${AUTH}/mfa/totp`)).body;
    // A code is taken once (RFC 6238 §5.2): the sign-in answers with the next step's, within the accepted drift.
    const totp = (ahead = 0) => generateHOTP(decodeBase32IgnorePadding(secret), BigInt(Math.floor(Date.now() / 30_000) + ahead), 6);
    expect((await client.request("POST", `${AUTH}/mfa/totp/confirm`, { json: { code: totp() } })).status).toBe(200);
    client.reset();

    const challenged = await passkeyLogin(client, key);
    expect(challenged.status).toBe(202);
    const verified = await client.request("POST", `${AUTH}/login/verify`, { json: { challenge_id: challenged.body.challenge_id, code: totp(1) } });
    expect(verified.status).toBe(200);
    expect(await amrOf(client.accessToken!)).toEqual(["hwk", "otp", "mfa"]);

    client.reset();
    const afterPassword = await client.login("amr-two-steps", PASSWORD);
    expect(afterPassword.status).toBe(202);
    expect(afterPassword.body.methods).toContain("passkey");
    const options = await client.request("POST", `${AUTH}/login/verify/options`, { json: { challenge_id: afterPassword.body.challenge_id } });
    const done = await client.request("POST", `${AUTH}/login/verify`, { json: { challenge_id: afterPassword.body.challenge_id, passkey: key.assert(options.body) } });
    expect(done.status).toBe(200);
    expect(await amrOf(client.accessToken!)).toEqual(["pwd", "hwk", "mfa"]);
  });
});

describe('forward auth, require = "passkey"', () => {
  test("a password session's token gets 401 passkey_required; a passkey session's passes; an API key never does", async () => {
    const client = await account("fw-tokens");
    const password = { authorization: `Bearer ${client.accessToken}` };
    const refused = await forward(VAULT, password);
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toStartWith("Bearer realm=");
    expect(await refused.json()).toEqual({ error: "passkey_required", message: expect.stringContaining("passkey") });
    // Elsewhere the same token is enough.
    expect((await forward(OPEN, password)).status).toBe(200);

    const key = authenticator();
    await registerPasskey(client, key);
    const withPasskey = new Client(server.url, "bearer", { origin: ORIGIN });
    expect((await passkeyLogin(withPasskey, key)).status).toBe(200);
    const allowed = await forward(VAULT, { authorization: `Bearer ${withPasskey.accessToken}` });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get("remote-user")).toBe("fw-tokens");

    // A key made by the passkey session is still a key: it proves no sign-in.
    const made = await withPasskey.request("POST", `${AUTH}/keys`, { json: { name: "ci" } });
    expect(made.status).toBe(201);
    const presented: Record<string, string>[] = [{ authorization: `Bearer ${made.body.api_key}` }, { "x-api-key": made.body.api_key }];
    for (const headers of presented) {
      const keyed = await forward(VAULT, headers);
      expect(keyed.status).toBe(401);
      expect(((await keyed.json()) as { error: string }).error).toBe("passkey_required");
    }
    expect((await forward(OPEN, { "x-api-key": made.body.api_key })).status).toBe(200);
  });

  test("a browser whose session lacks a passkey is sent to the passkey step on the sign-in host, with rd back", async () => {
    await account("fw-browser");
    const jar = cookieJar();
    await browserSignIn(`${server.url}/login`, "fw-browser", PASSWORD, jar, ORIGIN);
    const sent = await forward(VAULT, { cookie: jar.header(), accept: "text/html" });
    expect(sent.status).toBe(302);
    expect(sent.headers.get("location")).toBe(`${ORIGIN}/login/passkey-step?rd=${encodeURIComponent(VAULT)}`);
    // Anonymous: the sign-in page, as before.
    const anonymous = await forward(VAULT, { accept: "text/html" });
    expect(anonymous.headers.get("location")).toBe(`${ORIGIN}/login?rd=${encodeURIComponent(VAULT)}`);
    // Behind nginx (auth_request passes only 401 and 403 on): a 401 carrying the Location, as for a sign-in.
    const nginx = await fetch(`${server.url}${AUTH}/forward`, { headers: { "x-original-url": VAULT, "x-original-method": "GET", cookie: jar.header(), accept: "text/html" }, redirect: "manual" });
    expect(nginx.status).toBe(401);
    expect(nginx.headers.get("location")).toBe(`${ORIGIN}/login/passkey-step?rd=${encodeURIComponent(VAULT)}`);
    // A script of the same browser (not a navigation): the JSON answer.
    const script = await forward(VAULT, { cookie: jar.header(), accept: "application/json" });
    expect(script.status).toBe(401);
    expect(((await script.json()) as { error: string }).error).toBe("passkey_required");
  });
});

test('a require the server does not know stops the start: exit 2 and one line naming ACCESS_RULES_FILE and the rule', async () => {
  const dir = tempDataDir();
  try {
    const rules = join(dir, "rules.toml");
    writeFileSync(rules, '[[rule]]\nname = "vault"\nhosts = ["vault.example.com"]\nrequire = "webauthn"\n');
    const result = await runCli(["serve"], { DATA_DIR: dir, HOST: "127.0.0.1", PORT: "1", ACCESS_RULES_FILE: rules, TRUST_PROXY: "127.0.0.1" });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toEqual([`latchkey: configuration error: ACCESS_RULES_FILE=${rules}: rule 1 ("vault"): require must be "passkey", not "webauthn"`]);
  } finally {
    removeDataDir(dir);
  }
});

describe("the passkey step-up page", () => {
  const page = (path: string, jar: CookieJar) => fetch(`${server.url}${path}`, { headers: { cookie: jar.header() }, redirect: "manual" });
  const post = (jar: CookieJar, fields: Record<string, string>) =>
    fetch(`${server.url}/login/passkey-step`, {
      method: "POST",
      headers: { cookie: jar.header(), origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields),
      redirect: "manual",
    });
  const optionsOf = (html: string) =>
    JSON.parse(/name="options" value="([^"]*)"/.exec(html)![1]!.replace(/&(quot|#34|#39|amp);/g, (_, name: string) => ({ quot: '"', "#34": '"', "#39": "'", amp: "&" })[name]!));
  const stepUrl = `/login/passkey-step?rd=${encodeURIComponent(VAULT)}`;

  async function audited(event: string, username: string) {
    const db = await openTestDatabase(server.dataDir);
    try {
      return await db.all<{ detail: string }>("SELECT a.detail FROM audit_events a JOIN users u ON u.id = a.user_id WHERE a.event = ? AND u.username = ?", event, username);
    } finally {
      await db.close();
    }
  }

  test("not signed in: the sign-in page, keeping rd", async () => {
    const reply = await page(stepUrl, cookieJar());
    expect(reply.status).toBe(302);
    expect(reply.headers.get("location")).toBe(`/login?rd=${encodeURIComponent(VAULT)}`);
  });

  test("an account without a passkey reads a sentence and a link to add one", async () => {
    await account("step-none");
    const jar = cookieJar();
    await browserSignIn(`${server.url}/login`, "step-none", PASSWORD, jar, ORIGIN);
    const reply = await page(stepUrl, jar);
    expect(reply.status).toBe(200);
    const html = await reply.text();
    expect(html).toContain("your account has none yet");
    expect(html).toContain('href="/account/passkeys/add"');
    expect(html).not.toContain('name="options"');
  });

  test("own passkey only: another account's is refused and audited; the owner's gives a new session with hwk, then rd", async () => {
    const client = await account("step-owner");
    const jar = cookieJar();
    await browserSignIn(`${server.url}/login`, "step-owner", PASSWORD, jar, ORIGIN);
    const key = authenticator();
    await registerPasskey(client, key);
    const stranger = await account("step-stranger");
    const strangerKey = authenticator();
    await registerPasskey(stranger, strangerKey);
    const before = jar.header();
    expect((await forward(VAULT, { cookie: before })).status).toBe(401);

    let reply = await page(stepUrl, jar);
    expect(reply.status).toBe(200);
    expect(reply.headers.get("content-security-policy")).toContain("script-src 'sha256-");
    let html = await reply.text();
    expect(html).toContain("This app asks you to confirm with a passkey");
    const options = optionsOf(html);
    expect(options.allowCredentials).toEqual([{ id: key.id, type: "public-key", transports: ["internal"] }]);

    const refused = await post(jar, { csrf: csrfOf(html, "/login/passkey-step"), rd: VAULT, credential: JSON.stringify(strangerKey.assert(options)) });
    expect(refused.status).toBe(401);
    expect(await refused.text()).toContain("This passkey is not registered here");
    expect(refused.headers.getSetCookie()).toEqual([]);
    expect((await audited("passkey_step_up_failed", "step-owner")).map((row) => JSON.parse(row.detail))).toEqual([{ reason: "passkey_unknown_credential" }]);

    reply = await page(stepUrl, jar);
    html = await reply.text();
    const confirmed = await post(jar, { csrf: csrfOf(html, "/login/passkey-step"), rd: VAULT, credential: JSON.stringify(key.assert(optionsOf(html))) });
    expect(confirmed.status).toBe(303);
    expect(confirmed.headers.get("location")).toBe(VAULT);
    jar.take(confirmed);
    const allowed = await forward(VAULT, { cookie: jar.header() });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get("remote-user")).toBe("step-owner");
    // The session before the step-up is over, not made stronger.
    expect((await forward(OPEN, { cookie: before })).status).toBe(401);
    const [event] = (await audited("passkey_step_up", "step-owner")).map((row) => JSON.parse(row.detail));
    expect(event).toMatchObject({ user_verified: true, amr: ["pwd", "hwk", "user", "mfa"] });

    // Made with a passkey now: the step lets it straight through, to a checked rd only.
    const through = await page(stepUrl, jar);
    expect(through.status).toBe(302);
    expect(through.headers.get("location")).toBe(VAULT);
    const elsewhere = await page(`/login/passkey-step?rd=${encodeURIComponent("https://evil.example/")}`, jar);
    expect(elsewhere.headers.get("location")).toBe("/account");
  });

  test("a post from another site, or without the form's token, is refused", async () => {
    await account("step-csrf");
    const jar = cookieJar();
    await browserSignIn(`${server.url}/login`, "step-csrf", PASSWORD, jar, ORIGIN);
    const crossSite = await fetch(`${server.url}/login/passkey-step`, {
      method: "POST",
      headers: { cookie: jar.header(), origin: "https://evil.example", "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: "x", credential: "{}" }),
      redirect: "manual",
    });
    expect(crossSite.status).toBe(403);
    expect((await post(jar, { csrf: "forged", credential: "{}" })).status).toBe(403);
  });
});

describe("OpenID Connect: a client that requires a passkey, and acr_values=phr", () => {
  const CALLBACK = "https://notes.example.com/cb";
  const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuz-nGSDo7Q";
  async function admin() {
    const client = new Client(server.url, "bearer", { origin: ORIGIN });
    expect((await client.login("root", PASSWORD)).status).toBe(200);
    return client;
  }

  test("the admin API stores the requirement: require passkey on create, changed by PATCH; anything else is refused", async () => {
    const root = await admin();
    const created = await root.request("POST", "/api/v1/admin/oidc/clients", { json: { client_id: "strict", redirect_uris: [CALLBACK], require: "passkey" } });
    expect(created.status).toBe(201);
    expect(created.body.require).toBe("passkey");
    const lifted = await root.request("PATCH", "/api/v1/admin/oidc/clients/strict", { json: { require: null } });
    expect(lifted.status).toBe(200);
    expect(lifted.body).toMatchObject({ client_id: "strict", require: null });
    expect((await root.request("PATCH", "/api/v1/admin/oidc/clients/strict", { json: { require: "passkey" } })).body.require).toBe("passkey");
    const listed = await root.request("GET", "/api/v1/admin/oidc/clients");
    expect(listed.body.clients.find((client: { client_id: string }) => client.client_id === "strict").require).toBe("passkey");

    const unknown = await root.request("PATCH", "/api/v1/admin/oidc/clients/strict", { json: { require: "fido" } });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error).toBe("validation_failed");
    expect(unknown.body.details).toEqual([{ field: "require", message: 'Must be "passkey", or null for none.' }]);
    const machine = await root.request("POST", "/api/v1/admin/oidc/clients", { json: { client_id: "robot", machine: true, require: "passkey" } });
    expect(machine.status).toBe(422);
    expect(machine.body.details).toEqual([{ field: "require", message: "A machine client signs no user in: a passkey cannot be required of it." }]);
    const missing = await root.request("PATCH", "/api/v1/admin/oidc/clients/nobody", { json: { require: null } });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe("oidc_client_not_found");
  });

  test("the command line: add --require passkey, update --require none; a wrong value is one line and exit 1", async () => {
    const env = { DATA_DIR: server.dataDir };
    const added = await runCli(["oidc", "client", "add", "cli-app", "--redirect-uri", CALLBACK, "--require", "passkey", "--json"], env);
    expect(added.code).toBe(0);
    const root = await admin();
    const require = async () => (await root.request("GET", "/api/v1/admin/oidc/clients")).body.clients.find((client: { client_id: string }) => client.client_id === "cli-app").require;
    expect(await require()).toBe("passkey");
    const lifted = await runCli(["oidc", "client", "update", "cli-app", "--require", "none"], env);
    expect({ code: lifted.code, stdout: lifted.stdout }).toEqual({ code: 0, stdout: "client cli-app: no passkey required\n" });
    expect(await require()).toBeNull();
    const wrong = await runCli(["oidc", "client", "update", "cli-app", "--require", "pin"], env);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('require: Must be "passkey", or null for none.');
  });

  test("discovery lists acr phr; acr_values=phr sends a password session through the passkey step, prompt=none answers login_required", async () => {
    const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { acr_values_supported: string[]; claims_supported: string[] };
    expect(discovery.acr_values_supported).toEqual(["phr"]);
    expect(discovery.claims_supported).toContain("acr");

    const root = await admin();
    expect((await root.request("POST", "/api/v1/admin/oidc/clients", { json: { client_id: "notes", redirect_uris: [CALLBACK], public: true, trusted: true } })).status).toBe(201);
    await account("oidc-password");
    const jar = cookieJar();
    await browserSignIn(`${server.url}/login`, "oidc-password", PASSWORD, jar, ORIGIN);
    const authorize = async (extra: Record<string, string>) => {
      const query = new URLSearchParams({ client_id: "notes", redirect_uri: CALLBACK, response_type: "code", scope: "openid", state: "st", code_challenge: CHALLENGE, code_challenge_method: "S256", ...extra });
      const reply = await fetch(`${server.url}/oidc/authorize?${query}`, { headers: { cookie: jar.header() }, redirect: "manual" });
      expect(reply.status).toBe(302);
      return { query, location: new URL(reply.headers.get("location")!, ORIGIN) };
    };
    // No passkey asked for: a code at once; an unknown ACR value is ignored (acr_values are voluntary).
    const voluntary: Record<string, string>[] = [{}, { acr_values: "silver" }];
    for (const extra of voluntary) {
      const { location } = await authorize(extra);
      expect(location.origin + location.pathname).toBe(CALLBACK);
      expect(location.searchParams.get("code")).toEqual(expect.any(String));
    }
    const stepped = await authorize({ acr_values: "phr" });
    expect(stepped.location.pathname).toBe("/login/passkey-step");
    expect(stepped.location.searchParams.get("rd")).toBe(`/oidc/authorize?${stepped.query}`);
    const silent = await authorize({ acr_values: "silver phr", prompt: "none" });
    expect(silent.location.origin + silent.location.pathname).toBe(CALLBACK);
    expect(Object.fromEntries(silent.location.searchParams)).toEqual({
      error: "login_required",
      error_description: "This application requires a sign-in with a passkey.",
      state: "st",
      iss: ORIGIN,
    });
  });
});

describe("MFA_REQUIRED_ROLES accepts a passkey", () => {
  /** A member of the role `ops`, with one passkey (user verification as given), and no TOTP. */
  async function operator(name: string, userVerified: boolean) {
    const client = await account(name);
    const key = authenticator(userVerified);
    await registerPasskey(client, key);
    const db = await openTestDatabase(server.dataDir, { writable: true });
    try {
      await db.run(`UPDATE users SET roles = '["ops"]' WHERE username = ?`, name);
    } finally {
      await db.close();
    }
    client.reset();
    return { client, key };
  }
  const totpRows = async (name: string) => {
    const db = await openTestDatabase(server.dataDir);
    try {
      return Number((await db.get<{ n: number }>("SELECT count(*) AS n FROM totp_factors t JOIN users u ON u.id = t.user_id WHERE u.username = ?", name))!.n);
    } finally {
      await db.close();
    }
  };

  test("a passkey with user verification is a complete sign-in for the role, by API and on the sign-in page; no TOTP is asked for", async () => {
    const { client, key } = await operator("ops-uv", true);
    const signedIn = await passkeyLogin(client, key);
    expect(signedIn.status).toBe(200);
    expect(await amrOf(client.accessToken!)).toEqual(["hwk", "user", "mfa"]);

    const jar = cookieJar();
    const login = await fetch(`${server.url}/login`, { redirect: "manual" });
    jar.take(login);
    const options = await fetch(`${server.url}${AUTH}/login/passkey/options`, { method: "POST", headers: { origin: ORIGIN } });
    const posted = await fetch(`${server.url}/login/passkey`, {
      method: "POST",
      headers: { cookie: jar.header(), origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: csrfOf(await login.text(), "/login/passkey"), credential: JSON.stringify(key.assert((await options.json()) as { challenge: string })) }),
      redirect: "manual",
    });
    // Straight to the account: no second-step page, no TOTP enrolment.
    expect(posted.status).toBe(303);
    expect(posted.headers.get("location")).toBe("/account");
    expect(await totpRows("ops-uv")).toBe(0);
  });

  test("after a password, the role member's passkey is the second step: not TOTP enrolment", async () => {
    const { client, key } = await operator("ops-password", false);
    const challenge = await client.login("ops-password", PASSWORD);
    expect(challenge.status).toBe(202);
    expect(challenge.body.methods).toEqual(["passkey"]);
    const options = await client.request("POST", `${AUTH}/login/verify/options`, { json: { challenge_id: challenge.body.challenge_id } });
    const done = await client.request("POST", `${AUTH}/login/verify`, { json: { challenge_id: challenge.body.challenge_id, passkey: key.assert(options.body) } });
    expect(done.status).toBe(200);
    expect(await amrOf(client.accessToken!)).toEqual(["pwd", "hwk", "mfa"]);
    expect(await totpRows("ops-password")).toBe(0);
  });
});
