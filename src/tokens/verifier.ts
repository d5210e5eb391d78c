import { createHmac, timingSafeEqual, verify as verifySignature, type KeyObject } from "node:crypto";
import type { JwtAlg } from "../lib/jwt-algs";

export interface VerifiedClaims {
  sub: string;
  sid: string;
  exp: number;
  iat: number;
  jti: string;
  iss: string;
}

/** One key a token may name by `kid`: its algorithm is bound to it, so a token cannot choose another one. */
export interface VerificationKey {
  kid: string;
  alg: JwtAlg;
  /** Unix ms after which no token it signed can still be live; null while it is current. */
  liveUntil: number | null;
  /** Checks the signature over `input` (header.payload), given as base64url. */
  verify(input: string, signature: Buffer): boolean;
}

/** The HS256 key: HMAC-SHA256 with JWT_SECRET's bytes, compared in constant time. */
export function hmacKey(kid: string, secret: Uint8Array, liveUntil: number | null = null): VerificationKey {
  return {
    kid,
    alg: "HS256",
    liveUntil,
    verify(input, signature) {
      const expected = createHmac("sha256", secret).update(input).digest();
      return signature.length === expected.length && timingSafeEqual(signature, expected);
    },
  };
}

/**
 * An imported public key (node:crypto, imported once when the key is loaded: no per-request parsing). Node's
 * verify is synchronous; ES256 signatures are JWS's raw r||s (RFC 7518 §3.4), "ieee-p1363" in node's terms.
 */
export function publicKey(kid: string, alg: Exclude<JwtAlg, "HS256">, key: KeyObject, liveUntil: number | null): VerificationKey {
  const hash = alg === "EdDSA" ? null : "sha256";
  const options = alg === "ES256" ? { key, dsaEncoding: "ieee-p1363" as const } : key;
  return { kid, alg, liveUntil, verify: (input, signature) => verifySignature(hash, Buffer.from(input), options, signature) };
}

/**
 * Synchronous JWT verification for the hot path (every request of every protected app). jose goes through
 * WebCrypto's async API and costs ~150 µs per HS256 verification here; one HMAC over the signing input costs
 * ~4 µs, an RSA or Ed25519 signature check with an imported key tens of µs (bench/README.md). jose's rules, made
 * explicit:
 *  - RFC 8725 §3.1: the algorithm is the one bound to the key the `kid` names (only the keys `keyFor` knows, the
 *    configured algorithm's and retired ones whose tokens may still be live), so `none`, HS256 signed with a
 *    public key (algorithm confusion), an unknown kid are refused; `crit` and `b64` (RFC 7797) are refused too;
 *  - the signature must be canonical base64url;
 *  - exp (required, in the future, before the year 10000), nbf (if present), iss (exact) and the claims Latchkey relies on.
 * A token without `kid` (signed before kids existed) can only be the HS256 key's.
 */
/** 9999-12-31T23:59:59Z: a later `exp` is no date a client could print (and `new Date` would throw on it). */
const LATEST_EXP = 253_402_300_799;

/** A signature-checked token: its header, claims and the key that verified it. */
interface CheckedJws {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  key: VerificationKey;
}

/** The rules every Latchkey JWT meets (above): kid-bound algorithm, canonical signature, exp, nbf and iss. */
function checkJws(keyFor: (kid: string | undefined) => VerificationKey | undefined, issuer: string, token: string, nowSeconds: number): CheckedJws | undefined {
  const headerEnd = token.indexOf(".");
  const payloadEnd = token.indexOf(".", headerEnd + 1);
  if (headerEnd <= 0 || payloadEnd <= headerEnd + 1 || token.indexOf(".", payloadEnd + 1) !== -1) return undefined;

  const header = decodeJson(token.slice(0, headerEnd));
  if (!header || "crit" in header || "b64" in header) return undefined;
  const kid = header.kid;
  if (kid !== undefined && typeof kid !== "string") return undefined;
  const key = keyFor(kid);
  if (!key || header.alg !== key.alg || (key.liveUntil !== null && key.liveUntil <= nowSeconds * 1000)) return undefined;

  const signature = token.slice(payloadEnd + 1);
  const given = Buffer.from(signature, "base64url");
  if (given.toString("base64url") !== signature || !key.verify(token.slice(0, payloadEnd), given)) return undefined;

  const claims = decodeJson(token.slice(headerEnd + 1, payloadEnd));
  if (!claims) return undefined;
  const { exp, nbf, iss } = claims;
  if (typeof exp !== "number" || exp <= nowSeconds || exp > LATEST_EXP) return undefined;
  if (nbf !== undefined && (typeof nbf !== "number" || nbf > nowSeconds)) return undefined;
  if (iss !== issuer) return undefined;
  return { header, claims, key };
}

/**
 * Latchkey's own access tokens. Their header says `typ: JWT` (or nothing, before kids); a token of another type
 * (an OIDC client's `at+jwt`, RFC 9068 §4: resource servers must check it) or naming a client is never one,
 * whatever else it carries: audience separation (RFC 9700 §2.3).
 */
export function createJwtVerifier(keyFor: (kid: string | undefined) => VerificationKey | undefined, issuer: string) {
  /** `used`, when given, receives the key that verified the token (for a cache that must forget retired keys). */
  return (token: string, nowSeconds = Math.floor(Date.now() / 1000), used?: { key?: VerificationKey }): VerifiedClaims | undefined => {
    const checked = checkJws(keyFor, issuer, token, nowSeconds);
    if (!checked || (checked.header.typ !== undefined && checked.header.typ !== "JWT") || "client_id" in checked.claims) return undefined;
    const { sub, sid, exp, iat, jti, iss } = checked.claims;
    if (typeof sub !== "string" || typeof sid !== "string" || typeof iat !== "number" || typeof jti !== "string") return undefined;
    if (used) used.key = checked.key;
    return { sub, sid, exp: exp as number, iat, jti, iss: iss as string };
  };
}

/** The claims of an access token issued to an OpenID Connect client (RFC 9068 §2.2). */
export interface ClientAccessClaims {
  /** The user, or for client_credentials the client itself. */
  sub: string;
  /** The grant's session; absent for client_credentials (no user). */
  sid?: string;
  client_id: string;
  aud: string[];
  scope: string;
  exp: number;
  iat: number;
  jti: string;
}

/**
 * Verifies an OIDC client's access token: `typ: at+jwt` (RFC 9068 §4), an asymmetric key of the JWKS (never
 * the HS256 secret: these tokens are meant for resource servers that verify offline), and the claims the profile
 * requires. Everything else is refused.
 */
export function createClientAccessVerifier(keyFor: (kid: string | undefined) => VerificationKey | undefined, issuer: string) {
  return (token: string, nowSeconds = Math.floor(Date.now() / 1000)): ClientAccessClaims | undefined => {
    const checked = checkJws(keyFor, issuer, token, nowSeconds);
    if (!checked || checked.key.alg === "HS256" || checked.header.typ !== "at+jwt") return undefined;
    const { sub, sid, client_id, aud, scope, exp, iat, jti } = checked.claims;
    const audience = typeof aud === "string" ? [aud] : aud;
    if (typeof sub !== "string" || typeof client_id !== "string" || typeof scope !== "string" || typeof iat !== "number" || typeof jti !== "string") return undefined;
    if (!Array.isArray(audience) || audience.length === 0 || !audience.every((item) => typeof item === "string")) return undefined;
    if (sid !== undefined && typeof sid !== "string") return undefined;
    return { sub, ...(sid === undefined ? {} : { sid }), client_id, aud: audience as string[], scope, exp: exp as number, iat, jti };
  };
}

/** A verifier that knows one HS256 key (tokens with its kid or none). */
export function createHs256Verifier(secret: Uint8Array, issuer: string, kid = hs256Kid(secret)) {
  const key = hmacKey(kid, secret);
  return createJwtVerifier((given) => (given === undefined || given === kid ? key : undefined), issuer);
}

/** The HS256 key's id: derived from the secret (a one-way MAC of a label), so it names the secret without revealing it. */
export function hs256Kid(secret: Uint8Array): string {
  return `hs256-${createHmac("sha256", secret).update("latchkey/kid/v1").digest("base64url").slice(0, 16)}`;
}

function decodeJson(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
