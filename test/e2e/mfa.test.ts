import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateHOTP } from "@oslojs/otp";
import { AUTH, Client, MODES, send } from "../support/client";
import { removeDataDir, runCli, startServer, type RunningServer } from "../support/server";
import { codeIn, mailCatcherForFile, smtpEnv, type ReceivedMail } from "../support/smtp";
import { openTestDatabase } from "../support/database";

const PASSWORD = "a long passphrase";
const ORIGIN = "http://127.0.0.1";

const smtp = mailCatcherForFile();

const loginCodeFor = (address: string) => (mail: ReceivedMail) => mail.to === address && mail.subject.includes("your sign-in code");

/** The TOTP code of `offset` steps from now (RFC 6238: 30 s, 6 digits, SHA-1). */
function totp(secret: string, offset = 0): string {
  return generateHOTP(decodeBase32IgnorePadding(secret), BigInt(Math.floor(Date.now() / 30_000) + offset), 6);
}

/** Waits until at least 3 s remain in the current 30 s step, so that "now ± 1" cannot shift under a test. */
async function awayFromStepEdge(): Promise<void> {
  while (30_000 - (Date.now() % 30_000) < 3000) await Bun.sleep(100);
}

function expectNoTokens(reply: { body: any; cookies: Record<string, unknown>; headers: Headers }) {
  expect(reply.body.access_token).toBeUndefined();
  expect(Object.keys(reply.cookies)).toEqual([]);
  expect(reply.headers.get("token")).toBeNull();
}

describe("LOGIN_EMAIL_CODE: sign-in in two steps in every delivery mode", () => {
  for (const mode of MODES) {
    describe(mode, () => {
      let server: RunningServer;
      beforeAll(async () => {
        server = await startServer({
          ...smtpEnv(smtp.catcher, smtp.certificate),
          TOKEN_DELIVERY: mode,
          ALLOW_REGISTRATION: "true",
          LOGIN_EMAIL_CODE: "true",
          PUBLIC_URL: ORIGIN,
          TRUST_PROXY: "true",
          RATE_LIMIT_IP_BURST: "1000",
        });
      });
      afterAll(async () => {
        expect(await server.stop()).toBe(0);
        removeDataDir(server.dataDir);
      });

      test("202 challenge, the mailed code answers it once with the mode's token response; wrong codes are 401 invalid_mfa_code; the password grant answers mfa_required", async () => {
        const email = `code-${mode}@example.test`;
        const client = new Client(server.url, mode, { origin: ORIGIN });
        expect((await client.register(`code-${mode}`, PASSWORD, email)).status).toBe(201);
        client.reset();

        const challenge = await client.login(email, PASSWORD);
        expect(challenge.status).toBe(202);
        expect(challenge.body).toEqual({ challenge_id: expect.any(String), methods: ["email_code"], expires_in: 600 });
        expectNoTokens(challenge);
        const code = codeIn(await smtp.catcher.waitForMail(loginCodeFor(email)));

        const wrong = await client.request("POST", `${AUTH}/login/verify`, { json: { challenge_id: challenge.body.challenge_id, code: code === "000000" ? "111111" : "000000" } });
        expect(wrong.status).toBe(401);
        expect(wrong.body).toEqual({ error: "invalid_mfa_code", message: "The code is wrong or was already used." });
        const verified = await client.request("POST", `${AUTH}/login/verify`, { json: { challenge_id: challenge.body.challenge_id, code } });
        expect(verified.status).toBe(200);
        expect(verified.body.user.email).toBe(email);
        if (mode === "cookie") expect(verified.body.message).toBe("Signed in.");
        else expect(typeof verified.body.access_token).toBe("string");
        expect((await client.me()).status).toBe(200);

        const again = await client.request("POST", `${AUTH}/login/verify`, { json: { challenge_id: challenge.body.challenge_id, code } });
        expect(again.status).toBe(401);
        expect(again.body.error).toBe("challenge_expired");

        const grant = await send(server.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: email, password: PASSWORD } });
        expect(grant.status).toBe(403);
        expect(grant.body).toEqual({
          error: "mfa_required",
          error_description: expect.stringContaining("use POST /api/v1/auth/login"),
          message: expect.any(String),
        });
        expect(grant.body.access_token).toBeUndefined();
      });

      test("a challenge dies after 5 wrong codes: then even the right code is challenge_expired", async () => {
        const email = `dies-${mode}@example.test`;
        const client = new Client(server.url, mode, { origin: ORIGIN });
        expect((await client.register(`dies-${mode}`, PASSWORD, email)).status).toBe(201);
        const challenge = await client.login(email, PASSWORD);
        expect(challenge.status).toBe(202);
        const code = codeIn(await smtp.catcher.waitForMail(loginCodeFor(email)));
        const wrongCode = code === "000000" ? "111111" : "000000";
        // From five addresses, so that the per-(account, address) delay is not what stops the sixth.
        for (let attempt = 1; attempt <= 5; attempt++) {
          const wrong = await client.request("POST", `${AUTH}/login/verify`, {
            json: { challenge_id: challenge.body.challenge_id, code: wrongCode },
            headers: { "x-forwarded-for": `198.51.100.${attempt}` },
          });
          expect(wrong.status).toBe(401);
          expect(wrong.body.error).toBe("invalid_mfa_code");
        }
        const right = await client.request("POST", `${AUTH}/login/verify`, { json: { challenge_id: challenge.body.challenge_id, code }, headers: { "x-forwarded-for": "198.51.100.9" } });
        expect(right.status).toBe(401);
        expect(right.body).toEqual({
          error: "challenge_expired",
          message: "This sign-in has expired, was already completed or had too many wrong codes: sign in again.",
        });
      });
    });
  }

  test("a challenge expires (EMAIL_CODE_TTL) and the code is mailed at most once a minute per address (429 after the right password)", async () => {
    const server = await startServer({ ...smtpEnv(smtp.catcher, smtp.certificate), ALLOW_REGISTRATION: "true", LOGIN_EMAIL_CODE: "true", EMAIL_CODE_TTL: "1s", RATE_LIMIT_IP_BURST: "1000" });
    try {
      const email = "expiry@example.test";
      const client = new Client(server.url, "bearer");
      expect((await client.register("expiry", PASSWORD, email)).status).toBe(201);
      const challenge = await client.login(email, PASSWORD);
      expect(challenge.body.expires_in).toBe(1);
      const code = codeIn(await smtp.catcher.waitForMail(loginCodeFor(email)));
      await Bun.sleep(1100); // EMAIL_CODE_TTL=1s: the lifetime itself is under test
      const late = await client.request("POST", `${AUTH}/login/verify`, { json: { challenge_id: challenge.body.challenge_id, code } });
      expect(late.status).toBe(401);
      expect(late.body.error).toBe("challenge_expired");
      const second = await client.login(email, PASSWORD);
      expect(second.status).toBe(429);
      expect(second.body.error).toBe("rate_limited");
      expect(Number(second.headers.get("retry-after"))).toBeGreaterThan(0);
      expect((await client.login(email, "not the password")).status).toBe(401);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });
});

describe("TOTP and recovery codes in every delivery mode", () => {
  for (const mode of MODES) {
    test(`${mode}: enrol, sign in with a code (±1 step, no replay) or a recovery code (each once), /token refuses, remove`, async () => {
      const server = await startServer({ TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true", PUBLIC_URL: ORIGIN, RATE_LIMIT_IP_BURST: "1000", APP_NAME: "Acme" });
      try {
        const client = new Client(server.url, mode, { origin: ORIGIN });
        expect((await client.register(`totp-${mode}`, PASSWORD)).status).toBe(201);
        const me = await client.me();
        expect(me.body.second_factors).toEqual({ totp: false, recovery_codes_left: 0 });

        const started = await client.request("POST", `${AUTH}/mfa/totp`);
        expect(started.status).toBe(200);
        const secret: string = started.body.secret;
        expect(started.body.otpauth_uri).toBe(`otpauth://totp/Acme:totp-${mode}?issuer=Acme&algorithm=SHA1&secret=${secret}&period=30&digits=6`);
        expect(started.body.qr_svg).toStartWith("<svg");
        await awayFromStepEdge();
        const badConfirm = await client.request("POST", `${AUTH}/mfa/totp/confirm`, { json: { code: totp(secret, 5) } });
        expect(badConfirm.status).toBe(400);
        expect(badConfirm.body.error).toBe("invalid_code");
        // The previous step's code still confirms (drift).
        const confirmed = await client.request("POST", `${AUTH}/mfa/totp/confirm`, { json: { code: totp(secret, -1) } });
        expect(confirmed.status).toBe(200);
        const recovery: string[] = confirmed.body.recovery_codes;
        expect(recovery).toHaveLength(10);
        expect(new Set(recovery).size).toBe(10);
        // Letters and digits no one confuses: no 0/o, 1/l/i, u/v.
        for (const code of recovery) expect(code).toMatch(/^[2-9a-hjkmnp-tw-z]{5}-[2-9a-hjkmnp-tw-z]{5}$/);
        expect((await client.me()).body.second_factors).toEqual({ totp: true, recovery_codes_left: 10 });
        expect((await client.logout()).status).toBe(200);

        const signIn = async () => {
          const reply = await client.login(`totp-${mode}`, PASSWORD);
          expect(reply.status).toBe(202);
          expect(reply.body.methods).toEqual(["totp", "recovery_code"]);
          expectNoTokens(reply);
          return reply.body.challenge_id as string;
        };
        const verify = (challenge_id: string, answer: Record<string, string>) => client.request("POST", `${AUTH}/login/verify`, { json: { challenge_id, ...answer } });

        await awayFromStepEdge();
        const now = totp(secret);
        expect((await verify(await signIn(), { code: now })).status).toBe(200);
        // The same code again (same step): refused, and the challenge survives it.
        const replayChallenge = await signIn();
        const replay = await verify(replayChallenge, { code: now });
        expect(replay.status).toBe(401);
        expect(replay.body.error).toBe("invalid_mfa_code");
        // The next step's code is accepted (drift).
        expect((await verify(replayChallenge, { code: totp(secret, 1) })).status).toBe(200);

        const withRecovery = await verify(await signIn(), { recovery_code: recovery[0]!.toUpperCase() });
        expect(withRecovery.status).toBe(200);
        const reused = await verify(await signIn(), { recovery_code: recovery[0]! });
        expect(reused.status).toBe(401);
        expect(reused.body.error).toBe("invalid_mfa_code");
        expect((await client.me()).body.second_factors).toEqual({ totp: true, recovery_codes_left: 9 });

        const grant = await send(server.url, "POST", `${AUTH}/token`, { json: { grant_type: "password", username: `totp-${mode}`, password: PASSWORD } });
        expect(grant.status).toBe(403);
        expect(grant.body.error).toBe("mfa_required");

        const replaced = await client.request("POST", `${AUTH}/mfa/recovery-codes`);
        expect(replaced.status).toBe(200);
        expect(replaced.body.recovery_codes).toHaveLength(10);
        expect((await verify(await signIn(), { recovery_code: recovery[1]! })).status).toBe(401);

        const wrongRemoval = await client.request("DELETE", `${AUTH}/mfa/totp`, { json: { password: "not the password" } });
        expect(wrongRemoval.status).toBe(403);
        expect(wrongRemoval.body.error).toBe("invalid_password_or_code");
        const removed = await client.request("DELETE", `${AUTH}/mfa/totp`, { json: { password: PASSWORD } });
        expect(removed.status).toBe(200);
        expect((await client.login(`totp-${mode}`, PASSWORD)).status).toBe(200);
      } finally {
        expect(await server.stop()).toBe(0);
        removeDataDir(server.dataDir);
      }
    });
  }
});

describe("admin reset and MFA_REQUIRED_ROLES", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ ALLOW_REGISTRATION: "true", MFA_REQUIRED_ROLES: "admin", RATE_LIMIT_IP_BURST: "1000" });
    expect((await runCli(["user", "add", "boss", "--admin"], { DATA_DIR: server.dataDir }, PASSWORD)).code).toBe(0);
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("an admin without TOTP enrols before the first session; then an admin resets a user's second factors (API), and the CLI does too", async () => {
    const admin = new Client(server.url, "bearer");
    const challenge = await admin.login("boss", PASSWORD);
    expect(challenge.status).toBe(202);
    expect(challenge.body.methods).toEqual(["totp_enrollment"]);
    expectNoTokens(challenge);
    const enrolment = await send(server.url, "POST", `${AUTH}/login/enroll`, { json: { challenge_id: challenge.body.challenge_id } });
    expect(enrolment.status).toBe(200);
    await awayFromStepEdge();
    const verified = await admin.request("POST", `${AUTH}/login/verify`, { json: { challenge_id: challenge.body.challenge_id, code: totp(enrolment.body.secret) } });
    expect(verified.status).toBe(200);
    expect(verified.body.recovery_codes).toHaveLength(10);
    expect(typeof verified.body.access_token).toBe("string");

    // A user enrols, loses the phone; the admin resets.
    const user = new Client(server.url, "bearer");
    const registered = await user.register("phoneless", PASSWORD);
    const started = await user.request("POST", `${AUTH}/mfa/totp`);
    await awayFromStepEdge();
    expect((await user.request("POST", `${AUTH}/mfa/totp/confirm`, { json: { code: totp(started.body.secret) } })).status).toBe(200);
    expect((await user.login("phoneless", PASSWORD)).status).toBe(202);
    const reset = await admin.request("DELETE", `/api/v1/admin/users/${registered.body.user.id}/mfa`);
    expect(reset.status).toBe(204);
    expect((await user.login("phoneless", PASSWORD)).status).toBe(200);

    const db = await openTestDatabase(server.dataDir);
    try {
      const row = (await db.get<{ user_id: string; detail: string }>("SELECT user_id, detail FROM audit_events WHERE event = 'mfa_reset'"))!;
      expect(row.user_id).toBe(registered.body.user.id);
      expect(JSON.parse(row.detail)).toMatchObject({ actor: "boss", username: "phoneless", removed: true });
    } finally {
      await db.close();
    }

    // The admin's own factors, reset from the CLI: the next sign-in asks to enrol again.
    const cli = await runCli(["user", "mfa-reset", "boss"], { DATA_DIR: server.dataDir });
    expect(cli).toEqual({ code: 0, stdout: "second factors of boss removed: the next sign-in needs the password only\n", stderr: "" });
    expect((await admin.login("boss", PASSWORD)).body.methods).toEqual(["totp_enrollment"]);
  });
});
