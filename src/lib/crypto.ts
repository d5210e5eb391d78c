import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** `bytes` random bytes, base64url without padding. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

/** SHA-256 as hex: how every secret (refresh token, API key, code) is stored. */
export function sha256Hex(input: string): string {
  return new Bun.CryptoHasher("sha256").update(input).digest("hex");
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
