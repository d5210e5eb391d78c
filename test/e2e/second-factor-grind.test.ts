import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateHOTP } from "@oslojs/otp";
import { AUTH, Client, send, waitFor, type Reply } from "../support/client";
import { openTestDatabase } from "../support/database";
import { removeDataDir, runCli, startServer, type RunningServer } from "../support/server";
import { codeIn, mailCatcherForFile, smtpEnv, type ReceivedMail } from "../support/smtp";

/**
 * Second factors cannot be ground down (issue 20). Whoever answers a second step already has the password, so
 * the wrong answers are counted per account, across challenges and addresses, with no exemption for recent
 * clients: from the 100th in a row (NIST SP 800-63B §5.2.2) the second step waits, doubling, and the owner is
 * mailed once. The owner's sign-in from a trusted device leaves strangers' account-wide run as it is. With
 * LOGIN_EMAIL_CODE, a sign-in within the minute of a mail gets a challenge for the code already mailed.
 */

const PASSWORD = "a long passphrase";
const smtp = mailCatcherForFile();

function totp(secret: string, offset = 0): string {
  return generateHOTP(decodeBase32IgnorePadding(secret), BigInt(Math.floor(Date.now() / 30_000) + offset), 6);
}

/** A 6-digit code that is none of the codes the server accepts now (this step and its neighbours). */
function wrongTotp(secret: string): string {
  const accepted = new Set([totp(secret, -1), totp(secret), totp(secret, 1)]);
  for (let n = 0; ; n++) {
    const code = String(n).padStart(6, "0");
    if (!accepted.has(code)) return code;
  }
}

async function awayFromStepEdge(): Promise<void> {
  while (30_000 - (Date.now() % 30_000) < 3000) await Bun.sleep(100);
}

/** A fresh client address for every call, as a botnet would have (TRUST_PROXY=true reads X-Forwarded-For). */
let addresses = 0;
const freshAddress = () => `10.20.${Math.floor(++addresses / 250)}.${(addresses % 250) + 1}`;
const from = (address: string) => ({ "x-forwarded-for": address });

/** The account's count of wrong second-step answers in a row (undefined: no run). */
async function runOf(dataDir: string, username: string): Promise<number | undefined> {
  const db = await openTestDatabase(dataDir);
  try {
    const row = await db.get<{ failures: number }>("SELECT f.failures FROM second_factor_failures f JOIN users u ON u.id = f.user_id WHERE u.username = ?", username);
    return row?.failures;
  } finally {
    await db.close();
  }
}

const isOwnerNotice = (address: string) => (mail: ReceivedMail) => mail.to === address && mail.subject.includes("someone has your password");

function expectThrottled(reply: Reply): void {
  expect(reply.status).toBe(429);
  expect(reply.body).toEqual({ error: "rate_limited", message: "Too many attempts. Try again later." });
  expect(Number(reply.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
}

describe("TOTP and recovery codes from many addresses", () => {
  let server: RunningServer;
  const signIn = (username: string, address: string) =>
    send(server.url, "POST", `${AUTH}/login`, { json: { username, password: PASSWORD }, headers: from(address) });
  const answer = (challenge_id: string, body: Record<string, string>, address: string) =>
    send(server.url, "POST", `${AUTH}/login/verify`, { json: { challenge_id, ...body }, headers: from(address) });

  /** A registered account with a verified address and TOTP on: its secret and recovery codes. */
  async function enrolled(username: string): Promise<{ secret: string; recovery: string[]; email: string }> {
    const email = `${username}@example.test`;
    const client = new Client(server.url, "bearer");
    expect((await client.register(username, PASSWORD, email)).status).toBe(201);
    const code = codeIn(await smtp.catcher.waitForMail((mail) => mail.to === email && mail.subject.includes("confirm your email")));
    expect((await client.request("POST", `${AUTH}/verify-email`, { json: { email, code } })).status).toBe(200);
    const started = await client.request("POST", `${AUTH}/mfa/totp`);
    await awayFromStepEdge();
    const confirmed = await client.request("POST", `${AUTH}/mfa/totp/confirm`, { json: { code: totp(started.body.secret, -1) } });
    expect(confirmed.status).toBe(200);
    return { secret: started.body.secret, recovery: confirmed.body.recovery_codes, email };
  }

  beforeAll(async () => {
    // The per-address limits as shipped: one address alone cannot get far, many addresses together can.
    server = await startServer({ ...smtpEnv(smtp.catcher, smtp.certificate), ALLOW_REGISTRATION: "true", TRUST_PROXY: "true" });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("100 wrong codes from 20 addresses reach the bound: the owner is mailed once, and the second step then waits, doubling, for the owner too", async () => {
    const { secret, email } = await enrolled("victim");
    // The owner signs in from their usual address: a recent client, which the count does not exempt.
    const usual = "198.51.100.10";
    await awayFromStepEdge();
    const own = await signIn("victim", usual);
    expect(own.status).toBe(202);
    expect((await answer(own.body.challenge_id, { code: totp(secret) }, usual)).status).toBe(200);

    // 20 addresses, each: the password (they have it), then 5 wrong codes, which kill its challenge.
    for (let address = 1; address <= 20; address++) {
      const ip = `203.0.113.${address}`;
      const challenge = await signIn("victim", ip);
      expect(challenge.status).toBe(202);
      for (let attempt = 1; attempt <= 5; attempt++) {
        const wrong = await answer(challenge.body.challenge_id, { code: wrongTotp(secret) }, ip);
        expect(wrong.status).toBe(401);
        expect(wrong.body.error).toBe("invalid_mfa_code");
      }
    }
    const notice = await smtp.catcher.waitForMail(isOwnerNotice(email));
    expect(notice.subject).toBe("Latchkey: someone has your password");
    expect(notice.text).toContain("gave 100 wrong second-step codes in a row");
    expect(notice.text).toContain("change it now");

    const count = () => runOf(server.dataDir, "victim");
    expect(await count()).toBe(100);
    // The right password earned the 20 addresses nothing: the one address the account counts as recent is the
    // owner's, where a sign-in completed.
    const db = await openTestDatabase(server.dataDir);
    try {
      expect(await db.all("SELECT key FROM trusted_sign_ins")).toHaveLength(1);
    } finally {
      await db.close();
    }
    // Each answer the delay lets through doubles it (1 s, 2 s, 4 s, 8 s); refused answers are not counted.
    const challenge = (await signIn("victim", freshAddress())).body.challenge_id as string;
    for (const reached of [101, 102, 103, 104]) {
      const counted = await waitFor(
        () => answer(challenge, { code: wrongTotp(secret) }, freshAddress()),
        (reply) => reply.status !== 429,
        15_000,
      );
      expect(counted.status).toBe(401);
      expect(await count()).toBe(reached);
    }
    // Now 16 s of delay (room for a busy machine): a stranger's answer waits, and so does the owner's right code
    // from the usual address (a code of this step, accepted for ±1 step, so no step edge can make it wrong).
    expectThrottled(await answer(challenge, { code: wrongTotp(secret) }, freshAddress()));
    const owner = await signIn("victim", usual);
    expect(owner.status).toBe(202);
    expectThrottled(await answer(owner.body.challenge_id, { code: totp(secret) }, usual));
    expect(await count()).toBe(104);
    // Still one notice for the run.
    expect(smtp.catcher.mails.filter(isOwnerNotice(email))).toHaveLength(1);
  }, 90_000);

  test("a challenge dies after 5 wrong TOTP codes, and after 5 wrong recovery codes: then even the right answer is challenge_expired", async () => {
    const { secret, recovery } = await enrolled("dies");
    const expired = { error: "challenge_expired", message: "This sign-in has expired, was already completed or had too many wrong codes: sign in again." };
    for (const [wrong, right] of [
      [() => ({ code: wrongTotp(secret) }), () => ({ code: totp(secret) })],
      [() => ({ recovery_code: "aaaaa-aaaaa" }), () => ({ recovery_code: recovery[0]! })],
    ] as const) {
      const challenge = (await signIn("dies", freshAddress())).body.challenge_id as string;
      for (let attempt = 1; attempt <= 5; attempt++) {
        const reply = await answer(challenge, wrong(), freshAddress());
        expect(reply.status).toBe(401);
        expect(reply.body.error).toBe("invalid_mfa_code");
      }
      await awayFromStepEdge();
      const late = await answer(challenge, right(), freshAddress());
      expect(late.status).toBe(401);
      expect(late.body).toEqual(expired);
    }
    // Wrong recovery codes count toward the account's run like wrong TOTP codes; answers to a dead challenge do not.
    expect(await runOf(server.dataDir, "dies")).toBe(10);
    // The dead challenge spent nothing: the recovery code still signs in, and the completed sign-in ends the run.
    const fresh = (await signIn("dies", freshAddress())).body.challenge_id as string;
    expect((await answer(fresh, { recovery_code: recovery[0]! }, freshAddress())).status).toBe(200);
    expect(await runOf(server.dataDir, "dies")).toBeUndefined();
  });
});

describe("the owner's sign-in from a trusted device", () => {
  let server: RunningServer;
  const login = (password: string, address: string, cookie?: string) =>
    send(server.url, "POST", `${AUTH}/login`, { json: { username: "owner", password }, headers: { ...from(address), ...(cookie ? { cookie } : {}) } });

  beforeAll(async () => {
    // Only the account-wide run is under test: a large per-address bucket, and a backstop of 3.
    server = await startServer({ TOKEN_DELIVERY: "cookie", TRUST_PROXY: "true", RATE_LIMIT_IP: "1000/1m", RATE_LIMIT_IP_BURST: "1000", RATE_LIMIT_ACCOUNT_FAILURES: "3" });
    expect((await runCli(["user", "add", "owner"], { DATA_DIR: server.dataDir }, PASSWORD)).code).toBe(0);
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("leaves the account-wide run that strangers' addresses built: a fresh address right after it still waits", async () => {
    const browser = await login(PASSWORD, "198.51.100.20");
    expect(browser.status).toBe(200);
    const device = `latchkey_device=${browser.cookies.latchkey_device!.value}`;

    // Strangers reach the backstop (3), then push it to 7 as each delay ends: 16 s of delay to observe (room for a
    // busy machine).
    for (let address = 1; address <= 3; address++) expect((await login("wrong password", `203.0.113.${address}`)).status).toBe(401);
    for (let more = 0; more < 4; more++)
      expect((await waitFor(() => login("wrong password", freshAddress()), (reply) => reply.status !== 429, 15_000)).status).toBe(401);
    expectThrottled(await login(PASSWORD, freshAddress()));

    // The owner's browser is exempt, and signs in; the strangers' run outlives it.
    expect((await login(PASSWORD, "192.0.2.50", device)).status).toBe(200);
    expectThrottled(await login(PASSWORD, freshAddress()));
  }, 60_000);
});

describe("LOGIN_EMAIL_CODE: a sign-in within the minute of a mail", () => {
  let server: RunningServer;
  const isLoginCode = (address: string) => (mail: ReceivedMail) => mail.to === address && mail.subject.includes("your sign-in code");

  beforeAll(async () => {
    server = await startServer({ ...smtpEnv(smtp.catcher, smtp.certificate), ALLOW_REGISTRATION: "true", LOGIN_EMAIL_CODE: "true", TRUST_PROXY: "true" });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("gets a new challenge for the code already mailed (no 429, no second mail); the code works once, for one of them", async () => {
    const email = "kept-out@example.test";
    expect((await new Client(server.url, "bearer").register("kept-out", PASSWORD, email)).status).toBe(201);
    const login = (address: string) => send(server.url, "POST", `${AUTH}/login`, { json: { username: "kept-out", password: PASSWORD }, headers: from(address) });

    // Someone who has the password signs in: the code goes to the owner's mailbox.
    const intruder = await login("203.0.113.66");
    expect(intruder.status).toBe(202);
    const code = codeIn(await smtp.catcher.waitForMail(isLoginCode(email)));

    // The owner signs in within the minute: a challenge of its own, for the code in the mail.
    const owner = await login("198.51.100.10");
    expect(owner.status).toBe(202);
    expect(owner.body.methods).toEqual(["email_code"]);
    expect(owner.body.challenge_id).not.toBe(intruder.body.challenge_id);
    expect(owner.body.expires_in).toBeGreaterThan(0);
    expect(owner.body.expires_in).toBeLessThanOrEqual(600);
    const db = await openTestDatabase(server.dataDir);
    try {
      // Nothing more to send: the first mail went out (its outbox row is gone) and no other was queued.
      expect(await db.all("SELECT id FROM mail_outbox WHERE kind = 'login_code'")).toEqual([]);
    } finally {
      await db.close();
    }
    expect(smtp.catcher.mails.filter(isLoginCode(email))).toHaveLength(1);

    // A wrong emailed code counts toward the account's run like any other second-step answer.
    const wrong = await send(server.url, "POST", `${AUTH}/login/verify`, {
      json: { challenge_id: intruder.body.challenge_id, code: code === "000000" ? "111111" : "000000" },
      headers: from("203.0.113.66"),
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe("invalid_mfa_code");
    expect(await runOf(server.dataDir, "kept-out")).toBe(1);

    const verified = await send(server.url, "POST", `${AUTH}/login/verify`, { json: { challenge_id: owner.body.challenge_id, code }, headers: from("198.51.100.10") });
    expect(verified.status).toBe(200);
    expect(verified.body.user.email).toBe(email);
    // The code worked once: the intruder's challenge, which shared it, is gone.
    const reuse = await send(server.url, "POST", `${AUTH}/login/verify`, { json: { challenge_id: intruder.body.challenge_id, code }, headers: from("203.0.113.66") });
    expect(reuse.status).toBe(401);
    expect(reuse.body.error).toBe("challenge_expired");
    expect(await runOf(server.dataDir, "kept-out")).toBeUndefined();
  });
});
