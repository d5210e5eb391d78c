/**
 * The JWT algorithms Latchkey signs and verifies with: a name shared by the configuration (`JWT_ALG`,
 * `OIDC_ID_TOKEN_ALG`), the signing keys and the OpenID Connect clients, so it lives below all of them.
 */
export const JWT_ALGS = ["HS256", "RS256", "ES256", "EdDSA"] as const;
export type JwtAlg = (typeof JWT_ALGS)[number];
/** Those verified with a public key: the only ones an ID token may use (OpenID Connect Core §10.1). */
export const ASYMMETRIC_ALGS = ["RS256", "ES256", "EdDSA"] as const;
