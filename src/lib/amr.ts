/**
 * A sign-in made with a passkey, by its RFC 8176 amr: `hwk` (proof of possession of a hardware-bound key), which
 * a passkey sign-in, a passkey second step and the passkey step-up record. What forward auth's
 * `require = "passkey"` and an OpenID Connect client that requires a passkey (acr `phr`) accept.
 */
export const madeWithPasskey = (amr: readonly string[] | undefined): boolean => amr !== undefined && amr.includes("hwk");

/**
 * The ACR value of a passkey sign-in: `phr`, phishing-resistant (OpenID Extended Authentication Profile ACR
 * values 1.0, §2): a relying party asks for it with `acr_values=phr`, and an ID token whose sign-in used a passkey
 * says `acr: "phr"`. (A passkey is bound to its origin, so a phishing site cannot use it.)
 */
export const PHISHING_RESISTANT_ACR = "phr";

/**
 * Whether an authorization request must be met by a passkey sign-in: its client requires one, or its `acr_values`
 * (space-separated, OpenID Connect Core §3.1.2.1) list `phr`. They are voluntary, so values not known are ignored.
 */
export const passkeyRequested = (clientRequires: boolean, acrValues: string | undefined): boolean =>
  clientRequires || (acrValues !== undefined && acrValues.split(" ").includes(PHISHING_RESISTANT_ACR));

/**
 * How recent a passkey sign-in must be to stand in for the password before a sensitive change of an account that
 * has none (its email address): 5 minutes. Reauthentication before a sensitive change: OWASP ASVS 4.0 V3.7.1,
 * NIST SP 800-63B §4.3.3.
 */
export const REAUTHENTICATION_MAX_AGE_MS = 5 * 60_000;

/**
 * How far a sign-in's time may lie ahead of this clock: another instance's clock (PostgreSQL) a little ahead.
 * Further ahead it is not believed (fail closed).
 */
const CLOCK_SKEW_MS = 60_000;

/**
 * Whether a session's last authentication (RFC 8176 amr, auth time in unix ms) is a passkey sign-in at most
 * REAUTHENTICATION_MAX_AGE_MS old at `now`. Unknown, not a number, or too far in the future: no.
 */
export function recentPasskeySignIn(authentication: { amr: readonly string[]; authTime: number } | undefined, now: number): boolean {
  if (authentication === undefined || !madeWithPasskey(authentication.amr)) return false;
  const age = now - authentication.authTime;
  return age <= REAUTHENTICATION_MAX_AGE_MS && age >= -CLOCK_SKEW_MS;
}
