import { and, eq, isNull, lt } from "drizzle-orm";
import { createHash } from "node:crypto";
import { SignJWT } from "jose";
import type { Db } from "../../db/client";
import { oidcCodes, oidcConsents, oidcGrants, refreshTokens, sessions } from "../../db/schema";
import { OAuthError } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { randomToken, safeEqual, sha256Hex } from "../../lib/crypto";
import type { AccessTokens } from "../../tokens/access";
import type { KeyRing } from "../../tokens/keys";
import type { JwtAlg } from "../../tokens/verifier";
import type { AuditLog } from "../audit/service";
import { AccountChanged, RefreshTokenReused, type SessionService } from "../sessions/service";
import type { UserIdentity } from "../users/service";
import type { OidcClient } from "./clients";

/** Codes live 60 s (RFC 6749 §4.1.2 recommends at most 10 minutes; nothing needs more than a redirect's time). */
export const CODE_TTL_MS = 60_000;
/** Used and expired codes are kept this long, so that a late replay still revokes what the code issued. */
const CODE_KEEP_MS = 86_400_000;

export interface OidcSettings {
  issuer: string;
  idTokenAlg: JwtAlg;
  /** ID tokens live as long as access tokens. */
  tokenTtl: number;
}

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token: string;
  id_token: string;
  scope: string;
}

export interface CodeRequest {
  client: OidcClient;
  userId: string;
  redirectUri: string;
  codeChallenge: string | null;
  nonce: string | null;
  scope: string;
  authTime: number;
}

export const invalidGrant = (description: string) => new OAuthError("invalid_grant", description);

/** The claims a client gets in the ID token and from userinfo: the same set in both (see README: some apps read only one). */
export function profileClaims(user: UserIdentity) {
  const name = typeof user.metadata.name === "string" && user.metadata.name ? user.metadata.name : user.username;
  return {
    preferred_username: user.username,
    name,
    ...(user.email ? { email: user.email, email_verified: user.emailVerified } : {}),
    groups: user.roles,
  };
}

/** base64url(SHA-256(verifier)) = challenge (RFC 7636 §4.6), compared in constant time. */
function pkceMatches(verifier: string, challenge: string): boolean {
  return safeEqual(createHash("sha256").update(verifier).digest("base64url"), challenge);
}

/** Deletes codes past their keeping time. */
export function pruneOidcCodes(db: Db): void {
  db.delete(oidcCodes).where(lt(oidcCodes.expiresAt, new Date(Date.now() - CODE_KEEP_MS))).run();
}

/** Codes, consents, grants and the tokens of the OpenID Connect provider. */
export function createOidcService(deps: {
  db: Db;
  sessions: SessionService;
  accessTokens: AccessTokens;
  keyRing: KeyRing;
  audit: AuditLog;
  settings: OidcSettings;
}) {
  const { db, sessions: sessionService, accessTokens, keyRing, audit, settings } = deps;

  async function idToken(user: UserIdentity, clientId: string, extra: { authTime: number; nonce?: string | null; sid: string }) {
    const key = await keyRing.signingKey(settings.idTokenAlg);
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      ...profileClaims(user),
      auth_time: Math.floor(extra.authTime / 1000),
      ...(extra.nonce ? { nonce: extra.nonce } : {}),
      sid: extra.sid,
    })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
      .setIssuer(settings.issuer)
      .setSubject(user.userId)
      .setAudience(clientId)
      .setIssuedAt(now)
      .setExpirationTime(now + settings.tokenTtl)
      .sign(key.key);
  }

  async function tokensFor(sessionId: string, refreshToken: string, clientId: string, scope: string, authTime: number, nonce?: string | null): Promise<TokenResponse> {
    const principal = sessionService.principal(sessionId);
    if (!principal) throw invalidGrant("The grant has ended.");
    const access = await accessTokens.issue(principal.userId, sessionId, principal.sessionExpiresAt);
    return {
      access_token: access.token,
      token_type: "Bearer",
      expires_in: access.expiresIn,
      refresh_token: refreshToken,
      id_token: await idToken(principal, clientId, { authTime, nonce, sid: sessionId }),
      scope,
    };
  }

  /** Ends the sessions a user's grants to a client started (consent revoked, RP logout). */
  function endGrants(userId: string, clientId: string, onlySessionId?: string): number {
    const granted = db
      .select({ id: oidcGrants.sessionId })
      .from(oidcGrants)
      .innerJoin(sessions, eq(sessions.id, oidcGrants.sessionId))
      .where(and(eq(oidcGrants.clientId, clientId), eq(sessions.userId, userId), onlySessionId ? eq(sessions.id, onlySessionId) : undefined))
      .all();
    for (const { id } of granted) sessionService.revoke(id);
    return granted.length;
  }

  return {
    /** Whether the user already consented to the client for every scope asked. */
    hasConsent(userId: string, clientId: string, scope: string): boolean {
      const row = db
        .select({ scope: oidcConsents.scope })
        .from(oidcConsents)
        .where(and(eq(oidcConsents.userId, userId), eq(oidcConsents.clientId, clientId)))
        .get();
      if (!row) return false;
      const granted = new Set(row.scope.split(" "));
      return scope.split(" ").every((item) => granted.has(item));
    },

    grantConsent(userId: string, clientId: string, scope: string, client: ClientInfo): void {
      db.insert(oidcConsents)
        .values({ userId, clientId, scope })
        .onConflictDoUpdate({ target: [oidcConsents.userId, oidcConsents.clientId], set: { scope, createdAt: new Date() } })
        .run();
      audit.record({ event: "oidc_consent_granted", userId, ...client, detail: { client_id: clientId, scope } });
    },

    listConsents(userId: string) {
      return db
        .select({ client_id: oidcConsents.clientId, scope: oidcConsents.scope, created_at: oidcConsents.createdAt })
        .from(oidcConsents)
        .where(eq(oidcConsents.userId, userId))
        .orderBy(oidcConsents.clientId)
        .all()
        .map((row) => ({ ...row, created_at: row.created_at.toISOString() }));
    },

    /** Forgets the consent and ends the client's grants for this user: it must ask again. False if there was none. */
    revokeConsent(userId: string, clientId: string, client: ClientInfo): boolean {
      const deleted = db
        .delete(oidcConsents)
        .where(and(eq(oidcConsents.userId, userId), eq(oidcConsents.clientId, clientId)))
        .returning({ clientId: oidcConsents.clientId })
        .all();
      if (deleted.length === 0) return false;
      const ended = endGrants(userId, clientId);
      audit.record({ event: "oidc_consent_revoked", userId, ...client, detail: { client_id: clientId, sessions_ended: ended } });
      return true;
    },

    /** A single-use code for the request (stored as SHA-256). */
    issueCode(request: CodeRequest): string {
      const code = randomToken(32);
      db.insert(oidcCodes)
        .values({
          codeHash: sha256Hex(code),
          clientId: request.client.clientId,
          userId: request.userId,
          redirectUri: request.redirectUri,
          codeChallenge: request.codeChallenge,
          nonce: request.nonce,
          scope: request.scope,
          authTime: new Date(request.authTime),
          expiresAt: new Date(Date.now() + CODE_TTL_MS),
        })
        .run();
      return code;
    },

    /**
     * authorization_code grant. The code works once (marked used before anything is issued); presenting it again
     * revokes the session it started (RFC 6749 §4.1.2, RFC 9700 §4.5). A code that fails a check is spent too.
     * Everything from marking the code to recording its session runs without an await, so no other request of
     * this process interleaves.
     */
    async exchangeCode(client: OidcClient, params: { code: string; redirectUri: string | undefined; codeVerifier: string | undefined }, from: ClientInfo) {
      const now = Date.now();
      const hash = sha256Hex(params.code);
      const row = db.select().from(oidcCodes).where(eq(oidcCodes.codeHash, hash)).get();
      if (!row) throw invalidGrant("The code is unknown or expired.");
      if (row.usedAt !== null) {
        if (row.sessionId) sessionService.revoke(row.sessionId);
        audit.record({ event: "oidc_code_replayed", userId: row.userId, ...from, detail: { client_id: row.clientId, presented_by: client.clientId, session_revoked: row.sessionId !== null } });
        throw invalidGrant("The code was already used; the tokens issued from it are revoked.");
      }
      const spent = db.update(oidcCodes).set({ usedAt: new Date(now) }).where(and(eq(oidcCodes.codeHash, hash), isNull(oidcCodes.usedAt))).returning({ hash: oidcCodes.codeHash }).all();
      if (spent.length !== 1) throw invalidGrant("The code was already used.");
      if (row.expiresAt.getTime() <= now) throw invalidGrant("The code has expired.");
      if (row.clientId !== client.clientId) throw invalidGrant("The code was issued to another client.");
      if (params.redirectUri !== row.redirectUri) throw invalidGrant("redirect_uri does not match the authorization request.");
      if (row.codeChallenge !== null) {
        if (!params.codeVerifier) throw invalidGrant("code_verifier is required: the request used PKCE.");
        if (!pkceMatches(params.codeVerifier, row.codeChallenge)) throw invalidGrant("code_verifier does not match the code_challenge.");
      } else if (params.codeVerifier) throw invalidGrant("code_verifier given, but the request had no code_challenge.");

      let session;
      try {
        session = sessionService.create({ userId: row.userId }, from);
      } catch (error) {
        if (error instanceof AccountChanged) throw invalidGrant("The account behind this code was disabled or deleted.");
        throw error;
      }
      db.insert(oidcGrants).values({ sessionId: session.sessionId, clientId: client.clientId, scope: row.scope, authTime: row.authTime }).run();
      db.update(oidcCodes).set({ sessionId: session.sessionId }).where(eq(oidcCodes.codeHash, hash)).run();
      audit.record({ event: "oidc_code_exchanged", userId: row.userId, ...from, detail: { client_id: client.clientId, session_id: session.sessionId, scope: row.scope } });
      return tokensFor(session.sessionId, session.refreshToken, client.clientId, row.scope, row.authTime.getTime(), row.nonce);
    },

    /**
     * refresh_token grant: only the client the grant belongs to may use the token (checked before it is spent);
     * rotation and reuse detection are the sessions' (a reused token ends the grant).
     */
    async refresh(client: OidcClient, refreshToken: string, from: ClientInfo) {
      const grant = db
        .select({ clientId: oidcGrants.clientId, scope: oidcGrants.scope, authTime: oidcGrants.authTime })
        .from(refreshTokens)
        .innerJoin(oidcGrants, eq(oidcGrants.sessionId, refreshTokens.sessionId))
        .where(eq(refreshTokens.tokenHash, sha256Hex(refreshToken)))
        .get();
      if (!grant || grant.clientId !== client.clientId) throw invalidGrant("The refresh token is unknown, expired, revoked or another client's.");
      try {
        const rotated = sessionService.rotate(refreshToken);
        return await tokensFor(rotated.principal.sessionId, rotated.refreshToken, client.clientId, grant.scope, grant.authTime.getTime());
      } catch (error) {
        if (error instanceof RefreshTokenReused) {
          audit.record({ event: "refresh_reuse_detected", userId: error.userId, ...from, detail: { session_id: error.sessionId, client_id: client.clientId } });
          throw invalidGrant("This refresh token was already used; the grant has been revoked.");
        }
        if (error instanceof OAuthError) throw error;
        throw invalidGrant("The refresh token is unknown, expired or revoked.");
      }
    },

    endGrants,

    /** The grant a session belongs to, if it is one (RP-initiated logout's `sid`). */
    grantOf(sessionId: string) {
      return db.select().from(oidcGrants).where(eq(oidcGrants.sessionId, sessionId)).get();
    },

    /** When the session was signed in (its creation), for auth_time and max_age. */
    authTimeOf(sessionId: string): number | undefined {
      return db.select({ createdAt: sessions.createdAt }).from(sessions).where(eq(sessions.id, sessionId)).get()?.createdAt.getTime();
    },
  };
}

export type OidcService = ReturnType<typeof createOidcService>;
