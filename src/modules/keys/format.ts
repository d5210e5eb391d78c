import { randomBytes } from "node:crypto";

/**
 * API key format: "lk_" + 43 base62 characters (32 random bytes) + 6 base62 characters of CRC32 checksum.
 * The fixed prefix lets secret scanners recognise a leaked key; the checksum rejects a typo or a made-up
 * key before any database lookup (the scheme GitHub uses for its tokens).
 */
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export const API_KEY_PREFIX = "lk_";
const BODY_LENGTH = 43; // ceil(256 / log2(62))
const CHECKSUM_LENGTH = 6; // 62^6 > 2^32
const KEY_PATTERN = new RegExp(`^${API_KEY_PREFIX}[0-9A-Za-z]{${BODY_LENGTH + CHECKSUM_LENGTH}}$`);
/** Characters after "lk_" shown in listings. */
export const DISPLAY_PREFIX_LENGTH = 8;

function base62(value: bigint, length: number): string {
  let out = "";
  for (let rest = value; rest > 0n; rest /= 62n) out = ALPHABET[Number(rest % 62n)] + out;
  return out.padStart(length, "0");
}

/** The checksum in base62; CRC32 fits a number, so no BigInt (it runs on every request that presents a key). */
function checksum(body: string): string {
  let out = "";
  for (let rest = Bun.hash.crc32(body); rest > 0; rest = Math.floor(rest / 62)) out = ALPHABET[rest % 62] + out;
  return out.padStart(CHECKSUM_LENGTH, "0");
}

export function generateApiKey(): string {
  const body = base62(BigInt(`0x${randomBytes(32).toString("hex")}`), BODY_LENGTH);
  return `${API_KEY_PREFIX}${body}${checksum(body)}`;
}

/** Shape and checksum only; says nothing about whether the key exists. */
export function isWellFormedApiKey(key: string): boolean {
  if (!KEY_PATTERN.test(key)) return false;
  const body = key.slice(API_KEY_PREFIX.length, API_KEY_PREFIX.length + BODY_LENGTH);
  return checksum(body) === key.slice(API_KEY_PREFIX.length + BODY_LENGTH);
}

export function displayPrefix(key: string): string {
  return key.slice(API_KEY_PREFIX.length, API_KEY_PREFIX.length + DISPLAY_PREFIX_LENGTH);
}
