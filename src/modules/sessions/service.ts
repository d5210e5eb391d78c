import { and, desc, eq, gt, isNull, lt, ne, or, sql } from "drizzle-orm";
import { changedRows, row, run, transaction, type Atomic } from "../../db/atomic";
import type { Db } from "../../db/client";
import { peersOf } from "../../db/peers";
import { sessions, users } from "../../db/tables";
import { ApiError, apiErrors, invalidRefreshToken, invalidToken } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { randomToken, sha256Hex } from "../../lib/crypto";
import type { Pending } from "../../lib/pending";
import { assertAccountUnchanged, insertSession, type VerifiedAccount } from "./account-check";
import { createBrowserSessions } from "./browser";
import { ACTIVITY_RESOLUTION_MS, authenticationColumns, authenticationFrom, CACHE_TTL_MS, recordActivity, remember, sessionPrincipalColumns } from "./lookup";
import type { Authentication, SessionPrincipal, SessionSettings } from "./model";
import { rotation } from "./rotation";

export type { Authentication, BrowserSessionPrincipal, SessionPrincipal, SessionSettings } from "./model";

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
 * A write that a session authorises (a key, a password, a second factor, an admin's change) runs only while that
 * session is live, its user enabled and (given `role`) still holding that role, checked inside the write's own transaction: the 1-second principal cache may still
 * vouch for a session that another process (`latchkey user disable`) has just ended.
 */
export function* assertSessionLive(tx: Db, sessionId: string, role?: string): Atomic<void> {
  const live = yield* row(tx.select({ roles: users.roles }).from(sessions).innerJoin(users, eq(users.id, sessions.userId)).where(liveSession(sessionId)));
  if (!live) throw invalidToken("The session has ended.");
  // An admin demoted from another process within the cache's second is no admin for this write.
  if (role !== undefined && !live.roles.includes(role)) throw apiErrors.forbidden(`This needs the ${role} role.`);
}

/** The session is unexpired and its user enabled. */
const liveSession = (sessionId: string) => and(eq(sessions.id, sessionId), gt(sessions.expiresAt, new Date()), eq(users.disabled, false));

/**
 * assertSessionLive for a write whose proof is the session's own sign-in (a recent passkey, for an account without
 * a password): that authentication, and the account's password hash, read in the write's transaction.
 */
export function* liveAuthentication(tx: Db, sessionId: string): Atomic<Authentication & { passwordHash: string | null }> {
  const live = yield* row(
    tx
      .select({ ...authenticationColumns(), passwordHash: users.passwordHash })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(liveSession(sessionId)),
  );
  if (!live) throw invalidToken("The session has ended.");
  return { ...authenticationFrom(live), passwordHash: live.passwordHash };
}

/** Deletes expired sessions; their refresh tokens go with them (ON DELETE CASCADE). */
export async function pruneExpiredSessions(db: Db): Promise<number> {
  return changedRows(await db.delete(sessions).where(lt(sessions.expiresAt, new Date())));
}

export async function revokeAllSessionsOfUser(db: Db, userId: string): Promise<number> {
  return changedRows(await db.delete(sessions).where(eq(sessions.userId, userId)));
}

export function createSessionService(db: Db, settings: SessionSettings) {
  const cache = new Map<string, { principal: SessionPrincipal; fetchedAt: number }>();
  const refreshTtlMs = settings.refreshTokenTtl * 1000;
  const graceMs = settings.refreshReuseInterval * 1000;
  const activityResolutionMs = Math.min(ACTIVITY_RESOLUTION_MS, refreshTtlMs / 4);
  const browser = createBrowserSessions(db, settings);

  const livePrincipal = db
    .select(sessionPrincipalColumns())
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.id, sql.placeholder("sid")))
    .prepare();

  /**
   * Starts a session in the caller's transaction and returns its first refresh token (256 random bits; only its
   * hash is stored), with how its user authenticated (RFC 8176 amr); with `clientId` it is an OpenID Connect
   * client's grant, carrying the authentication (and its time) of the sign-in it came from.
   */
  function* opening(tx: Db, account: VerifiedAccount, client: ClientInfo, grant: { clientId?: string; authTime?: number; amr: string[] }): Atomic<{ sessionId: string; expiresAt: number; refreshToken: string }> {
    const now = Date.now();
    const sessionId = randomToken(18);
    const refreshToken = randomToken(32);
    const session = {
      id: sessionId,
      userId: account.userId,
      createdAt: new Date(now),
      lastSeenAt: new Date(now),
      expiresAt: new Date(now + refreshTtlMs),
      ip: client.ip,
      userAgent: client.userAgent,
      browserTokenHash: null,
      parentId: null,
      clientId: grant.clientId ?? null,
      authTime: new Date(grant.authTime ?? now),
      amr: grant.amr,
    };
    yield* insertSession(tx, account, session, sha256Hex(refreshToken));
    return { sessionId, expiresAt: now + refreshTtlMs, refreshToken };
  }

  /**
   * The live session's principal, or undefined if it ended, expired or its user is disabled. Read from the
   * database at most once a second per session (one primary-key lookup), which also records the activity
   * (see ACTIVITY_RESOLUTION_MS).
   */
  function principal(sessionId: string): Pending<SessionPrincipal | undefined> {
    const now = Date.now();
    const cached = cache.get(sessionId);
    if (cached && now - cached.fetchedAt < CACHE_TTL_MS && cached.principal.sessionExpiresAt > now) return cached.principal;
    return run(db, function* () {
      const found = yield* row(livePrincipal, { sid: sessionId });
      if (!found || found.disabled || found.sessionExpiresAt.getTime() <= now) {
        cache.delete(sessionId);
        return undefined;
      }
      const { disabled: _disabled, sessionExpiresAt, lastSeenAt, ...rest } = found;
      let expiresAt = sessionExpiresAt.getTime();
      if (now - lastSeenAt.getTime() >= activityResolutionMs) {
        if (settings.slideOnActivity) expiresAt = now + refreshTtlMs;
        yield* recordActivity(db, sessionId, now, settings.slideOnActivity ? expiresAt : undefined);
      }
      const live = { ...rest, sessionExpiresAt: expiresAt };
      remember(cache, sessionId, live, now);
      return live;
    });
  }

  /** How many sessions are cached (for tests of the cache bound). */
  const cachedSessions = () => cache.size;

  function forgetUserHere(userId: string): void {
    for (const [sessionId, entry] of cache) if (entry.principal.userId === userId) cache.delete(sessionId);
    browser.forgetUser(userId);
  }

  function forgetSessionHere(sessionId: string): void {
    cache.delete(sessionId);
    browser.forgetSession(sessionId);
  }

  // Other instances' revocations (db/peers.ts); the API-key service hears the same announcements.
  const peers = peersOf(db);
  peers.listen((revocation) => {
    if (revocation.kind === "user") forgetUserHere(revocation.id);
    else if (revocation.kind === "session") forgetSessionHere(revocation.id);
  });

  /**
   * Drops the user's cached sessions (and, through the announcement, their cached API keys), here and on every
   * other instance, so changed roles or a disabled flag are read again on the next request.
   */
  async function forgetUser(userId: string): Promise<void> {
    forgetUserHere(userId);
    await peers.announce({ kind: "user", id: userId });
  }

  async function forgetSession(sessionId: string): Promise<void> {
    forgetSessionHere(sessionId);
    await peers.announce({ kind: "session", id: sessionId });
  }

  const revoked = settings.onRevoked ?? (() => {});

  async function revoke(sessionId: string): Promise<void> {
    revoked(changedRows(await db.delete(sessions).where(eq(sessions.id, sessionId))));
    await forgetSession(sessionId);
  }

  return {
    /**
     * Starts a session and returns its first refresh token (256 random bits; only its hash is stored). `amr`: how
     * the sign-in authenticated (RFC 8176); rotations keep it, being the same session.
     */
    create: (account: VerifiedAccount, client: ClientInfo, amr: string[]) => transaction(db, (tx) => opening(tx, account, client, { amr })),

    opening,

    /**
     * Spends a refresh token and returns its child. Presenting a spent token again within the reuse interval,
     * while its child is still the live one, returns that same child (a lost response or two tabs); any other
     * reuse revokes the whole session (RFC 9700 §4.14.2).
     */
    async rotate(refreshToken: string, clientId: string | null = null): Promise<{ principal: SessionPrincipal; refreshToken: string }> {
      const now = Date.now();
      const outcome = await transaction(db, (tx) => rotation(tx, refreshToken, clientId, { now, graceMs, refreshTtlMs, rotationKey: settings.refreshRotationKey }));

      if (outcome.kind === "invalid") throw invalidRefreshToken();
      if (outcome.kind === "client's") throw invalidToken("This refresh token was issued to an OpenID Connect client: it works only at /oidc/token, with that client's authentication.");
      if (outcome.kind === "reused") {
        revoked(1);
        await forgetSession(outcome.sessionId);
        throw new RefreshTokenReused(outcome.userId, outcome.sessionId);
      }
      cache.delete(outcome.sessionId);
      // Also the backstop of every `invalid` outcome above (mutation testing finds either check alone enough, and an
      // outcome emptied to {} ends here too); otherwise met only by a session a concurrent revocation just ended.
      const live = await principal(outcome.sessionId);
      if (!live) throw invalidRefreshToken();
      return { principal: live, refreshToken: outcome.child };
    },

    createBrowser: browser.createBrowser,
    browserPrincipal: browser.browserPrincipal,
    browserSessionOwner: browser.browserSessionOwner,

    /** The last real authentication behind a session (OIDC auth_time and amr), or undefined if it ended. */
    async authenticationOf(sessionId: string): Promise<Authentication | undefined> {
      const [found] = await db.select(authenticationColumns()).from(sessions).where(eq(sessions.id, sessionId));
      return found && authenticationFrom(found);
    },

    principal,

    revoke,

    /** The user's live sessions, newest first. */
    async list(userId: string) {
      return await db
        .select({
          id: sessions.id,
          createdAt: sessions.createdAt,
          lastSeenAt: sessions.lastSeenAt,
          ip: sessions.ip,
          userAgent: sessions.userAgent,
        })
        .from(sessions)
        .where(and(eq(sessions.userId, userId), gt(sessions.expiresAt, new Date())))
        .orderBy(desc(sessions.createdAt));
    },

    /** Ends one of the user's own sessions; another user's session is "not found" (no existence leak). */
    async revokeOwned(userId: string, sessionId: string): Promise<void> {
      const deleted = changedRows(await db.delete(sessions).where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId))));
      if (deleted !== 1) throw apiErrors.session_not_found("No such session.");
      revoked(1);
      await forgetSession(sessionId);
    },

    /** Ends every session of the user except `keepSessionId`; returns how many ended. */
    async revokeOthers(userId: string, keepSessionId: string): Promise<number> {
      // A browser session kept is kept with its handoff family: the session it came from and its siblings.
      const [kept] = await db.select({ parentId: sessions.parentId }).from(sessions).where(eq(sessions.id, keepSessionId));
      const root = kept?.parentId ?? keepSessionId;
      const deleted = await db
        .delete(sessions)
        .where(and(eq(sessions.userId, userId), ne(sessions.id, root), or(isNull(sessions.parentId), ne(sessions.parentId, root))));
      revoked(changedRows(deleted));
      await forgetUser(userId);
      return changedRows(deleted);
    },

    /** Ends every session of a user (password set from the CLI, account disabled). */
    async revokeAllForUser(userId: string): Promise<number> {
      const ended = await revokeAllSessionsOfUser(db, userId);
      revoked(ended);
      await forgetUser(userId);
      return ended;
    },

    forgetUser,

    /** Throws AccountChanged unless the account is as a sign-in verified it (before opening a challenge). */
    assertAccountUnchanged: (account: VerifiedAccount) => assertAccountUnchanged(db, account),

    cachedSessions,
  };
}

export type SessionService = ReturnType<typeof createSessionService>;
