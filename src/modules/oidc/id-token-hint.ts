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
// Mutation testing (test/mutation/README.md): the shape check, `typeof kid`, `key.alg !== alg` and the catch's body
// survive, each backed by another check (a malformed token fails to parse or verify; no kid finds the HS256 key,
// which is refused; a signature only verifies under the key's own alg): kept, so none of them rests on one line.
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
