import { jwt } from "@elysiajs/jwt";

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
 * HS256 access JWTs with claims sub, sid, iat, exp, iss, jti. Verification pins the algorithm list and the
 * issuer and requires the claims it relies on (RFC 8725 §3.1, §3.8): jose rejects `none`, other algorithms,
 * a wrong issuer and an expired token.
 */
export function createAccessTokens(secret: Uint8Array, issuer: string, ttlSeconds: number) {
  // The plugin's decorator is the signer/verifier itself; using it here keeps token rules out of the request context.
  const { sign, verify } = jwt({ name: "accessJwt", secret, alg: "HS256", iss: issuer }).decorator.accessJwt;
  const verifyOptions = { algorithms: ["HS256"], issuer, requiredClaims: ["exp", "iat", "sub", "sid", "jti"] };

  return {
    /** A token for the session, never outliving it. */
    async issue(userId: string, sessionId: string, sessionExpiresAtMs: number): Promise<IssuedAccessToken> {
      const now = Math.floor(Date.now() / 1000);
      const exp = Math.min(now + ttlSeconds, Math.floor(sessionExpiresAtMs / 1000));
      const token = await sign({ sub: userId, sid: sessionId, jti: crypto.randomUUID(), exp });
      return { token, expiresIn: Math.max(exp - now, 0), exp };
    },

    async verify(token: string): Promise<AccessClaims | undefined> {
      const payload = await verify(token, verifyOptions);
      if (!payload || typeof payload.sub !== "string" || typeof payload.sid !== "string" || typeof payload.exp !== "number")
        return undefined;
      return { sub: payload.sub, sid: payload.sid, exp: payload.exp };
    },
  };
}

export type AccessTokens = ReturnType<typeof createAccessTokens>;
