/**
 * A sign-in made with a passkey, by its RFC 8176 amr: `hwk` (proof of possession of a hardware-bound key), which
 * a passkey sign-in, a passkey second step and the passkey step-up record. What forward auth's
 * `require = "passkey"` and an OpenID Connect client that requires a passkey (acr `phr`) accept.
 */
export const madeWithPasskey = (amr: readonly string[] | undefined): boolean => amr !== undefined && amr.includes("hwk");
