/** What an account can sign in with, as far as the rule "not the last way in" counts it. */
export interface WaysIn {
  hasPassword: boolean;
  passkeys: number;
}

/**
 * Whether removing `what` leaves the account no way in: a password goes only while a passkey remains, the last
 * passkey only while a password remains (issue 25; Pocket ID #18: an account locked out by its owner's own
 * click). Recovery codes and mailed links are ways back to a passkey, not ways in of their own, so they do not
 * count. Anything it cannot read as a count refuses (fail closed).
 */
export function leavesNoWayIn(ways: WaysIn, what: "password" | "passkey"): boolean {
  if (!Number.isInteger(ways.passkeys) || ways.passkeys < 0) return true;
  if (what === "password") return ways.passkeys === 0;
  return ways.passkeys <= 1 && !ways.hasPassword;
}
