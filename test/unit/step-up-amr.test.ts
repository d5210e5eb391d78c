import { expect, test } from "bun:test";
import { stepUpAmr } from "../../src/modules/auth/service";

/** The passkey step-up adds the passkey to how the session authenticated (RFC 8176); it forgets nothing. */
test("the step-up's amr: the session's, then hwk; user and mfa with user verification; mfa after a password or a code", () => {
  expect(stepUpAmr(["pwd"], true)).toEqual(["pwd", "hwk", "user", "mfa"]);
  expect(stepUpAmr(["pwd"], false)).toEqual(["pwd", "hwk", "mfa"]);
  expect(stepUpAmr(["pwd", "otp", "mfa"], true)).toEqual(["pwd", "otp", "mfa", "hwk", "user"]);
  expect(stepUpAmr(["pwd", "otp", "mfa"], false)).toEqual(["pwd", "otp", "mfa", "hwk"]);
  // A session from before amr was recorded: one factor, the passkey.
  expect(stepUpAmr([], false)).toEqual(["hwk"]);
  expect(stepUpAmr([], true)).toEqual(["hwk", "user", "mfa"]);
});
