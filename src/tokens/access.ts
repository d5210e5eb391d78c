import { SignJWT } from "jose";
import { hmacBase64url } from "../lib/crypto";
import type { KeyRing } from "./keys";
import { createClientAccessVerifier, createJwtVerifier, type ClientAccessClaims, type VerificationKey, type VerifiedClaims } from "./verifier";
import type { JwtAlg } from "../lib/jwt-algs";

export interface AccessClaims {
  sub: string;
  sid: string;
  exp: number;
}

export interface IssuedAccessToken {
  token: string;
  /** Seconds from now until `exp`. */
  expiresIn: number;
  /** Unix seconds. */
  exp: number;
}

/**
 * Access JWTs with claims sub, sid, iat, exp, iss, jti and the signing key's `kid` in the header. Signed with
 * jose by the current key of JWT_ALG; verified by the synchronous verifier (same rules, ~40x cheaper than jose's
 * async path: it runs on every request), which binds the algorithm to the kid and pins the issuer (RFC 8725 §3.1, §3.8).
 */
/** Past this many remembered tokens, expired ones are swept (then all, if that is not enough). */
const VERIFIED_CACHE_SIZE = 10_000;

export function createAccessTokens(keys: KeyRing, alg: JwtAlg, issuer: string, ttlSeconds: number) {
  const verifySignature = createJwtVerifier(keys.verificationKey, issuer);
  /**
   * A token whose signature checked out is remembered until its `exp` (by its exact text), so a client's next
   * requests cost two Map lookups instead of an RSA/ECDSA/Ed25519 verification (14-38 µs) or, with HS256, the
   * base64 and JSON decoding and the HMAC (profiled: about a sixth of a cached-session validate). Only verified
   * tokens enter it, so forged ones cannot fill it; an entry holds only while the key that verified it is still
   * the ring's (a key past its live_until is forgotten); revocation is the session lookup's, as always.
   */
  const verified = new Map<string, { claims: VerifiedClaims; key: VerificationKey }>();

  function verify(token: string): VerifiedClaims | undefined {
    const nowMs = Date.now();
    const now = Math.floor(nowMs / 1000);
    const known = verified.get(token);
    if (known && known.claims.exp > now && keys.verificationKey(known.key.kid) === known.key && (known.key.liveUntil === null || known.key.liveUntil > nowMs))
      return known.claims;
    const used: { key?: VerificationKey } = {};
    const claims = verifySignature(token, now, used);
    if (!claims) {
      verified.delete(token);
      return undefined;
    }
    if (verified.size >= VERIFIED_CACHE_SIZE) {
      for (const [text, entry] of verified) if (entry.claims.exp <= now) verified.delete(text);
      if (verified.size >= VERIFIED_CACHE_SIZE) verified.clear();
    }
    verified.set(token, { claims, key: used.key! });
    return claims;
  }

  return {
    /** A token for the session, never outliving it. */
    async issue(userId: string, sessionId: string, sessionExpiresAtMs: number): Promise<IssuedAccessToken> {
      const now = Math.floor(Date.now() / 1000);
      const exp = Math.min(now + ttlSeconds, Math.floor(sessionExpiresAtMs / 1000));
      const signer = await keys.signingKey(alg);
      const header = { alg: signer.alg, kid: signer.kid, typ: "JWT" };
      const claims = { sid: sessionId, sub: userId, iss: issuer, iat: now, exp, jti: crypto.randomUUID() };
      const token =
        signer.alg === "HS256" && signer.key instanceof Uint8Array
          ? signHs256(header, claims, signer.key)
          : await new SignJWT({ sid: sessionId })
              .setProtectedHeader(header)
              .setSubject(userId)
              .setIssuer(issuer)
              .setIssuedAt(now)
              .setExpirationTime(exp)
              .setJti(claims.jti)
              .sign(signer.key);
      return { token, expiresIn: Math.max(exp - now, 0), exp };
    },

    verify(token: string): AccessClaims | undefined {
      const claims = verify(token);
      return claims && { sub: claims.sub, sid: claims.sid, exp: claims.exp };
    },
  };
}

export type AccessTokens = ReturnType<typeof createAccessTokens>;

/**
 * The compact JWS jose makes for HS256 (the same header and claims, in the same order), with node:crypto's HMAC:
 * jose imports a WebCrypto key from the secret and signs asynchronously on every call (profiled: a tenth of a
 * sign-in's time on the event loop, which competes with the password hashes for the cores).
 */
function signHs256(header: object, claims: object, secret: Uint8Array): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  return `${input}.${hmacBase64url(secret, input)}`;
}

/** What an OIDC client's access token says (RFC 9068 §2.2); `user` is absent for client_credentials. */
export interface ClientAccessRequest {
  clientId: string;
  audience: string[];
  scope: string;
  user?: { userId: string; sessionId: string; authTime: number; amr: string[] };
  /** Unix ms: the token never outlives its grant. */
  notAfter?: number;
}

/**
 * Access tokens for OpenID Connect clients: RFC 9068 JWTs (`typ: at+jwt`) signed with a key of the JWKS, so a
 * resource server verifies them offline. They name their audience and client, so no door of Latchkey's own API
 * takes them (createJwtVerifier refuses their type) and only /oidc/userinfo and introspection read them.
 */
export function createClientAccessTokens(keys: KeyRing, alg: Exclude<JwtAlg, "HS256">, issuer: string, ttlSeconds: number) {
  const verifier = createClientAccessVerifier(keys.verificationKey, issuer);
  return {
    async issue(request: ClientAccessRequest): Promise<IssuedAccessToken> {
      const now = Math.floor(Date.now() / 1000);
      const exp = Math.min(now + ttlSeconds, request.notAfter === undefined ? Infinity : Math.floor(request.notAfter / 1000));
      const signer = await keys.signingKey(alg);
      const { user } = request;
      const token = await new SignJWT({
        client_id: request.clientId,
        scope: request.scope,
        ...(user ? { sid: user.sessionId, auth_time: Math.floor(user.authTime / 1000), amr: user.amr } : {}),
      })
        .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: "at+jwt" })
        .setIssuer(issuer)
        // RFC 9068 §2.2: sub is the client itself when no user is involved (client_credentials).
        .setSubject(user ? user.userId : request.clientId)
        .setAudience(request.audience.length === 1 ? request.audience[0]! : request.audience)
        .setIssuedAt(now)
        .setExpirationTime(exp)
        .setJti(crypto.randomUUID())
        .sign(signer.key);
      return { token, expiresIn: Math.max(exp - now, 0), exp };
    },

    verify: (token: string): ClientAccessClaims | undefined => verifier(token),
  };
}

export type ClientAccessTokens = ReturnType<typeof createClientAccessTokens>;
