import { and, eq, lt } from "drizzle-orm";
import type { Db } from "../../db/client";
import { oidcCodes, oidcConsents, oidcGrants, sessions } from "../../db/tables";
import type { ClientInfo } from "../../http/client-ip";
import { randomToken, sha256Hex } from "../../lib/crypto";
import type { JwtAlg } from "../../lib/jwt-algs";
import type { AuditLog } from "../audit/service";
import type { SessionService } from "../sessions/service";
import type { LogoutNotices } from "./backchannel";
import type { OidcClient } from "./clients";

/** Codes live 60 s (RFC 6749 §4.1.2 recommends at most 10 minutes; nothing needs more than a redirect's time). */
export const CODE_TTL_MS = 60_000;
/** Used and expired codes are kept this long, so that a late replay still revokes what the code issued. */
const CODE_KEEP_MS = 86_400_000;

export interface OidcSettings {
  issuer: string;
  /** OIDC_ID_TOKEN_ALG: ID tokens of clients without their own id_token_alg, and every client access token. */
  idTokenAlg: Exclude<JwtAlg, "HS256">;
  /** ID tokens live as long as access tokens. */
  tokenTtl: number;
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
  amr: string[];
}

/** Deletes codes past their keeping time. */
export async function pruneOidcCodes(db: Db): Promise<void> {
  await db.delete(oidcCodes).where(lt(oidcCodes.expiresAt, new Date(Date.now() - CODE_KEEP_MS)));
}

/** Consents, codes and the grants' lifecycle of the OpenID Connect provider (what they issue: grants.ts). */
export function createOidcService(deps: { db: Db; sessions: SessionService; audit: AuditLog; notices: LogoutNotices }) {
  const { db, sessions: sessionService, audit, notices } = deps;

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
          amr: request.amr,
          expiresAt: new Date(Date.now() + CODE_TTL_MS),
        });
      return code;
    },

    endGrants,

    /** The grant a session belongs to, if it is one (RP-initiated logout's `sid`). */
    async grantOf(sessionId: string) {
      return (await db.select().from(oidcGrants).where(eq(oidcGrants.sessionId, sessionId)))[0];
    },

    /** The browser session's last real authentication (a handoff or a refresh renews nothing), for auth_time and max_age. */
    authenticationOf: (sessionId: string) => sessionService.authenticationOf(sessionId),
  };
}

export type OidcService = ReturnType<typeof createOidcService>;
