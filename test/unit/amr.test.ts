/** How a sign-in was made (RFC 8176 amr) and what requiring a passkey asks of it: the pure pieces. */
import { expect, test } from "bun:test";
import { madeWithPasskey, passkeyRequested, REAUTHENTICATION_MAX_AGE_MS, recentPasskeySignIn } from "../../src/lib/amr";
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

/** What stands in for the password of an account without one (its change of address): a passkey sign-in of the last 5 minutes. */
test("a recent passkey sign-in: hwk in the amr and at most 5 minutes old; older, without hwk, unknown or far in the future is not one", () => {
  const now = 1_800_000_000_000;
  expect(REAUTHENTICATION_MAX_AGE_MS).toBe(300_000);
  expect(recentPasskeySignIn({ amr: ["hwk", "user", "mfa"], authTime: now }, now)).toBe(true);
  expect(recentPasskeySignIn({ amr: ["pwd", "hwk", "mfa"], authTime: now - 300_000 }, now)).toBe(true);
  expect(recentPasskeySignIn({ amr: ["hwk"], authTime: now - 300_001 }, now)).toBe(false);
  expect(recentPasskeySignIn({ amr: ["hwk"], authTime: now - 86_400_000 }, now)).toBe(false);
  // The other ways in of a passwordless account (a recovery code, a mailed link, a setup link), and a password.
  for (const amr of [["otp"], ["email"], ["link"], ["pwd"], ["pwd", "otp", "mfa"], []]) expect(recentPasskeySignIn({ amr, authTime: now }, now)).toBe(false);
  expect(recentPasskeySignIn(undefined, now)).toBe(false);
  expect(recentPasskeySignIn({ amr: ["hwk"], authTime: Number.NaN }, now)).toBe(false);
  // Another instance's clock a little ahead is believed; a sign-in further in the future is not.
  expect(recentPasskeySignIn({ amr: ["hwk"], authTime: now + 60_000 }, now)).toBe(true);
  expect(recentPasskeySignIn({ amr: ["hwk"], authTime: now + 60_001 }, now)).toBe(false);
});
