import type { KeyRing } from "../../tokens/keys";

export interface IdTokenHint {
  sub: string;
  aud: string;
  sid?: string;
}

/**
 * The ID token an `id_token_hint` names, if this issuer signed it with a key it still publishes; expired ones
 * too (OpenID Connect Core §3.1.2.1, RP-Initiated Logout 1.0 §2). Anything it cannot verify is undefined: the
 * callers refuse it. Retired keys stay published for REFRESH_TOKEN_TTL after a rotation (tokens/keys.ts), as long
 * as a relying party may keep an ID token to send here.
 */
// Mutation testing (test/mutation/README.md): three checks survive, each an equivalent mutant backed by another
// check, and kept so that none of the refusals rests on one line: the shape check (without it, an empty part fails
// JSON.parse or the signature, and a missing signature throws in Buffer.from, caught); `typeof kid` (the ring's Map
// finds no key for a kid that is not text, and without a kid finds the HS256 key, refused below); the catch's body
// (an empty catch returns undefined too).
export function verifyIdTokenHint(token: string, keyRing: KeyRing, issuer: string): IdTokenHint | undefined {
  const [header, payload, signature] = token.split(".");
  if (!header || !payload || signature === undefined) return undefined;
  try {
    const { alg, kid, typ } = JSON.parse(Buffer.from(header, "base64url").toString()) as { alg?: string; kid?: string; typ?: unknown };
    const key = typeof kid === "string" ? keyRing.verificationKey(kid) : undefined;
    // The same keys sign clients' access tokens (at+jwt) and logout tokens (logout+jwt): only an ID token (typ JWT,
    // as Latchkey signs them) is a hint (RFC 8725 §3.11).
    if (typ !== "JWT" || !key || key.alg === "HS256" || key.alg !== alg || !key.verify(`${header}.${payload}`, Buffer.from(signature, "base64url"))) return undefined;
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    if (claims.iss !== issuer || typeof claims.sub !== "string" || typeof claims.aud !== "string") return undefined;
    return { sub: claims.sub, aud: claims.aud, sid: typeof claims.sid === "string" ? claims.sid : undefined };
  } catch {
    return undefined;
  }
}
