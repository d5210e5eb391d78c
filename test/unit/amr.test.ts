/** How a sign-in was made (RFC 8176 amr) and what requiring a passkey asks of it: the pure pieces. */
import { expect, test } from "bun:test";
import { madeWithPasskey, passkeyRequested } from "../../src/lib/amr";
import { stepUpAmr } from "../../src/modules/auth/service";

test("a session made with a passkey is one whose amr has hwk; none recorded is not one", () => {
  expect(madeWithPasskey(["hwk"])).toBe(true);
  expect(madeWithPasskey(["pwd", "hwk", "mfa"])).toBe(true);
  expect(madeWithPasskey(["pwd", "otp", "mfa"])).toBe(false);
  expect(madeWithPasskey([])).toBe(false);
  expect(madeWithPasskey(undefined)).toBe(false);
});

test("an authorization request needs a passkey when its client requires one, or acr_values lists phr (exactly)", () => {
  expect(passkeyRequested(true, undefined)).toBe(true);
  expect(passkeyRequested(true, "silver")).toBe(true);
  expect(passkeyRequested(false, "phr")).toBe(true);
  expect(passkeyRequested(false, "silver phr")).toBe(true);
  // Voluntary values this server does not know are ignored; none is a plain sign-in.
  expect(passkeyRequested(false, undefined)).toBe(false);
  expect(passkeyRequested(false, "")).toBe(false);
  expect(passkeyRequested(false, "silver")).toBe(false);
  expect(passkeyRequested(false, "PHR")).toBe(false);
  expect(passkeyRequested(false, "phrx")).toBe(false);
  expect(passkeyRequested(false, "urn:phr")).toBe(false);
});

/** The passkey step-up adds the passkey to how the session authenticated (RFC 8176); it forgets nothing. */
test("the step-up's amr: the session's, then hwk; user and mfa with user verification; mfa after a password or a code", () => {
  expect(stepUpAmr(["pwd"], true)).toEqual(["pwd", "hwk", "user", "mfa"]);
  expect(stepUpAmr(["pwd"], false)).toEqual(["pwd", "hwk", "mfa"]);
  expect(stepUpAmr(["pwd", "otp", "mfa"], true)).toEqual(["pwd", "otp", "mfa", "hwk", "user"]);
  expect(stepUpAmr(["pwd", "otp", "mfa"], false)).toEqual(["pwd", "otp", "mfa", "hwk"]);
  expect(stepUpAmr(["otp"], false)).toEqual(["otp", "hwk", "mfa"]);
  // A session from before amr was recorded: one factor, the passkey.
  expect(stepUpAmr([], false)).toEqual(["hwk"]);
  expect(stepUpAmr([], true)).toEqual(["hwk", "user", "mfa"]);
});
