import { and, eq, isNotNull, sql } from "drizzle-orm";
import { row, run, transaction } from "../../db/atomic";
import type { Db } from "../../db/client";
import { sessions, users } from "../../db/tables";
import type { ClientInfo } from "../../http/client-ip";
import { randomToken, sha256Hex } from "../../lib/crypto";
import type { Pending } from "../../lib/pending";
import { AccountChanged, insertSession, type VerifiedAccount } from "./account-check";
import { ACTIVITY_RESOLUTION_MS, authenticationColumns, authenticationFrom, CACHE_TTL_MS, recordActivity, remember, sessionPrincipalColumns } from "./lookup";
import type { Authentication, BrowserSessionPrincipal, SessionSettings } from "./model";

/**
 * Browser sessions (the session cookie): looked up by the cookie's SHA-256, cached for CACHE_TTL_MS like
 * access-token sessions, so a sign-out, a disabled account or a deleted user is seen within a second (in this
 * process at once); they end after SESSION_IDLE_TTL without activity, and REFRESH_TOKEN_TTL after they began.
 */
export function createBrowserSessions(db: Db, settings: SessionSettings) {
  const refreshTtlMs = settings.refreshTokenTtl * 1000;
  const browserIdleMs = (settings.browserIdleTtl ?? settings.refreshTokenTtl) * 1000;
  const browserActivityMs = Math.min(ACTIVITY_RESOLUTION_MS, browserIdleMs / 4);
  const browserCache = new Map<string, { principal: BrowserSessionPrincipal; fetchedAt: number }>();
  const browserByHash = db
    .select({ ...sessionPrincipalColumns(), parentId: sessions.parentId, sessionCreatedAt: sessions.createdAt })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.browserTokenHash, sql.placeholder("hash")))
    .prepare();

  const browserOwner = db
    .select({ userId: sessions.userId, disabled: users.disabled, expiresAt: sessions.expiresAt })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(sessions.id, sql.placeholder("sid")), isNotNull(sessions.browserTokenHash)))
    .prepare();

  function forgetBrowserSessions(matches: (entry: { principal: BrowserSessionPrincipal }) => boolean): void {
    for (const [hash, entry] of browserCache) if (matches(entry)) browserCache.delete(hash);
  }

  /** The live browser session behind a cookie value, or undefined (unknown, signed out, idle, expired, disabled). */
  function browserPrincipal(token: string): Pending<BrowserSessionPrincipal | undefined> {
    const now = Date.now();
    const hash = sha256Hex(token);
    const cached = browserCache.get(hash);
    if (cached && now - cached.fetchedAt < CACHE_TTL_MS && cached.principal.sessionExpiresAt > now) return cached.principal;
    return run(db, function* () {
      const found = yield* row(browserByHash, { hash });
      if (!found || found.disabled || found.sessionExpiresAt.getTime() <= now) {
        browserCache.delete(hash);
        return undefined;
      }
      const { disabled: _disabled, sessionExpiresAt, lastSeenAt, parentId, sessionCreatedAt, ...rest } = found;
      let expiresAt = sessionExpiresAt.getTime();
      if (now - lastSeenAt.getTime() >= browserActivityMs) {
        // Sliding idle expiry inside the absolute one: min(now + idle, created + REFRESH_TOKEN_TTL).
        expiresAt = Math.min(now + browserIdleMs, sessionCreatedAt.getTime() + refreshTtlMs);
        yield* recordActivity(db, found.sessionId, now, expiresAt);
      }
      const live = { ...rest, sessionExpiresAt: expiresAt, rootSessionId: parentId ?? found.sessionId };
      remember(browserCache, hash, live, now);
      return live;
    });
  }

  return {
    /**
     * Starts a browser session and returns its cookie value (256 random bits; only its SHA-256 is stored). With
     * `parentId` (a cross-domain handoff) it ends when that session ends.
     */
    async createBrowser(account: VerifiedAccount, client: ClientInfo, from: { amr: string[] } | { parentId: string }): Promise<{ sessionId: string; token: string; expiresAt: number }> {
      const { userId } = account;
      const now = Date.now();
      const sessionId = randomToken(18);
      const token = randomToken(32);
      const expiresAt = now + Math.min(browserIdleMs, refreshTtlMs);
      const parentId = "parentId" in from ? from.parentId : undefined;
      await transaction(db, function* (tx) {
        // A handoff authenticates nobody: the new session carries its parent's authentication (OIDC auth_time,
        // so prompt=login and max_age still ask for the password).
        let authentication: Authentication = { authTime: now, amr: "amr" in from ? from.amr : [] };
        if (parentId !== undefined) {
          const parent = yield* row(tx.select(authenticationColumns()).from(sessions).where(eq(sessions.id, parentId)));
          if (!parent) throw new AccountChanged("deleted");
          authentication = authenticationFrom(parent);
        }
        yield* insertSession(tx, account, {
          id: sessionId,
          userId,
          createdAt: new Date(now),
          lastSeenAt: new Date(now),
          expiresAt: new Date(expiresAt),
          ip: client.ip,
          userAgent: client.userAgent,
          browserTokenHash: sha256Hex(token),
          parentId: parentId ?? null,
          authTime: new Date(authentication.authTime),
          amr: authentication.amr,
        });
      });
      return { sessionId, token, expiresAt };
    },

    browserPrincipal,

    /**
     * The user of a live browser session, by its id (the source of a cross-domain handoff); undefined if it ended,
     * expired, its user is disabled, or it is not a browser session. Reads without touching it (no sliding).
     */
    async browserSessionOwner(sessionId: string): Promise<string | undefined> {
      const [owner] = await browserOwner.execute({ sid: sessionId });
      return owner && !owner.disabled && owner.expiresAt.getTime() > Date.now() ? owner.userId : undefined;
    },

    /** Forgets the cached sessions of a user (changed roles, a disabled account). */
    forgetUser(userId: string): void {
      forgetBrowserSessions((entry) => entry.principal.userId === userId);
    },

    /** Forgets a session, and the sessions a handoff opened from it. */
    forgetSession(sessionId: string): void {
      forgetBrowserSessions((entry) => entry.principal.sessionId === sessionId || entry.principal.rootSessionId === sessionId);
    },
  };
}
