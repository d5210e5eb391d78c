import { expect, setSystemTime, test } from "bun:test";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { ApiError } from "../../src/errors";
import { createSecretCheckLimiter, throttleAccount } from "../../src/limits";
import { createSecondFactorLimiter, failureDelayMs, SECOND_FACTOR_FAILURES, secondFactorVerdict } from "../../src/limits/second-factor";

/**
 * The second step's account-wide count (issue 20): the decision as a pure function (count → allowed, or the delay),
 * then the store around it, and the password limiter's rule that a trusted client's success leaves the
 * account-wide run that strangers built.
 */

const MAX = 15 * 60_000;
const NOW = 1_800_000_000_000;

test("the bound is NIST SP 800-63B's 100, and the delay starts there: 1 s, doubling, capped", () => {
  expect(SECOND_FACTOR_FAILURES).toBe(100);
  expect(failureDelayMs(99, 100, MAX)).toBe(0);
  expect(failureDelayMs(100, 100, MAX)).toBe(1000);
  expect(failureDelayMs(101, 100, MAX)).toBe(2000);
  expect(failureDelayMs(105, 100, MAX)).toBe(32_000);
  expect(failureDelayMs(120, 100, MAX)).toBe(MAX);
  expect(failureDelayMs(1_000_000, 100, MAX)).toBe(MAX);
});

test("an answer is allowed and counted as wrong until it proves right; the 100th in a row starts the delay", () => {
  expect(secondFactorVerdict(undefined, NOW, MAX)).toEqual({ allowed: true, failures: 1, blockedUntil: null });
  expect(secondFactorVerdict({ failures: 98, blockedUntil: null }, NOW, MAX)).toEqual({ allowed: true, failures: 99, blockedUntil: null });
  expect(secondFactorVerdict({ failures: 99, blockedUntil: null }, NOW, MAX)).toEqual({ allowed: true, failures: 100, blockedUntil: NOW + 1000 });
  // A delay that is over lets one more answer through, which doubles the next one.
  expect(secondFactorVerdict({ failures: 100, blockedUntil: NOW - 1 }, NOW, MAX)).toEqual({ allowed: true, failures: 101, blockedUntil: NOW + 2000 });
  expect(secondFactorVerdict({ failures: 100, blockedUntil: NOW }, NOW, MAX)).toEqual({ allowed: true, failures: 101, blockedUntil: NOW + 2000 });
});

test("while delayed every answer is refused with the whole seconds left, and is not counted", () => {
  expect(secondFactorVerdict({ failures: 100, blockedUntil: NOW + 1 }, NOW, MAX)).toEqual({ allowed: false, retryAfter: 1 });
  expect(secondFactorVerdict({ failures: 130, blockedUntil: NOW + MAX }, NOW, MAX)).toEqual({ allowed: false, retryAfter: 900 });
  // The bound can be lower (a threshold of 1 delays from the first wrong answer).
  expect(secondFactorVerdict(undefined, NOW, MAX, 1)).toEqual({ allowed: true, failures: 1, blockedUntil: NOW + 1000 });
});

test("a count that cannot be read refuses, for the longest delay (fail closed)", () => {
  for (const count of [
    { failures: Number.NaN, blockedUntil: null },
    { failures: -1, blockedUntil: null },
    { failures: Number.POSITIVE_INFINITY, blockedUntil: null },
    { failures: 3, blockedUntil: Number.NaN },
  ])
    expect(secondFactorVerdict(count, NOW, MAX)).toEqual({ allowed: false, retryAfter: 900 });
});

function setUp() {
  const db = openDatabase(":memory:");
  migrate(db);
  const config = loadConfig({ DATA_DIR: "/nonexistent" }).rateLimit;
  db.$client.run("INSERT INTO users (id, username, password_hash) VALUES ('u1', 'owner', 'x'), ('u2', 'other', 'x')");
  return { db, secondFactors: createSecondFactorLimiter(db, config), limiter: createSecretCheckLimiter(db, config) };
}

const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error as ApiError);

test("the store counts per account, refuses 429 rate_limited with Retry-After while delayed, tells the owner once, and a completed sign-in ends the run", async () => {
  const { db, secondFactors } = setUp();
  for (let answer = 1; answer <= 99; answer++) await secondFactors.begin("u1");
  expect(await secondFactors.claimNotice("u1")).toBe(false);
  await secondFactors.begin("u1");
  expect(await secondFactors.claimNotice("u1")).toBe(true);
  expect(await secondFactors.claimNotice("u1")).toBe(false);
  const row = () => db.$client.query("SELECT failures, blocked_until FROM second_factor_failures WHERE user_id = 'u1'").get() as { failures: number; blocked_until: number };
  expect(row().blocked_until).toBeGreaterThan(Date.now() - 1000);
  // The delay as a longer run would have made it (time is not under test here): refused, not counted.
  db.$client.run("UPDATE second_factor_failures SET blocked_until = ? WHERE user_id = 'u1'", [Date.now() + 1_800_000]);
  const refused = await refusal(secondFactors.begin("u1"));
  expect(refused).toBeInstanceOf(ApiError);
  expect(refused!.status).toBe(429);
  expect(refused!.toBody().error).toBe("rate_limited");
  expect(refused!.headers).toEqual({ "Retry-After": "1800" });
  expect(row().failures).toBe(100);
  // Another account is untouched.
  expect(await refusal(secondFactors.begin("u2"))).toBeUndefined();

  await secondFactors.end("u1");
  expect(db.$client.query("SELECT count(*) AS n FROM second_factor_failures WHERE user_id = 'u1'").get()).toEqual({ n: 0 });
  expect(await refusal(secondFactors.begin("u1"))).toBeUndefined();
  // A new run that reaches the bound tells the owner again.
  db.$client.run("UPDATE second_factor_failures SET failures = 100 WHERE user_id = 'u1'");
  expect(await secondFactors.claimNotice("u1")).toBe(true);
});

test("the store caps the delay at RATE_LIMIT_MAX_DELAY, in seconds, and refuses an unreadable count for that long", async () => {
  const { db } = setUp();
  const config = loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT_MAX_DELAY: "7m" }).rateLimit!;
  expect(config.maxDelaySeconds).toBe(420);
  const secondFactors = createSecondFactorLimiter(db, config);
  setSystemTime(new Date(NOW));
  try {
    // The 130th wrong answer in a row would wait 2^30 s uncapped.
    db.$client.run("INSERT INTO second_factor_failures (user_id, failures, blocked_until, updated_at) VALUES ('u1', 129, NULL, ?)", [NOW]);
    await secondFactors.begin("u1");
    expect(db.$client.query("SELECT failures, blocked_until FROM second_factor_failures WHERE user_id = 'u1'").get()).toEqual({ failures: 130, blocked_until: NOW + 420_000 });
    db.$client.run("UPDATE second_factor_failures SET failures = -1, blocked_until = NULL WHERE user_id = 'u1'");
    expect((await refusal(secondFactors.begin("u1")))!.headers).toEqual({ "Retry-After": "420" });
  } finally {
    setSystemTime();
  }
});

test("RATE_LIMIT=off switches the count off with every other limit", async () => {
  const db = openDatabase(":memory:");
  migrate(db);
  const secondFactors = createSecondFactorLimiter(db, undefined);
  for (let answer = 1; answer <= 150; answer++) await secondFactors.begin("u1");
  expect(await secondFactors.claimNotice("u1")).toBe(false);
});

test("a trusted client's success ends its own address's run but leaves the account-wide run strangers built; an untrusted success ends both", async () => {
  const { db, limiter } = setUp();
  const account = throttleAccount("owner", { id: "u1" });
  const runs = () => (db.$client.query("SELECT failures FROM login_throttles ORDER BY failures").all() as { failures: number }[]).map((row) => row.failures);
  for (const address of ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) await limiter.beginAttempt(account, address);
  await limiter.beginAttempt(account, "198.51.100.7", true);
  // Three strangers' addresses one each, the owner's address one, the account-wide run three (the owner's not in it).
  expect(runs()).toEqual([1, 1, 1, 1, 3]);
  await limiter.recordSuccess(account, "198.51.100.7", true);
  expect(runs()).toEqual([1, 1, 1, 3]);
  await limiter.recordSuccess(account, "203.0.113.1");
  expect(runs()).toEqual([1, 1]);
});
