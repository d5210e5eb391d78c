import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateHOTP } from "@oslojs/otp";
import { AUTH, Client, MODES } from "../support/client";
import { openTestDatabase } from "../support/database";
import { SoftwareAuthenticator } from "../support/passkeys";
import { freePort, removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";

const PASSWORD = "a long passphrase";
const ORIGIN = "http://localhost";
const RP_ID = "localhost";
const ICLOUD = "fbfc3007-154e-4ecc-8c0b-6e020557d7bd";

const authenticator = (options: Partial<ConstructorParameters<typeof SoftwareAuthenticator>[0]> = {}) =>
  new SoftwareAuthenticator({ rpId: RP_ID, origin: ORIGIN, ...options });

/** Registers `key` for the signed-in `client`: options, then the authenticator's answer. */
async function registerPasskey(client: Client, key: SoftwareAuthenticator, name?: string) {
  const options = await client.request("POST", `${AUTH}/passkeys/register/options`);
  expect(options.status).toBe(200);
  return client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: key.register(options.body), ...(name === undefined ? {} : { name }) } });
}

async function loginOptions(client: Client) {
  const options = await client.request("POST", `${AUTH}/login/passkey/options`);
  expect(options.status).toBe(200);
  expect(options.body.allowCredentials ?? []).toEqual([]);
  return options.body as { challenge: string };
}

describe("passkeys by API, in every delivery mode: register, then sign in usernameless with the mode's token response", () => {
  for (const mode of MODES) {
    test(mode, async () => {
      const server = await startServer({ TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true", PUBLIC_URL: ORIGIN, RATE_LIMIT_IP_BURST: "1000" });
      try {
        const client = new Client(server.url, mode, { origin: ORIGIN });
        expect((await client.register(`pk-${mode}`, PASSWORD)).status).toBe(201);
        const key = authenticator({ synced: true, aaguid: ICLOUD });
        const registered = await registerPasskey(client, key);
        expect(registered.status).toBe(201);
        expect(registered.body).toEqual({
          id: expect.any(String),
          name: "iCloud Keychain",
          aaguid: ICLOUD,
          backup_eligible: true,
          backed_up: true,
          transports: ["internal"],
          created_at: expect.any(String),
          last_used_at: null,
        });

        client.reset();
        expect((await client.me()).status).toBe(401);
        const signedIn = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client)) } });
        expect(signedIn.status).toBe(200);
        expect(signedIn.body.user.username).toBe(`pk-${mode}`);
        if (mode === "cookie") expect(signedIn.body.message).toBe("Signed in.");
        else expect(signedIn.body.access_token).toEqual(expect.any(String));
        const me = await client.me();
        expect(me.status).toBe(200);
        expect(me.body.user.username).toBe(`pk-${mode}`);

        const listed = await client.request("GET", `${AUTH}/passkeys`);
        expect(listed.body.passkeys).toHaveLength(1);
        expect(listed.body.passkeys[0].last_used_at).toEqual(expect.any(String));
      } finally {
        expect(await server.stop()).toBe(0);
        removeDataDir(server.dataDir);
      }
    });
  }
});

describe("passkey ceremonies refused", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ ALLOW_REGISTRATION: "true", PUBLIC_URL: ORIGIN, RATE_LIMIT_IP_BURST: "1000", MFA_REQUIRED_ROLES: "ops" });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  let n = 0;
  async function signedIn() {
    const client = new Client(server.url, "bearer", { origin: ORIGIN });
    const name = `refused-${++n}`;
    expect((await client.register(name, PASSWORD)).status).toBe(201);
    return { client, name };
  }

  async function auditEvents(event: string) {
    const db = await openTestDatabase(server.dataDir);
    try {
      const rows = await db.all<{ detail: string | object }>("SELECT detail FROM audit_events WHERE event = ?", event);
      // SQLite keeps the detail as JSON text, PostgreSQL as jsonb.
      return rows.map((row) => (typeof row.detail === "string" ? JSON.parse(row.detail) : row.detail));
    } finally {
      await db.close();
    }
  }

  test("registration options work once: a replayed answer is 401 passkey_challenge_expired", async () => {
    const { client } = await signedIn();
    const key = authenticator();
    const options = (await client.request("POST", `${AUTH}/passkeys/register/options`)).body;
    const answer = key.register(options);
    expect((await client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: answer } })).status).toBe(201);
    const replay = await client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: answer } });
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe("passkey_challenge_expired");
  });

  test("registration options are bound to the account that asked", async () => {
    const alice = await signedIn();
    const bob = await signedIn();
    const options = (await alice.client.request("POST", `${AUTH}/passkeys/register/options`)).body;
    const stolen = await bob.client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: authenticator().register(options) } });
    expect(stolen.status).toBe(401);
    expect(stolen.body.error).toBe("passkey_challenge_expired");
    expect((await bob.client.request("GET", `${AUTH}/passkeys`)).body.passkeys).toEqual([]);
  });

  test("excludeCredentials lists the account's passkeys, and the same authenticator again is 409 passkey_already_registered", async () => {
    const { client } = await signedIn();
    const key = authenticator();
    expect((await registerPasskey(client, key, "laptop")).status).toBe(201);
    const options = (await client.request("POST", `${AUTH}/passkeys/register/options`)).body;
    expect(options.excludeCredentials).toEqual([{ id: key.id, type: "public-key", transports: ["internal"] }]);
    expect(options.authenticatorSelection).toMatchObject({ residentKey: "required", userVerification: "preferred" });
    const again = await client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: key.register(options) } });
    expect(again.status).toBe(409);
    expect(again.body.error).toBe("passkey_already_registered");
    expect((await client.request("GET", `${AUTH}/passkeys`)).body.passkeys.map((row: { name: string }) => row.name)).toEqual(["laptop"]);
  });

  test("sign-in options work once: a replayed assertion is 401 passkey_challenge_expired", async () => {
    const { client } = await signedIn();
    const key = authenticator();
    expect((await registerPasskey(client, key)).status).toBe(201);
    const answer = key.assert(await loginOptions(client));
    expect((await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: answer } })).status).toBe(200);
    const replay = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: answer } });
    expect(replay.status).toBe(401);
    expect(replay.body).toEqual({ error: "passkey_challenge_expired", message: "These passkey options have expired or were already used: ask for new options and try again." });
  });

  test("options older than 5 minutes are refused with 401 passkey_challenge_expired", async () => {
    const { client } = await signedIn();
    const key = authenticator();
    expect((await registerPasskey(client, key)).status).toBe(201);
    const options = await loginOptions(client);
    const db = await openTestDatabase(server.dataDir, { writable: true });
    try {
      // Five minutes pass for the options handed out (their creation is in the past).
      await db.run("UPDATE passkey_challenges SET expires_at = created_at");
    } finally {
      await db.close();
    }
    const late = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(options) } });
    expect(late.status).toBe(401);
    expect(late.body.error).toBe("passkey_challenge_expired");
  });

  test("a ceremony on another origin is 400 passkey_wrong_origin (registration and sign-in)", async () => {
    const { client } = await signedIn();
    const key = authenticator();
    const options = (await client.request("POST", `${AUTH}/passkeys/register/options`)).body;
    const phished = await client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: key.register(options, { origin: "http://localhost.evil.test" }) } });
    expect(phished.status).toBe(400);
    expect(phished.body.error).toBe("passkey_wrong_origin");
    expect((await registerPasskey(client, key)).status).toBe(201);
    const login = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client), { origin: "https://localhost" }) } });
    expect(login.status).toBe(400);
    expect(login.body.error).toBe("passkey_wrong_origin");
    expect(await auditEvents("passkey_registration_failed")).toContainEqual({ reason: "passkey_wrong_origin" });
    expect(await auditEvents("login_failed")).toContainEqual({ reason: "passkey_wrong_origin", via: "passkey" });
  });

  test("an authenticator answering for another RP ID is 400 passkey_wrong_rp_id (registration and sign-in)", async () => {
    const { client } = await signedIn();
    const key = authenticator();
    const options = (await client.request("POST", `${AUTH}/passkeys/register/options`)).body;
    const other = await client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: key.register(options, { rpId: "evil.test" }) } });
    expect(other.status).toBe(400);
    expect(other.body.error).toBe("passkey_wrong_rp_id");
    expect((await registerPasskey(client, key)).status).toBe(201);
    const login = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client), { rpId: "evil.test" }) } });
    expect(login.status).toBe(400);
    expect(login.body.error).toBe("passkey_wrong_rp_id");
  });

  test("a signature counter that goes back is 401 passkey_counter_regression and audited; a tampered signature is 400", async () => {
    const { client } = await signedIn();
    const key = authenticator();
    expect((await registerPasskey(client, key)).status).toBe(201);
    expect((await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client), { counter: 10 }) } })).status).toBe(200);
    const clone = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client), { counter: 10 }) } });
    expect(clone.status).toBe(401);
    expect(clone.body.error).toBe("passkey_counter_regression");
    expect(await auditEvents("passkey_counter_regression")).toContainEqual({ passkey_id: expect.any(String), stored: 10, received: 10 });
    const tampered = key.assert(await loginOptions(client), { counter: 11 });
    tampered.response.signature = Buffer.from(tampered.response.signature, "base64url").reverse().toString("base64url");
    const bad = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: tampered } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe("passkey_verification_failed");
    // The genuine authenticator, moving on, still signs in.
    expect((await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client), { counter: 12 }) } })).status).toBe(200);
  });

  test("authenticators without a counter (synced passkeys send 0) sign in again and again", async () => {
    const { client } = await signedIn();
    const key = authenticator({ synced: true, countsSignatures: false });
    expect((await registerPasskey(client, key)).status).toBe(201);
    for (let i = 0; i < 2; i++)
      expect((await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client)) } })).status).toBe(200);
  });

  test("an unknown passkey is 401 passkey_unknown_credential; rename and delete; a deleted passkey signs in no more", async () => {
    const { client } = await signedIn();
    const stranger = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: authenticator().assert(await loginOptions(client)) } });
    expect(stranger.status).toBe(401);
    expect(stranger.body.error).toBe("passkey_unknown_credential");

    const key = authenticator();
    const { id } = (await registerPasskey(client, key)).body;
    const renamed = await client.request("PATCH", `${AUTH}/passkeys/${id}`, { json: { name: "  Work laptop " } });
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe("Work laptop");
    const other = await signedIn();
    expect((await other.client.request("PATCH", `${AUTH}/passkeys/${id}`, { json: { name: "mine" } })).body.error).toBe("passkey_not_found");
    expect((await other.client.request("DELETE", `${AUTH}/passkeys/${id}`)).status).toBe(404);
    expect((await client.request("DELETE", `${AUTH}/passkeys/${id}`)).status).toBe(204);
    expect((await client.request("GET", `${AUTH}/passkeys`)).body.passkeys).toEqual([]);
    const gone = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client)) } });
    expect(gone.status).toBe(401);
    expect(gone.body.error).toBe("passkey_unknown_credential");
  });

  test("without user verification a passkey is one factor: an account with TOTP gets the 202 challenge; with it, a complete sign-in", async () => {
    const { client, name } = await signedIn();
    const key = authenticator({ userVerified: false });
    expect((await registerPasskey(client, key)).status).toBe(201);
    // Without a second step, one factor is the whole sign-in (as with a password).
    expect((await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client)) } })).status).toBe(200);

    const { secret } = (await client.request("POST", `${AUTH}/mfa/totp`)).body;
    const code = generateHOTP(decodeBase32IgnorePadding(secret), BigInt(Math.floor(Date.now() / 30_000)), 6);
    expect((await client.request("POST", `${AUTH}/mfa/totp/confirm`, { json: { code } })).status).toBe(200);
    client.reset();

    const challenged = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client)) } });
    expect(challenged.status).toBe(202);
    expect(challenged.body).toEqual({ challenge_id: expect.any(String), methods: ["totp", "recovery_code"], expires_in: expect.any(Number) });
    expect(challenged.body.access_token).toBeUndefined();

    const verified = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client), { userVerified: true }) } });
    expect(verified.status).toBe(200);
    expect(verified.body.user.username).toBe(name);
  });
});

describe("a passkey as the second step after a password", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ ALLOW_REGISTRATION: "true", PUBLIC_URL: ORIGIN, RATE_LIMIT_IP_BURST: "1000", MFA_REQUIRED_ROLES: "ops" });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  const verify = (client: Client, challengeId: string, passkey: unknown) =>
    client.request("POST", `${AUTH}/login/verify`, { json: { challenge_id: challengeId, passkey } });
  const options = async (client: Client, challengeId: string) => {
    const reply = await client.request("POST", `${AUTH}/login/verify/options`, { json: { challenge_id: challengeId } });
    expect(reply.status).toBe(200);
    return reply.body;
  };

  test("methods offer passkey; only the account's own passkey answers (another's counts as a wrong answer); then the token response", async () => {
    const client = new Client(server.url, "bearer", { origin: ORIGIN });
    expect((await client.register("second-pk", PASSWORD)).status).toBe(201);
    const key = authenticator();
    expect((await registerPasskey(client, key)).status).toBe(201);
    const stranger = new Client(server.url, "bearer", { origin: ORIGIN });
    expect((await stranger.register("stranger-pk", PASSWORD)).status).toBe(201);
    const strangerKey = authenticator();
    expect((await registerPasskey(stranger, strangerKey)).status).toBe(201);
    client.reset();

    const challenge = await client.login("second-pk", PASSWORD);
    expect(challenge.status).toBe(202);
    expect(challenge.body.methods).toEqual(["passkey"]);
    const offered = await options(client, challenge.body.challenge_id);
    expect(offered.allowCredentials).toEqual([{ id: key.id, type: "public-key", transports: ["internal"] }]);

    const wrongKey = await verify(client, challenge.body.challenge_id, strangerKey.assert(offered));
    expect(wrongKey.status).toBe(401);
    expect(wrongKey.body.error).toBe("passkey_unknown_credential");
    // Those options are spent; the challenge lives on (one wrong answer of five).
    const spent = await verify(client, challenge.body.challenge_id, key.assert(offered));
    expect(spent.status).toBe(401);
    expect(spent.body.error).toBe("passkey_challenge_expired");

    const done = await verify(client, challenge.body.challenge_id, key.assert(await options(client, challenge.body.challenge_id)));
    expect(done.status).toBe(200);
    expect(done.body.user.username).toBe("second-pk");
    expect((await client.me()).status).toBe(200);

    const db = await openTestDatabase(server.dataDir);
    try {
      const failures = await db.get<{ failures: number }>("SELECT count(*) AS failures FROM audit_events WHERE event = 'mfa_challenge_failed'");
      expect(Number(failures!.failures)).toBe(2);
    } finally {
      await db.close();
    }
  });

  test("a challenge without passkey among its methods gives no passkey options", async () => {
    const client = new Client(server.url, "bearer", { origin: ORIGIN });
    expect((await client.register("totp-only", PASSWORD)).status).toBe(201);
    const { secret } = (await client.request("POST", `${AUTH}/mfa/totp`)).body;
    const code = generateHOTP(decodeBase32IgnorePadding(secret), BigInt(Math.floor(Date.now() / 30_000)), 6);
    expect((await client.request("POST", `${AUTH}/mfa/totp/confirm`, { json: { code } })).status).toBe(200);
    const challenge = await client.login("totp-only", PASSWORD);
    expect(challenge.body.methods).toEqual(["totp", "recovery_code"]);
    const refused = await client.request("POST", `${AUTH}/login/verify/options`, { json: { challenge_id: challenge.body.challenge_id } });
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe("challenge_expired");
  });

  test("MFA_REQUIRED_ROLES accepts a passkey: no TOTP enrolment after a password, and a passkey with UV is the whole sign-in", async () => {
    const client = new Client(server.url, "bearer", { origin: ORIGIN });
    const registered = await client.register("operator", PASSWORD);
    const key = authenticator({ userVerified: true });
    expect((await registerPasskey(client, key)).status).toBe(201);
    const db = await openTestDatabase(server.dataDir, { writable: true });
    try {
      await db.run(`UPDATE users SET roles = '["ops"]' WHERE id = ?`, registered.body.user.id);
    } finally {
      await db.close();
    }
    client.reset();
    expect((await client.login("operator", PASSWORD)).body.methods).toEqual(["passkey"]);
    const full = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client)) } });
    expect(full.status).toBe(200);
    // Without UV the passkey is one factor, and the role still owes a second one it does not have yet.
    const half = await client.request("POST", `${AUTH}/login/passkey/verify`, { json: { credential: key.assert(await loginOptions(client), { userVerified: false }) } });
    expect(half.status).toBe(202);
    expect(half.body.methods).toEqual(["totp_enrollment"]);
  });
});

describe("PASSKEY_RP_ID", () => {
  const start = async (env: Record<string, string>) => {
    const dataDir = tempDataDir();
    try {
      const result = await runCli(["serve"], { DATA_DIR: dataDir, PORT: String(freePort()), HOST: "127.0.0.1", ...env });
      return { ...result, written: readdirSync(dataDir) };
    } finally {
      removeDataDir(dataDir);
    }
  };

  test("not a suffix of every sign-in host: exit 2 naming it", async () => {
    const result = await start({ PUBLIC_URL: "https://auth.example.com", SIGN_IN_URLS: "https://login.example.net", PASSKEY_RP_ID: "example.com" });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toEqual([
      'latchkey: configuration error: PASSKEY_RP_ID="example.com" is not a suffix of the sign-in host https://login.example.net (PUBLIC_URL, SIGN_IN_URLS): passkeys would not work there',
    ]);
    expect(result.written).toEqual([]);
  });

  test.each([["com"], ["127.0.0.1"], ["https://example.com"], ["exa mple.com"]])("%s is not a domain: exit 2", async (value) => {
    const result = await start({ PUBLIC_URL: "https://auth.example.com", PASSKEY_RP_ID: value });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toEqual([`latchkey: configuration error: PASSKEY_RP_ID=${JSON.stringify(value)} is invalid: expected a domain such as example.com`]);
  });
});
