import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomInt, timingSafeEqual } from "node:crypto";

/** `bytes` random bytes, base64url without padding. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

/** SHA-256 as hex: how every secret (refresh token, API key, code) is stored. */
export function sha256Hex(input: string): string {
  // The static form allocates no hasher: half the time of new CryptoHasher().update().digest() (it runs per request).
  return Bun.CryptoHasher.hash("sha256", input, "hex") as string;
}

export function hmacBase64url(key: Uint8Array | string, input: string): string {
  return createHmac("sha256", key).update(input).digest("base64url");
}

/** Constant-time string comparison (OWASP ASVS V11.2: no early exit on secrets). */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** A code of `digits` decimal digits from the CSPRNG (uniform: randomInt rejects biased draws). */
export function randomDigits(digits = 6): string {
  return String(randomInt(0, 10 ** digits)).padStart(digits, "0");
}

/** AES-256-GCM with a random 96-bit nonce: `nonce.ciphertext.tag`, base64url. `context` is bound as associated data. */
export function seal(key: Uint8Array, plaintext: string, context: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce).setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return [nonce, body, cipher.getAuthTag()].map((part) => part.toString("base64url")).join(".");
}

/** The plaintext of `seal`, or undefined when the key or context differ or the value was altered. */
export function unseal(key: Uint8Array, sealed: string, context: string): string | undefined {
  const [nonce, body, tag] = sealed.split(".").map((part) => Buffer.from(part, "base64url"));
  if (!nonce || !body || !tag) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce).setAAD(Buffer.from(context));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}
