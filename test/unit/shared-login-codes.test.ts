import { expect, test } from "bun:test";
import { migrate, openDatabase } from "../../src/db/client";
import { createChallengeStore } from "../../src/modules/auth/challenges";

/**
 * LOGIN_EMAIL_CODE (issue 20): a sign-in within the minute of a mail gets a challenge that takes the code already
 * mailed. The code still works once: the challenges that share it go together, even answered at the same time.
 */

function setUp() {
  const db = openDatabase(":memory:");
  migrate(db);
  db.$client.run("INSERT INTO users (id, username, password_hash) VALUES ('u1', 'owner', 'x'), ('u2', 'other', 'x')");
  return { db, challenges: createChallengeStore(db, new Uint8Array(32).fill(7), 600) };
}

test("a shared challenge takes the mailed code, ends when the code ends, and is only for the account that was mailed", async () => {
  const { challenges } = setUp();
  expect(await challenges.reuseMailedCode("u1", ["email_code"])).toBeUndefined();
  const first = await challenges.create("u1", ["email_code"]);
  const original = await challenges.live(first.id);
  const shared = (await challenges.reuseMailedCode("u1", ["email_code"]))!;
  expect(shared.id).not.toBe(first.id);
  expect(shared.expiresAt).toEqual(original.expiresAt);
  const copy = await challenges.live(shared.id);
  expect(challenges.emailCodeMatches(copy, first.code!)).toBe(true);
  expect(challenges.emailCodeMatches(copy, first.code === "000000" ? "111111" : "000000")).toBe(false);
  // A share of a share still names the challenge whose mail carried the code.
  const again = await challenges.live((await challenges.reuseMailedCode("u1", ["email_code"]))!.id);
  expect(again.codeChallengeId).toBe(first.id);
  expect(challenges.emailCodeMatches(again, first.code!)).toBe(true);
  expect(await challenges.reuseMailedCode("u2", ["email_code"])).toBeUndefined();
});

test("the code works once: two challenges that share it, answered at once, sign in one; a TOTP answer spends only its own", async () => {
  const { challenges } = setUp();
  const first = await challenges.create("u1", ["totp", "recovery_code", "email_code"]);
  const a = await challenges.live(first.id);
  const b = await challenges.live((await challenges.reuseMailedCode("u1", ["totp", "recovery_code", "email_code"]))!.id);
  const c = await challenges.live((await challenges.reuseMailedCode("u1", ["totp", "recovery_code", "email_code"]))!.id);
  // Answered by TOTP: the mailed code stays good for the others.
  expect(await challenges.spend(c)).toBe(true);
  expect((await challenges.live(a.id)).id).toBe(a.id);
  const won = await Promise.all([challenges.spend(a, true), challenges.spend(b, true)]);
  expect(won.filter(Boolean)).toHaveLength(1);
  for (const id of [a.id, b.id]) await expect(challenges.live(id)).rejects.toMatchObject({ code: "challenge_expired" });
});
