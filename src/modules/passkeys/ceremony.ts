import { decodeAttestationObject, decodeClientDataJSON, isoBase64URL, parseAuthenticatorData } from "@simplewebauthn/server/helpers";
import { createHash } from "node:crypto";

/** What a WebAuthn response says of itself, read before any database or signature work. */
export interface CeremonyClaims {
  /** The challenge the client data carries (base64url): it names the options being answered. */
  challenge: string;
  /** Set when the response is refused whatever its signature: the wrong origin or relying party, or malformed. */
  refusal?: "passkey_wrong_origin" | "passkey_wrong_rp_id" | "passkey_verification_failed";
}

export interface CeremonyResponse {
  clientDataJSON: string;
  /** Registration (navigator.credentials.create). */
  attestationObject?: string;
  /** Authentication (navigator.credentials.get). */
  authenticatorData?: string;
}

function authenticatorDataOf(kind: "webauthn.create" | "webauthn.get", response: CeremonyResponse): Uint8Array<ArrayBuffer> | undefined {
  if (kind === "webauthn.get") return response.authenticatorData === undefined ? undefined : isoBase64URL.toBuffer(response.authenticatorData);
  if (response.attestationObject === undefined) return undefined;
  return decodeAttestationObject(isoBase64URL.toBuffer(response.attestationObject)).get("authData");
}

/**
 * Pure: the challenge a response answers and, if it must be refused before its signature is checked, why. W3C
 * WebAuthn Level 3 §7.1 steps 7-9, 13 and §7.2 steps 11-13, 15: the type, the origin (one of this server's sign-in
 * origins, exactly), and the authenticator data's rpIdHash (SHA-256 of our RP ID). Anything that cannot be parsed
 * is refused (fail closed); undefined when not even the challenge can be read.
 */
export function readCeremony(
  kind: "webauthn.create" | "webauthn.get",
  response: CeremonyResponse,
  expected: { origins: readonly string[]; rpId: string },
): CeremonyClaims | undefined {
  let client: { type?: unknown; challenge?: unknown; origin?: unknown };
  try {
    client = decodeClientDataJSON(response.clientDataJSON);
  } catch {
    return undefined;
  }
  if (typeof client.challenge !== "string" || client.challenge === "") return undefined;
  const claims = { challenge: client.challenge };
  if (client.type !== kind) return { ...claims, refusal: "passkey_verification_failed" };
  if (typeof client.origin !== "string" || !expected.origins.includes(client.origin)) return { ...claims, refusal: "passkey_wrong_origin" };
  let rpIdHash: Uint8Array;
  try {
    const data = authenticatorDataOf(kind, response);
    if (data === undefined) return { ...claims, refusal: "passkey_verification_failed" };
    rpIdHash = parseAuthenticatorData(data).rpIdHash;
  } catch {
    return { ...claims, refusal: "passkey_verification_failed" };
  }
  const ours = createHash("sha256").update(expected.rpId).digest();
  if (!Buffer.from(rpIdHash).equals(ours)) return { ...claims, refusal: "passkey_wrong_rp_id" };
  return claims;
}

/**
 * Pure: whether a signature counter went back (W3C WebAuthn Level 3 §6.1.1, §7.2 step 21). Authenticators without
 * a counter (most synced passkeys) always send 0: two zeros are fine; any other new value must exceed the stored one.
 */
export const counterRegressed = (stored: number, received: number): boolean => (stored > 0 || received > 0) && received <= stored;
