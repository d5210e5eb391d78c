import { and, desc, eq, gt, isNotNull, isNull, lt, ne, notInArray, or, sql } from "drizzle-orm";
import { changedRows, changes, isPostgres, row, run, transaction, type Atomic } from "../../db/atomic";
import type { Pending } from "../../lib/pending";
import type { Db } from "../../db/client";
import { peersOf } from "../../db/peers";
import { refreshTokens, sessions, users } from "../../db/tables";
import { principalUserColumns, type UserIdentity } from "../users/service";
import { ApiError, apiErrors, invalidRefreshToken, invalidToken } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { hmacBase64url, randomToken, sha256Hex } from "../../lib/crypto";

/** Who a live session belongs to: everything a protected route needs, from one indexed lookup. */
export interface SessionPrincipal extends UserIdentity {
  sessionId: string;
  sessionExpiresAt: number;
  /** The OpenID Connect client the session is a grant of: its tokens are that client's, never Latchkey's own. */
  clientId: string | null;
  /** How the session's user last authenticated (RFC 8176 amr): forward auth's `require = "passkey"` reads `hwk`. */
  amr: string[];
}

/** The last real authentication behind a session: when (unix ms) and how (RFC 8176 amr). */
export interface Authentication {
  authTime: number;
  amr: string[];
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
  /** Told how many sessions each revocation ended (/metrics). */
  onRevoked?: (sessions: number) => void;
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
  /**
   * The hash the password was verified against (null: the account had none, and setting one in the meantime
   * fails the sign-in too); absent where no password was checked in this request.
   */
  passwordHash?: string | null;
}

/** Throws AccountChanged unless the user still exists, is enabled and (if given) still has the verified hash. */
async function assertAccountUnchanged(db: Db, account: VerifiedAccount): Promise<void> {
  const [found] = await db.select({ disabled: users.disabled, passwordHash: users.passwordHash }).from(users).where(eq(users.id, account.userId));
  assertAccount(found, account);
}

function assertAccount(row: { disabled: boolean; passwordHash: string | null } | undefined, account: VerifiedAccount): void {
  if (!row) throw new AccountChanged("deleted");
  if (row.disabled) throw new AccountChanged("disabled");
  if (account.passwordHash !== undefined && row.passwordHash !== account.passwordHash) throw new AccountChanged("password_changed");
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
      .select({ createdAt: sessions.createdAt, authTime: sessions.authTime, amr: sessions.amr, passwordHash: users.passwordHash })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(liveSession(sessionId)),
  );
  if (!live) throw invalidToken("The session has ended.");
  return { authTime: (live.authTime ?? live.createdAt).getTime(), amr: live.amr, passwordHash: live.passwordHash };
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

function* pruneSpentTokens(tx: Db, sessionId: string): Atomic<void> {
  const keep = tx
    .select({ tokenHash: refreshTokens.tokenHash })
    .from(refreshTokens)
    .where(and(eq(refreshTokens.sessionId, sessionId), isNotNull(refreshTokens.spentAt)))
    // The generation order. SQLite: rowid, the insertion order (timestamps tie within a millisecond). PostgreSQL
    // has no insertion order to read; there a session's tokens are spent one rotation at a time (serializable),
    // each a round trip apart, so the time each was spent orders them.
    .orderBy(isPostgres(tx) ? desc(refreshTokens.spentAt) : desc(sql`rowid`))
    .limit(SPENT_TOKENS_KEPT);
  yield* changes(
    tx.delete(refreshTokens).where(and(eq(refreshTokens.sessionId, sessionId), isNotNull(refreshTokens.spentAt), notInArray(refreshTokens.tokenHash, keep))),
  );
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

  const livePrincipal = db
    .select({
      sessionId: sessions.id,
      sessionExpiresAt: sessions.expiresAt,
      lastSeenAt: sessions.lastSeenAt,
      clientId: sessions.clientId,
      amr: sessions.amr,
      ...principalUserColumns(),
    })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.id, sql.placeholder("sid")))
    .prepare();

  /** The child is derived from the parent, so a retry within the grace window gets the same child back. */
  const childOf = (token: string) => hmacBase64url(settings.refreshRotationKey, token);


  /**
   * A sign-in's session insert, with the re-check of the account it verified (and, for a refresh-token session,
   * its first token), in the caller's transaction: serial order with a password change, a disable or a delete,
   * so the sign-in that verified the old state cannot open a session after the change.
   */
  function* insertSession(tx: Db, account: VerifiedAccount, session: typeof sessions.$inferInsert, refreshTokenHash?: string): Atomic<void> {
    assertAccount(yield* row(tx.select({ disabled: users.disabled, passwordHash: users.passwordHash }).from(users).where(eq(users.id, account.userId))), account);
    yield* changes(tx.insert(sessions).values(session));
    if (refreshTokenHash !== undefined) yield* changes(tx.insert(refreshTokens).values({ tokenHash: refreshTokenHash, sessionId: session.id }));
  }

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
   * Records a session's activity (at most once a minute per session: built here, not prepared), and its new end
   * when it slides. Without one, the end is left alone: a rotation elsewhere may have just moved it.
   */
  function* recordActivity(sessionId: string, now: number, expiresAt?: number): Atomic<void> {
    const activity = expiresAt === undefined ? { lastSeenAt: new Date(now) } : { lastSeenAt: new Date(now), expiresAt: new Date(expiresAt) };
    yield* changes(db.update(sessions).set(activity).where(eq(sessions.id, sessionId)));
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
        yield* recordActivity(sessionId, now, settings.slideOnActivity ? expiresAt : undefined);
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
    for (const [hash, entry] of browserCache) if (entry.principal.userId === userId) browserCache.delete(hash);
  }

  function forgetSessionHere(sessionId: string): void {
    cache.delete(sessionId);
    forgetBrowserSessions((entry) => entry.principal.sessionId === sessionId || entry.principal.rootSessionId === sessionId);
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

  // Browser sessions: looked up by the cookie's SHA-256, cached for CACHE_TTL_MS like access-token sessions, so
  // a sign-out, a disabled account or a deleted user is seen within a second (in this process at once).
  const browserIdleMs = (settings.browserIdleTtl ?? settings.refreshTokenTtl) * 1000;
  const browserActivityMs = Math.min(ACTIVITY_RESOLUTION_MS, browserIdleMs / 4);
  const browserCache = new Map<string, { principal: BrowserSessionPrincipal; fetchedAt: number }>();
  const browserByHash = db
    .select({
      sessionId: sessions.id,
      parentId: sessions.parentId,
      sessionCreatedAt: sessions.createdAt,
      sessionExpiresAt: sessions.expiresAt,
      lastSeenAt: sessions.lastSeenAt,
      clientId: sessions.clientId,
      amr: sessions.amr,
      ...principalUserColumns(),
    })
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
        yield* recordActivity(found.sessionId, now, expiresAt);
      }
      const live = { ...rest, sessionExpiresAt: expiresAt, rootSessionId: parentId ?? found.sessionId };
      remember(browserCache, hash, live, now);
      return live;
    });
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
      // Serial order with every other rotation of the same token, on this instance or another: of two concurrent
      // rotations one spends the token and the other sees it spent (the grace window's same child, or reuse).
      const outcome = await transaction(db, function* (tx) {
          const presented = yield* row(tx
            .select({
              spentAt: refreshTokens.spentAt,
              sessionId: refreshTokens.sessionId,
              userId: sessions.userId,
              expiresAt: sessions.expiresAt,
              disabled: users.disabled,
              clientId: sessions.clientId,
            })
            .from(refreshTokens)
            .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
            .innerJoin(users, eq(users.id, sessions.userId))
            .where(eq(refreshTokens.tokenHash, sha256Hex(refreshToken))));
          // A client's refresh token works only for that client (at /oidc/token), Latchkey's only at /refresh;
          // refused before anything is spent, so presenting it at the wrong door costs its holder nothing.
          if (!presented || presented.expiresAt.getTime() <= now || presented.disabled) return { kind: "invalid" as const };
          if (presented.clientId !== clientId) return clientId === null ? { kind: "client's" as const } : { kind: "invalid" as const };

          const child = childOf(refreshToken);
          if (presented.spentAt === null) {
            // The spentAt IS NULL guard makes two concurrent rotations of one token produce one child, even across processes.
            const spent = yield* changes(tx
              .update(refreshTokens)
              .set({ spentAt: new Date(now) })
              .where(and(eq(refreshTokens.tokenHash, sha256Hex(refreshToken)), isNull(refreshTokens.spentAt))));
            // Only a concurrent rotation meets this (test/postgres/instances.test.ts): unit tests cannot (mutation testing).
            if (spent !== 1) return { kind: "invalid" as const };
            yield* changes(tx.insert(refreshTokens).values({ tokenHash: sha256Hex(child), sessionId: presented.sessionId }));
            yield* pruneSpentTokens(tx, presented.sessionId);
            yield* changes(tx.update(sessions)
              .set({ lastSeenAt: new Date(now), expiresAt: new Date(now + refreshTtlMs) })
              .where(eq(sessions.id, presented.sessionId)));
            return { kind: "rotated" as const, sessionId: presented.sessionId, child };
          }

          const withinGrace = graceMs > 0 && now - presented.spentAt.getTime() <= graceMs;
          if (withinGrace) {
            const childRow = yield* row(tx
              .select({ spentAt: refreshTokens.spentAt })
              .from(refreshTokens)
              .where(eq(refreshTokens.tokenHash, sha256Hex(child))));
            if (childRow && childRow.spentAt === null) return { kind: "rotated" as const, sessionId: presented.sessionId, child };
          }
          yield* changes(tx.delete(sessions).where(eq(sessions.id, presented.sessionId)));
          return { kind: "reused" as const, sessionId: presented.sessionId, userId: presented.userId };
        });

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
          const parent = yield* row(tx.select({ createdAt: sessions.createdAt, authTime: sessions.authTime, amr: sessions.amr }).from(sessions).where(eq(sessions.id, parentId)));
          if (!parent) throw new AccountChanged("deleted");
          authentication = { authTime: (parent.authTime ?? parent.createdAt).getTime(), amr: parent.amr };
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

    /** The last real authentication behind a session (OIDC auth_time and amr), or undefined if it ended. */
    async authenticationOf(sessionId: string): Promise<Authentication | undefined> {
      const [found] = await db.select({ createdAt: sessions.createdAt, authTime: sessions.authTime, amr: sessions.amr }).from(sessions).where(eq(sessions.id, sessionId));
      return found && { authTime: (found.authTime ?? found.createdAt).getTime(), amr: found.amr };
    },

    /**
     * The user of a live browser session, by its id (the source of a cross-domain handoff); undefined if it ended,
     * expired, its user is disabled, or it is not a browser session. Reads without touching it (no sliding).
     */
    async browserSessionOwner(sessionId: string): Promise<string | undefined> {
      const [owner] = await browserOwner.execute({ sid: sessionId });
      return owner && !owner.disabled && owner.expiresAt.getTime() > Date.now() ? owner.userId : undefined;
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
