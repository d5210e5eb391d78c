/**
 * The token endpoint's decisions, as pure functions (input → verdict) that unit tests and mutation testing reach
 * without HTTP or a database: why a presented authorization code grants nothing, and what a failed refresh answers.
 * grants.ts does the storage around them.
 */
import { createHash } from "node:crypto";
import { OAuthError } from "../../errors";
import { safeEqual } from "../../lib/crypto";
import { RefreshTokenReused } from "../sessions/service";

export const invalidGrant = (description: string) => new OAuthError("invalid_grant", description);

/** What the exchange checks of a stored code (an oidc_codes row). */
export interface StoredCode {
  expiresAt: Date;
  clientId: string;
  redirectUri: string;
  codeChallenge: string | null;
}

/** What the client presented with the code at the token endpoint. */
export interface PresentedCode {
  clientId: string;
  redirectUri: string | undefined;
  codeVerifier: string | undefined;
}

/** base64url(SHA-256(verifier)) = challenge (RFC 7636 §4.6), compared in constant time. */
function pkceMatches(verifier: string, challenge: string): boolean {
  return safeEqual(createHash("sha256").update(verifier).digest("base64url"), challenge);
}

/**
 * Why a code that was not yet used grants nothing (the exchange spends it all the same), or undefined. A code is
 * dead from its expiry's millisecond on; bound to the client it was issued to (RFC 6749 §4.1.3); redirect_uri is
 * required and must be the authorization request's, exactly (§4.1.3: it always had one here); a code issued with a
 * code_challenge needs the matching code_verifier (RFC 7636 §4.6), and one issued without refuses a verifier
 * (RFC 9700 §4.8.2: a PKCE downgrade).
 */
export function codeRefusal(code: StoredCode, presented: PresentedCode, now: number): string | undefined {
  if (code.expiresAt.getTime() <= now) return "The code has expired.";
  if (code.clientId !== presented.clientId) return "The code was issued to another client.";
  if (presented.redirectUri !== code.redirectUri) return "redirect_uri does not match the authorization request.";
  if (code.codeChallenge !== null) {
    if (!presented.codeVerifier) return "code_verifier is required: the request used PKCE.";
    if (!pkceMatches(presented.codeVerifier, code.codeChallenge)) return "code_verifier does not match the code_challenge.";
  } else if (presented.codeVerifier) return "code_verifier given, but the request had no code_challenge.";
  return undefined;
}

/**
 * The token endpoint's answer to a refresh whose rotation failed: a reused token (the sessions revoked the grant),
 * an OAuth error as it is, anything else (unknown, expired, revoked: the sessions' invalid_refresh_token) as
 * invalid_grant, which is what RFC 6749 §5.2 names for each.
 */
export function refreshFailure(error: unknown): OAuthError {
  if (error instanceof RefreshTokenReused) return invalidGrant("This refresh token was already used; the grant has been revoked.");
  if (error instanceof OAuthError) return error;
  return invalidGrant("The refresh token is unknown, expired or revoked.");
}
