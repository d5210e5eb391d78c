import { and, eq, isNull, lt } from "drizzle-orm";
import { createHash } from "node:crypto";
import { SignJWT } from "jose";
import { changes, row, transaction } from "../../db/atomic";
import type { Db } from "../../db/client";
import { oidcCodes, oidcConsents, oidcGrants, refreshTokens, sessions } from "../../db/tables";
import { OAuthError } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { randomToken, safeEqual, sha256Hex } from "../../lib/crypto";
import type { AccessTokens } from "../../tokens/access";
import type { KeyRing } from "../../tokens/keys";
import type { JwtAlg } from "../../tokens/verifier";
import type { AuditLog } from "../audit/service";
import { AccountChanged, RefreshTokenReused, type SessionService } from "../sessions/service";
import type { UserIdentity } from "../users/service";
import type { LogoutNotices } from "./backchannel";
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
  /** The browser session that signed in (its sign-out logs the client out: back-channel logout). */
  browserSessionId: string;
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
export async function pruneOidcCodes(db: Db): Promise<void> {
  await db.delete(oidcCodes).where(lt(oidcCodes.expiresAt, new Date(Date.now() - CODE_KEEP_MS)));
}

/** Codes, consents, grants and the tokens of the OpenID Connect provider. */
export function createOidcService(deps: {
  db: Db;
  sessions: SessionService;
  accessTokens: AccessTokens;
  keyRing: KeyRing;
  audit: AuditLog;
  notices: LogoutNotices;
  settings: OidcSettings;
}) {
  const { db, sessions: sessionService, accessTokens, keyRing, audit, notices, settings } = deps;

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
    const principal = await sessionService.principal(sessionId);
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
  async function endGrants(userId: string, clientId: string, onlySessionId?: string): Promise<number> {
    const granted = await db
      .select({ id: oidcGrants.sessionId })
      .from(oidcGrants)
      .innerJoin(sessions, eq(sessions.id, oidcGrants.sessionId))
      .where(and(eq(oidcGrants.clientId, clientId), eq(sessions.userId, userId), onlySessionId ? eq(sessions.id, onlySessionId) : undefined));
    for (const { id } of granted) await sessionService.revoke(id);
    return granted.length;
  }

  return {
    /** Whether the user already consented to the client for every scope asked. */
    async hasConsent(userId: string, clientId: string, scope: string): Promise<boolean> {
      const [consent] = await db
        .select({ scope: oidcConsents.scope })
        .from(oidcConsents)
        .where(and(eq(oidcConsents.userId, userId), eq(oidcConsents.clientId, clientId)));
      if (!consent) return false;
      const granted = new Set(consent.scope.split(" "));
      return scope.split(" ").every((item) => granted.has(item));
    },

    async grantConsent(userId: string, clientId: string, scope: string, client: ClientInfo): Promise<void> {
      await db
        .insert(oidcConsents)
        .values({ userId, clientId, scope })
        .onConflictDoUpdate({ target: [oidcConsents.userId, oidcConsents.clientId], set: { scope, createdAt: new Date() } });
      await audit.record({ event: "oidc_consent_granted", userId, ...client, detail: { client_id: clientId, scope } });
    },

    async listConsents(userId: string) {
      const consents = await db
        .select({ client_id: oidcConsents.clientId, scope: oidcConsents.scope, created_at: oidcConsents.createdAt })
        .from(oidcConsents)
        .where(eq(oidcConsents.userId, userId))
        .orderBy(oidcConsents.clientId);
      return consents.map((consent) => ({ ...consent, created_at: consent.created_at.toISOString() }));
    },

    /** Forgets the consent and ends the client's grants for this user: it must ask again. False if there was none. */
    async revokeConsent(userId: string, clientId: string, client: ClientInfo): Promise<boolean> {
      const deleted = await db
        .delete(oidcConsents)
        .where(and(eq(oidcConsents.userId, userId), eq(oidcConsents.clientId, clientId)))
        .returning({ clientId: oidcConsents.clientId });
      if (deleted.length === 0) return false;
      const ended = await notices.around([userId], () => endGrants(userId, clientId));
      await audit.record({ event: "oidc_consent_revoked", userId, ...client, detail: { client_id: clientId, sessions_ended: ended } });
      return true;
    },

    /** A single-use code for the request (stored as SHA-256). */
    async issueCode(request: CodeRequest): Promise<string> {
      const code = randomToken(32);
      await db
        .insert(oidcCodes)
        .values({
          codeHash: sha256Hex(code),
          clientId: request.client.clientId,
          userId: request.userId,
          browserSessionId: request.browserSessionId,
          redirectUri: request.redirectUri,
          codeChallenge: request.codeChallenge,
          nonce: request.nonce,
          scope: request.scope,
          authTime: new Date(request.authTime),
          expiresAt: new Date(Date.now() + CODE_TTL_MS),
        });
      return code;
    },

    /**
     * authorization_code grant. The code works once (marked used before anything is issued); presenting it again
     * revokes the session it started (RFC 6749 §4.1.2, RFC 9700 §4.5). A code that fails a check is spent too.
     * Marking the code, opening its session and recording that session on the code are one transaction: a replay
     * (on this instance or another) comes in serial order before it (and is the one exchange) or after it (and
     * finds the session to revoke).
     */
    async exchangeCode(client: OidcClient, params: { code: string; redirectUri: string | undefined; codeVerifier: string | undefined }, from: ClientInfo) {
      const now = Date.now();
      const hash = sha256Hex(params.code);
      /** Why a presented code that was not yet used grants nothing (it is spent all the same). */
      const refusal = (code: typeof oidcCodes.$inferSelect): string | undefined => {
        if (code.expiresAt.getTime() <= now) return "The code has expired.";
        if (code.clientId !== client.clientId) return "The code was issued to another client.";
        if (params.redirectUri !== code.redirectUri) return "redirect_uri does not match the authorization request.";
        if (code.codeChallenge !== null) {
          if (!params.codeVerifier) return "code_verifier is required: the request used PKCE.";
          if (!pkceMatches(params.codeVerifier, code.codeChallenge)) return "code_verifier does not match the code_challenge.";
        } else if (params.codeVerifier) return "code_verifier given, but the request had no code_challenge.";
        return undefined;
      };
      const outcome = await transaction(db, function* (tx) {
        const code = yield* row(tx.select().from(oidcCodes).where(eq(oidcCodes.codeHash, hash)));
        if (!code) return { kind: "refused" as const, reason: "The code is unknown or expired." };
        if (code.usedAt !== null) return { kind: "replayed" as const, code };
        yield* changes(tx.update(oidcCodes).set({ usedAt: new Date(now) }).where(and(eq(oidcCodes.codeHash, hash), isNull(oidcCodes.usedAt))));
        const reason = refusal(code);
        if (reason) return { kind: "refused" as const, reason };
        let session;
        try {
          session = yield* sessionService.opening(tx, { userId: code.userId }, from);
        } catch (error) {
          if (error instanceof AccountChanged) return { kind: "refused" as const, reason: "The account behind this code was disabled or deleted." };
          throw error;
        }
        yield* changes(tx.insert(oidcGrants).values({ sessionId: session.sessionId, clientId: client.clientId, scope: code.scope, authTime: code.authTime, browserSessionId: code.browserSessionId }));
        yield* changes(tx.update(oidcCodes).set({ sessionId: session.sessionId }).where(eq(oidcCodes.codeHash, hash)));
        return { kind: "issued" as const, code, session };
      });
      if (outcome.kind === "refused") throw invalidGrant(outcome.reason);
      const { code } = outcome;
      if (outcome.kind === "replayed") {
        if (code.sessionId) await sessionService.revoke(code.sessionId);
        await audit.record({ event: "oidc_code_replayed", userId: code.userId, ...from, detail: { client_id: code.clientId, presented_by: client.clientId, session_revoked: code.sessionId !== null } });
        throw invalidGrant("The code was already used; the tokens issued from it are revoked.");
      }
      const { session } = outcome;
      await audit.record({ event: "oidc_code_exchanged", userId: code.userId, ...from, detail: { client_id: client.clientId, session_id: session.sessionId, scope: code.scope } });
      return tokensFor(session.sessionId, session.refreshToken, client.clientId, code.scope, code.authTime.getTime(), code.nonce);
    },

    /**
     * refresh_token grant: only the client the grant belongs to may use the token (checked before it is spent);
     * rotation and reuse detection are the sessions' (a reused token ends the grant).
     */
    async refresh(client: OidcClient, refreshToken: string, from: ClientInfo) {
      const [grant] = await db
        .select({ clientId: oidcGrants.clientId, scope: oidcGrants.scope, authTime: oidcGrants.authTime })
        .from(refreshTokens)
        .innerJoin(oidcGrants, eq(oidcGrants.sessionId, refreshTokens.sessionId))
        .where(eq(refreshTokens.tokenHash, sha256Hex(refreshToken)));
      if (!grant || grant.clientId !== client.clientId) throw invalidGrant("The refresh token is unknown, expired, revoked or another client's.");
      try {
        const rotated = await sessionService.rotate(refreshToken);
        return await tokensFor(rotated.principal.sessionId, rotated.refreshToken, client.clientId, grant.scope, grant.authTime.getTime());
      } catch (error) {
        if (error instanceof RefreshTokenReused) {
          await audit.record({ event: "refresh_reuse_detected", userId: error.userId, ...from, detail: { session_id: error.sessionId, client_id: client.clientId } });
          throw invalidGrant("This refresh token was already used; the grant has been revoked.");
        }
        if (error instanceof OAuthError) throw error;
        throw invalidGrant("The refresh token is unknown, expired or revoked.");
      }
    },

    endGrants,

    /** The grant a session belongs to, if it is one (RP-initiated logout's `sid`). */
    async grantOf(sessionId: string) {
      return (await db.select().from(oidcGrants).where(eq(oidcGrants.sessionId, sessionId)))[0];
    },

    /** When the session was signed in (its creation), for auth_time and max_age. */
    async authTimeOf(sessionId: string): Promise<number | undefined> {
      return (await db.select({ createdAt: sessions.createdAt }).from(sessions).where(eq(sessions.id, sessionId)))[0]?.createdAt.getTime();
    },
  };
}

export type OidcService = ReturnType<typeof createOidcService>;
