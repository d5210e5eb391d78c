/**
 * The TOTP window is exactly ±1 step (RFC 6238 §5.2 recommends at most one step of drift): the codes of two steps
 * before or after now are refused, at enrolment and at sign-in. The clock is mocked (setSystemTime), so the
 * steps cannot shift under the test.
 */
import { afterEach, expect, setSystemTime, test } from "bun:test";
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateTOTP } from "@oslojs/otp";
import { migrate, openDatabase } from "../../src/db/client";
import { users } from "../../src/db/schema";
import { createMfaService } from "../../src/modules/mfa/service";

const STEP_MS = 30_000;
// The middle of a step: ±1 step of it stays well inside the neighbouring steps.
const T0 = Math.floor(Date.parse("2026-06-01T12:00:00Z") / STEP_MS) * STEP_MS + STEP_MS / 2;

afterEach(() => setSystemTime());

/** The code of the step `offset` steps from T0. */
function codeAt(secret: string, offset: number): string {
  setSystemTime(new Date(T0 + offset * STEP_MS));
  const code = generateTOTP(decodeBase32IgnorePadding(secret), 30, 6);
  setSystemTime(new Date(T0));
  return code;
}

async function enrolled() {
  const db = openDatabase(":memory:");
  migrate(db);
  db.insert(users).values({ id: "u1", username: "someone", passwordHash: "unused" }).run();
  const mfa = createMfaService(db, new Uint8Array(32).fill(3), "Latchkey");
  setSystemTime(new Date(T0));
  const { secret } = await mfa.startTotp("u1", "someone");
  return { mfa, secret };
}

test("enrolment: the codes of two steps before and after now do not confirm; the next step's does", async () => {
  const { mfa, secret } = await enrolled();
  expect(await mfa.confirmTotp("u1", codeAt(secret, -2))).toBeUndefined();
  expect(await mfa.confirmTotp("u1", codeAt(secret, 2))).toBeUndefined();
  expect(await mfa.confirmTotp("u1", codeAt(secret, 1))).toHaveLength(10);
});

test("sign-in: -2 and +2 steps are refused, -1 and 0 accepted once each, in order", async () => {
  const { mfa, secret } = await enrolled();
  expect(await mfa.confirmTotp("u1", codeAt(secret, -1))).toHaveLength(10);
  expect(await mfa.verifyTotp("u1", codeAt(secret, -2))).toBe(false);
  expect(await mfa.verifyTotp("u1", codeAt(secret, 2))).toBe(false);
  expect(await mfa.verifyTotp("u1", codeAt(secret, 0))).toBe(true);
  expect(await mfa.verifyTotp("u1", codeAt(secret, 0))).toBe(false);
  expect(await mfa.verifyTotp("u1", codeAt(secret, 1))).toBe(true);
});

test("a code is read without surrounding blanks; an account with no authenticator verifies nothing and cannot confirm", async () => {
  const { mfa, secret } = await enrolled();
  expect(await mfa.confirmTotp("u1", ` ${codeAt(secret, 0)} `)).toHaveLength(10);
  expect(await mfa.verifyTotp("nobody", "123456")).toBe(false);
  await expect(mfa.confirmTotp("nobody", "123456")).rejects.toMatchObject({ code: "mfa_not_enrolled" });
});

test("recovery codes: each works once, read without case, blanks or dashes; a wrong one does nothing; removal ends them all", async () => {
  const { mfa, secret } = await enrolled();
  const codes = (await mfa.confirmTotp("u1", codeAt(secret, 0)))!;
  expect(codes[0]).toMatch(/^[2-9a-hjkmnp-tw-z]{5}-[2-9a-hjkmnp-tw-z]{5}$/);
  expect(await mfa.useRecoveryCode("u1", "aaaaa-aaaaa")).toBe(false);
  expect(await mfa.useRecoveryCode("u1", codes[0]!)).toBe(true);
  expect(await mfa.useRecoveryCode("u1", codes[0]!)).toBe(false);
  expect(await mfa.useRecoveryCode("u1", ` ${codes[1]!.toUpperCase().replace("-", " ")} `)).toBe(true);
  expect(await mfa.useRecoveryCode("someone-else", codes[2]!)).toBe(false);
  expect(await mfa.factors("u1")).toEqual({ totp: true, recovery_codes_left: 8 });
  await mfa.removeAll("u1");
  expect(await mfa.factors("u1")).toEqual({ totp: false, recovery_codes_left: 0 });
  expect(await mfa.useRecoveryCode("u1", codes[2]!)).toBe(false);
});
