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
