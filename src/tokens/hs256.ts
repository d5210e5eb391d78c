import { createHmac, createSecretKey, timingSafeEqual } from "node:crypto";

export interface VerifiedClaims {
  sub: string;
  sid: string;
  exp: number;
  iat: number;
  jti: string;
  iss: string;
}

/**
 * Synchronous HS256 verification for the hot path (every request of every protected app). jose, behind
 * @elysiajs/jwt, goes through WebCrypto's async API and costs ~150 µs per verification here; one HMAC over the
 * signing input costs ~4 µs (measured in bench/README.md). The rules are jose's, made explicit:
 *  - RFC 8725 §3.1: the algorithm is pinned to HS256, so `none`, HS512 or an asymmetric alg is refused;
 *    `crit` and `b64` (RFC 7797) are refused too;
 *  - the signature is compared in constant time and must be canonical base64url;
 *  - exp (required, in the future, before the year 10000), nbf (if present), iss (exact) and the claims Latchkey relies on.
 * Tokens are signed elsewhere with @elysiajs/jwt; test/unit checks both agree.
 */
/** 9999-12-31T23:59:59Z: a later `exp` is no date a client could print (and `new Date` would throw on it). */
const LATEST_EXP = 253_402_300_799;

export function createHs256Verifier(secret: Uint8Array, issuer: string) {
  const key = createSecretKey(secret);

  return (token: string, nowSeconds = Math.floor(Date.now() / 1000)): VerifiedClaims | undefined => {
    const headerEnd = token.indexOf(".");
    const payloadEnd = token.indexOf(".", headerEnd + 1);
    if (headerEnd <= 0 || payloadEnd <= headerEnd + 1 || token.indexOf(".", payloadEnd + 1) !== -1) return undefined;

    const header = decodeJson(token.slice(0, headerEnd));
    if (!header || header.alg !== "HS256" || "crit" in header || "b64" in header) return undefined;

    const signature = token.slice(payloadEnd + 1);
    const expected = createHmac("sha256", key).update(token.slice(0, payloadEnd)).digest();
    const given = Buffer.from(signature, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected) || given.toString("base64url") !== signature)
      return undefined;

    const claims = decodeJson(token.slice(headerEnd + 1, payloadEnd));
    if (!claims) return undefined;
    const { sub, sid, exp, iat, jti, iss, nbf } = claims;
    if (typeof exp !== "number" || exp <= nowSeconds || exp > LATEST_EXP) return undefined;
    if (nbf !== undefined && (typeof nbf !== "number" || nbf > nowSeconds)) return undefined;
    if (iss !== issuer || typeof sub !== "string" || typeof sid !== "string" || typeof iat !== "number" || typeof jti !== "string")
      return undefined;
    return { sub, sid, exp, iat, jti, iss };
  };
}

function decodeJson(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
