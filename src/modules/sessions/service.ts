import { and, desc, eq, gt, isNotNull, isNull, lt, ne, notInArray, or, sql } from "drizzle-orm";
import { changedRows, type Db, type Tx } from "../../db/client";
import { refreshTokens, sessions, users } from "../../db/schema";
import { principalUserColumns, type UserIdentity } from "../users/service";
import { ApiError, apiErrors, invalidRefreshToken, invalidToken } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { hmacBase64url, randomToken, sha256Hex } from "../../lib/crypto";

/** Who a live session belongs to: everything a protected route needs, from one indexed lookup. */
export interface SessionPrincipal extends UserIdentity {
  sessionId: string;
  sessionExpiresAt: number;
}

export interface SessionSettings {
  refreshTokenTtl: number;
  refreshReuseInterval: number;
  refreshRotationKey: Uint8Array;
  /**
   * Header mode: clients never call /refresh, they copy the sliding `Token`; so activity itself must move the
   * session's end (to now + refreshTokenTtl), or an active client would be signed out after refreshTokenTtl.
   */
  slideOnActivity?: boolean;
  /** Browser sessions (the session cookie) end after this long without activity (SESSION_IDLE_TTL, seconds). */
  browserIdleTtl?: number;
}

/** A browser session found by its cookie: the principal, plus the session a handoff opened it from. */
export interface BrowserSessionPrincipal extends SessionPrincipal {
  /** This session, or for one opened by a cross-domain handoff the session it came from: logout ends that one. */
  rootSessionId: string;
}

/** How long a looked-up session is trusted without asking the database again (other instances' revocations). */
const CACHE_TTL_MS = 1000;
/** Past this many cached sessions, entries older than CACHE_TTL_MS are swept (they would be re-read anyway). */
const CACHE_SWEEP_SIZE = 10_000;
/**
 * `last_seen_at` (and, when sessions slide on activity, `expires_at`) is written at most once a minute per
 * session, not on every request; more often only for sessions shorter than four minutes, so that they can slide.
 */
const ACTIVITY_RESOLUTION_MS = 60_000;

/** A spent refresh token came back after the grace window; the session is already revoked. */
export class RefreshTokenReused extends ApiError {
  constructor(
    readonly userId: string,
    readonly sessionId: string,
  ) {
    super(401, "refresh_token_reused", "This refresh token was already used; the session has been revoked.");
  }
}


/**
 * The account changed between the password check and the session insert (a sign-in still hashing while the
 * password was changed, the account disabled or deleted): the sign-in must fail, not resurrect a session.
 */
export class AccountChanged extends Error {
  constructor(readonly reason: "deleted" | "disabled" | "password_changed") {
    super(`account ${reason} during sign-in`);
  }
}

/** What a sign-in verified: the session it opens is inserted only while all of it still holds. */
export interface VerifiedAccount {
  userId: string;
  /** The hash the password was verified against; absent where no password was checked in this request. */
  passwordHash?: string;
}

/** Throws AccountChanged unless the user still exists, is enabled and (if given) still has the verified hash. */
function assertAccountUnchanged(tx: Tx | Db, account: VerifiedAccount): void {
  assertAccount(tx.select({ disabled: users.disabled, passwordHash: users.passwordHash }).from(users).where(eq(users.id, account.userId)).get(), account);
}

function assertAccount(row: { disabled: boolean; passwordHash: string } | undefined, account: VerifiedAccount): void {
  if (!row) throw new AccountChanged("deleted");
  if (row.disabled) throw new AccountChanged("disabled");
  if (account.passwordHash !== undefined && row.passwordHash !== account.passwordHash) throw new AccountChanged("password_changed");
}

/**
 * A write that a session authorises (a key, a password, a second factor, an admin's change) runs only while that
 * session is live, its user enabled and (given `role`) still holding that role, checked inside the write's own transaction: the 1-second principal cache may still
 * vouch for a session that another process (`latchkey user disable`) has just ended.
 */
export function assertSessionLive(tx: Tx, sessionId: string, role?: string): void {
  const live = tx
    .select({ roles: users.roles })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(sessions.id, sessionId), gt(sessions.expiresAt, new Date()), eq(users.disabled, false)))
    .get();
  if (!live) throw invalidToken("The session has ended.");
  // An admin demoted from another process within the cache's second is no admin for this write.
  if (role !== undefined && !live.roles.includes(role)) throw apiErrors.forbidden(`This needs the ${role} role.`);
}

/**
 * Spent refresh tokens kept per session for reuse detection. A spent token must still be recognised while its
 * session lives, so that replaying it revokes the session (RFC 9700 §4.14.2); but a session that refreshed 2,000
 * times must not hold 2,001 rows. A replayed token is almost always a recent one (the copy a thief took, or a
 * client's lost response), so the newest SPENT_TOKENS_KEPT are kept: every token of the last 32 rotations still
 * revokes its session when replayed; an older one is merely unknown (401 invalid_refresh_token), and was spent
 * long ago, so it grants nothing either way.
 */
export const SPENT_TOKENS_KEPT = 32;

function pruneSpentTokens(tx: Tx, sessionId: string): void {
  const keep = tx
    .select({ tokenHash: refreshTokens.tokenHash })
    .from(refreshTokens)
    .where(and(eq(refreshTokens.sessionId, sessionId), isNotNull(refreshTokens.spentAt)))
    // rowid is the insertion order, so the generation order (timestamps tie within a millisecond).
    .orderBy(desc(sql`rowid`))
    .limit(SPENT_TOKENS_KEPT);
  tx.delete(refreshTokens)
    .where(and(eq(refreshTokens.sessionId, sessionId), isNotNull(refreshTokens.spentAt), notInArray(refreshTokens.tokenHash, keep)))
    .run();
}

/** Caches a looked-up principal; past CACHE_SWEEP_SIZE entries, those older than CACHE_TTL_MS are swept first. */
function remember<P>(cache: Map<string, { principal: P; fetchedAt: number }>, key: string, principal: P, now: number): void {
  if (cache.size >= CACHE_SWEEP_SIZE) {
    for (const [id, entry] of cache) if (now - entry.fetchedAt >= CACHE_TTL_MS) cache.delete(id);
    // More distinct sessions than that within one second: start over rather than sweep on every insert.
    if (cache.size >= CACHE_SWEEP_SIZE) cache.clear();
  }
  cache.set(key, { principal, fetchedAt: now });
}

/** Deletes expired sessions; their refresh tokens go with them (ON DELETE CASCADE). */
export function pruneExpiredSessions(db: Db): number {
  return changedRows(db.delete(sessions).where(lt(sessions.expiresAt, new Date())).run());
}

export function revokeAllSessionsOfUser(db: Db, userId: string): number {
  return changedRows(db.delete(sessions).where(eq(sessions.userId, userId)).run());
}

export function createSessionService(db: Db, settings: SessionSettings) {
  const cache = new Map<string, { principal: SessionPrincipal; fetchedAt: number }>();
  const refreshTtlMs = settings.refreshTokenTtl * 1000;
  const graceMs = settings.refreshReuseInterval * 1000;
  const activityResolutionMs = Math.min(ACTIVITY_RESOLUTION_MS, refreshTtlMs / 4);

  const livePrincipal = db
    .select({
      sessionId: sessions.id,
      sessionExpiresAt: sessions.expiresAt,
      lastSeenAt: sessions.lastSeenAt,
      ...principalUserColumns,
    })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.id, sql.placeholder("sid")))
    .prepare();

  /** The child is derived from the parent, so a retry within the grace window gets the same child back. */
  const childOf = (token: string) => hmacBase64url(settings.refreshRotationKey, token);

  const touch = db
    .update(sessions)
    .set(
      settings.slideOnActivity
        ? { lastSeenAt: sql`${sql.placeholder("now")}`, expiresAt: sql`${sql.placeholder("now")} + ${refreshTtlMs}` }
        : { lastSeenAt: sql`${sql.placeholder("now")}` },
    )
    .where(eq(sessions.id, sql.placeholder("sid")))
    .prepare();

  // A sign-in's session insert, in one IMMEDIATE transaction with the re-check of the account it verified (and, for
  // a refresh-token session, its first token). Prepared once and run in bun:sqlite's own transaction: drizzle's
  // db.transaction builds a transaction object with a query builder per table, and drizzle prepares each statement
  // anew (profiled: together about a fifth of a sign-in's event-loop time). The asynchronous data layer
  // (PostgreSQL) must run these on its transaction's connection instead.
  const accountById = db
    .select({ disabled: users.disabled, passwordHash: users.passwordHash })
    .from(users)
    .where(eq(users.id, sql.placeholder("id")))
    .prepare();
  const insertSession = db
    .insert(sessions)
    .values({
      id: sql.placeholder("id"),
      userId: sql.placeholder("userId"),
      createdAt: sql.placeholder("createdAt"),
      lastSeenAt: sql.placeholder("lastSeenAt"),
      expiresAt: sql.placeholder("expiresAt"),
      ip: sql.placeholder("ip"),
      userAgent: sql.placeholder("userAgent"),
      browserTokenHash: sql.placeholder("browserTokenHash"),
      parentId: sql.placeholder("parentId"),
    })
    .prepare();
  const insertRefreshToken = db.insert(refreshTokens).values({ tokenHash: sql.placeholder("tokenHash"), sessionId: sql.placeholder("sessionId") }).prepare();
  const openSession = db.$client.transaction((account: VerifiedAccount, row: typeof sessions.$inferInsert, refreshTokenHash?: string) => {
    assertAccount(accountById.get({ id: account.userId }), account);
    insertSession.run(row);
    if (refreshTokenHash !== undefined) insertRefreshToken.run({ tokenHash: refreshTokenHash, sessionId: row.id });
  });

  /**
   * The live session's principal, or undefined if it ended, expired or its user is disabled. Read from the
   * database at most once a second per session (one primary-key lookup), which also records the activity
   * (see ACTIVITY_RESOLUTION_MS).
   */
  function principal(sessionId: string): SessionPrincipal | undefined {
    const now = Date.now();
    const cached = cache.get(sessionId);
    if (cached && now - cached.fetchedAt < CACHE_TTL_MS && cached.principal.sessionExpiresAt > now) return cached.principal;
    const row = livePrincipal.get({ sid: sessionId });
    if (!row || row.disabled || row.sessionExpiresAt.getTime() <= now) {
      cache.delete(sessionId);
      return undefined;
    }
    const { disabled: _disabled, sessionExpiresAt, lastSeenAt, ...rest } = row;
    let expiresAt = sessionExpiresAt.getTime();
    if (now - lastSeenAt.getTime() >= activityResolutionMs) {
      touch.run({ sid: sessionId, now });
      if (settings.slideOnActivity) expiresAt = now + refreshTtlMs;
    }
    const found = { ...rest, sessionExpiresAt: expiresAt };
    remember(cache, sessionId, found, now);
    return found;
  }

  /** How many sessions are cached (for tests of the cache bound). */
  const cachedSessions = () => cache.size;

  /** Drops the user's cached sessions, so changed roles or a disabled flag are read again on the next request. */
  function forgetUser(userId: string): void {
    for (const [sessionId, entry] of cache) if (entry.principal.userId === userId) cache.delete(sessionId);
    for (const [hash, entry] of browserCache) if (entry.principal.userId === userId) browserCache.delete(hash);
  }

  function revoke(sessionId: string): void {
    db.delete(sessions).where(eq(sessions.id, sessionId)).run();
    cache.delete(sessionId);
    forgetBrowserSessions((entry) => entry.principal.sessionId === sessionId || entry.principal.rootSessionId === sessionId);
  }

  // Browser sessions: looked up by the cookie's SHA-256, cached for CACHE_TTL_MS like access-token sessions, so
  // a sign-out, a disabled account or a deleted user is seen within a second (in this process at once).
  const browserIdleMs = (settings.browserIdleTtl ?? settings.refreshTokenTtl) * 1000;
  const browserActivityMs = Math.min(ACTIVITY_RESOLUTION_MS, browserIdleMs / 4);
  const browserCache = new Map<string, { principal: BrowserSessionPrincipal; fetchedAt: number }>();
  const browserByHash = db
    .select({
      sessionId: sessions.id,
      parentId: sessions.parentId,
      sessionExpiresAt: sessions.expiresAt,
      lastSeenAt: sessions.lastSeenAt,
      ...principalUserColumns,
    })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.browserTokenHash, sql.placeholder("hash")))
    .prepare();
  // Sliding idle expiry inside the absolute one: expires_at = min(now + idle, created_at + REFRESH_TOKEN_TTL).
  const touchBrowser = db
    .update(sessions)
    .set({
      lastSeenAt: sql`${sql.placeholder("now")}`,
      expiresAt: sql`min(${sql.placeholder("now")} + ${browserIdleMs}, ${sessions.createdAt} + ${refreshTtlMs})`,
    })
    .where(eq(sessions.id, sql.placeholder("sid")))
    .returning({ expiresAt: sessions.expiresAt })
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
  function browserPrincipal(token: string): BrowserSessionPrincipal | undefined {
    const now = Date.now();
    const hash = sha256Hex(token);
    const cached = browserCache.get(hash);
    if (cached && now - cached.fetchedAt < CACHE_TTL_MS && cached.principal.sessionExpiresAt > now) return cached.principal;
    const row = browserByHash.get({ hash });
    if (!row || row.disabled || row.sessionExpiresAt.getTime() <= now) {
      browserCache.delete(hash);
      return undefined;
    }
    const { disabled: _disabled, sessionExpiresAt, lastSeenAt, parentId, ...rest } = row;
    let expiresAt = sessionExpiresAt.getTime();
    if (now - lastSeenAt.getTime() >= browserActivityMs) expiresAt = touchBrowser.get({ sid: row.sessionId, now })?.expiresAt.getTime() ?? expiresAt;
    const found = { ...rest, sessionExpiresAt: expiresAt, rootSessionId: parentId ?? row.sessionId };
    remember(browserCache, hash, found, now);
    return found;
  }

  return {
    /** Starts a session and returns its first refresh token (256 random bits; only its hash is stored). */
    create(account: VerifiedAccount, client: ClientInfo): { sessionId: string; expiresAt: number; refreshToken: string } {
      const { userId } = account;
      const now = Date.now();
      const sessionId = randomToken(18);
      const refreshToken = randomToken(32);
      openSession.immediate(account, {
        id: sessionId,
        userId,
        createdAt: new Date(now),
        lastSeenAt: new Date(now),
        expiresAt: new Date(now + refreshTtlMs),
        ip: client.ip,
        userAgent: client.userAgent,
        browserTokenHash: null,
        parentId: null,
      }, sha256Hex(refreshToken));
      return { sessionId, expiresAt: now + refreshTtlMs, refreshToken };
    },

    /**
     * Spends a refresh token and returns its child. Presenting a spent token again within the reuse interval,
     * while its child is still the live one, returns that same child (a lost response or two tabs); any other
     * reuse revokes the whole session (RFC 9700 §4.14.2).
     */
    rotate(refreshToken: string): { principal: SessionPrincipal; refreshToken: string } {
      const now = Date.now();
      const outcome = db.transaction(
        (tx) => {
          const row = tx
            .select({
              spentAt: refreshTokens.spentAt,
              sessionId: refreshTokens.sessionId,
              userId: sessions.userId,
              expiresAt: sessions.expiresAt,
              disabled: users.disabled,
            })
            .from(refreshTokens)
            .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
            .innerJoin(users, eq(users.id, sessions.userId))
            .where(eq(refreshTokens.tokenHash, sha256Hex(refreshToken)))
            .get();
          if (!row || row.expiresAt.getTime() <= now || row.disabled) return { kind: "invalid" as const };

          const child = childOf(refreshToken);
          if (row.spentAt === null) {
            // The spentAt IS NULL guard makes two concurrent rotations of one token produce one child, even across processes.
            const spent = tx
              .update(refreshTokens)
              .set({ spentAt: new Date(now) })
              .where(and(eq(refreshTokens.tokenHash, sha256Hex(refreshToken)), isNull(refreshTokens.spentAt)))
              .run();
            if (changedRows(spent) !== 1) return { kind: "invalid" as const };
            tx.insert(refreshTokens).values({ tokenHash: sha256Hex(child), sessionId: row.sessionId }).run();
            pruneSpentTokens(tx, row.sessionId);
            tx.update(sessions)
              .set({ lastSeenAt: new Date(now), expiresAt: new Date(now + refreshTtlMs) })
              .where(eq(sessions.id, row.sessionId))
              .run();
            return { kind: "rotated" as const, sessionId: row.sessionId, child };
          }

          const withinGrace = graceMs > 0 && now - row.spentAt.getTime() <= graceMs;
          if (withinGrace) {
            const childRow = tx
              .select({ spentAt: refreshTokens.spentAt })
              .from(refreshTokens)
              .where(eq(refreshTokens.tokenHash, sha256Hex(child)))
              .get();
            if (childRow && childRow.spentAt === null) return { kind: "rotated" as const, sessionId: row.sessionId, child };
          }
          tx.delete(sessions).where(eq(sessions.id, row.sessionId)).run();
          return { kind: "reused" as const, sessionId: row.sessionId, userId: row.userId };
        },
        { behavior: "immediate" },
      );

      if (outcome.kind === "invalid") throw invalidRefreshToken();
      cache.delete(outcome.sessionId);
      if (outcome.kind === "reused") throw new RefreshTokenReused(outcome.userId, outcome.sessionId);
      const live = principal(outcome.sessionId);
      if (!live) throw invalidRefreshToken();
      return { principal: live, refreshToken: outcome.child };
    },

    /**
     * Starts a browser session and returns its cookie value (256 random bits; only its SHA-256 is stored). With
     * `parentId` (a cross-domain handoff) it ends when that session ends.
     */
    createBrowser(account: VerifiedAccount, client: ClientInfo, parentId?: string): { sessionId: string; token: string; expiresAt: number } {
      const { userId } = account;
      const now = Date.now();
      const sessionId = randomToken(18);
      const token = randomToken(32);
      const expiresAt = now + Math.min(browserIdleMs, refreshTtlMs);
      openSession.immediate(account, {
        id: sessionId,
        userId,
        createdAt: new Date(now),
        lastSeenAt: new Date(now),
        expiresAt: new Date(expiresAt),
        ip: client.ip,
        userAgent: client.userAgent,
        browserTokenHash: sha256Hex(token),
        parentId: parentId ?? null,
      });
      return { sessionId, token, expiresAt };
    },

    browserPrincipal,

    /**
     * The user of a live browser session, by its id (the source of a cross-domain handoff); undefined if it ended,
     * expired, its user is disabled, or it is not a browser session. Reads without touching it (no sliding).
     */
    browserSessionOwner(sessionId: string): string | undefined {
      const row = browserOwner.get({ sid: sessionId });
      return row && !row.disabled && row.expiresAt.getTime() > Date.now() ? row.userId : undefined;
    },

    principal,

    revoke,

    /** The user's live sessions, newest first. */
    list(userId: string) {
      return db
        .select({
          id: sessions.id,
          createdAt: sessions.createdAt,
          lastSeenAt: sessions.lastSeenAt,
          ip: sessions.ip,
          userAgent: sessions.userAgent,
        })
        .from(sessions)
        .where(and(eq(sessions.userId, userId), gt(sessions.expiresAt, new Date())))
        .orderBy(desc(sessions.createdAt))
        .all();
    },

    /** Ends one of the user's own sessions; another user's session is "not found" (no existence leak). */
    revokeOwned(userId: string, sessionId: string): void {
      const deleted = db.delete(sessions).where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId))).run();
      cache.delete(sessionId);
      forgetBrowserSessions((entry) => entry.principal.sessionId === sessionId || entry.principal.rootSessionId === sessionId);
      if (changedRows(deleted) !== 1) throw apiErrors.session_not_found("No such session.");
    },

    /** Ends every session of the user except `keepSessionId`; returns how many ended. */
    revokeOthers(userId: string, keepSessionId: string): number {
      // A browser session kept is kept with its handoff family: the session it came from and its siblings.
      const root = db.select({ parentId: sessions.parentId }).from(sessions).where(eq(sessions.id, keepSessionId)).get()?.parentId ?? keepSessionId;
      const deleted = db
        .delete(sessions)
        .where(and(eq(sessions.userId, userId), ne(sessions.id, root), or(isNull(sessions.parentId), ne(sessions.parentId, root))))
        .run();
      forgetUser(userId);
      return changedRows(deleted);
    },

    /** Ends every session of a user (password set from the CLI, account disabled). */
    revokeAllForUser(userId: string): number {
      const ended = revokeAllSessionsOfUser(db, userId);
      forgetUser(userId);
      return ended;
    },

    forgetUser,

    /** Throws AccountChanged unless the account is as a sign-in verified it (before opening a challenge). */
    assertAccountUnchanged: (account: VerifiedAccount) => assertAccountUnchanged(db, account),

    cachedSessions,
  };
}

export type SessionService = ReturnType<typeof createSessionService>;
