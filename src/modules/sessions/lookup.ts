import { eq } from "drizzle-orm";
import { changes, type Atomic } from "../../db/atomic";
import type { Db } from "../../db/client";
import { sessions } from "../../db/tables";
import { principalUserColumns } from "../users/service";
import type { Authentication } from "./model";

/*
 * What the session reads share: the columns of a principal and of an authentication, and for both lookups (by
 * access token's session id, by browser cookie) a short cache and the activity written at most once a minute.
 */

/** What a session lookup reads: the session's id, end, last activity, client and amr, and its user's identity. */
export const sessionPrincipalColumns = () => ({
  sessionId: sessions.id,
  sessionExpiresAt: sessions.expiresAt,
  lastSeenAt: sessions.lastSeenAt,
  clientId: sessions.clientId,
  amr: sessions.amr,
  ...principalUserColumns(),
});

/** What a session's last authentication is read from (`authenticationFrom`). */
export const authenticationColumns = () => ({ createdAt: sessions.createdAt, authTime: sessions.authTime, amr: sessions.amr });

/** A session's last authentication: its auth time, or for a session from before that was recorded, its start. */
export const authenticationFrom = (row: { createdAt: Date; authTime: Date | null; amr: string[] }): Authentication => ({
  authTime: (row.authTime ?? row.createdAt).getTime(),
  amr: row.amr,
});

/** How long a looked-up session is trusted without asking the database again (other instances' revocations). */
export const CACHE_TTL_MS = 1000;
/** Past this many cached sessions, entries older than CACHE_TTL_MS are swept (they would be re-read anyway). */
const CACHE_SWEEP_SIZE = 10_000;
/**
 * `last_seen_at` (and, when sessions slide on activity, `expires_at`) is written at most once a minute per
 * session, not on every request; more often only for sessions shorter than four minutes, so that they can slide.
 */
export const ACTIVITY_RESOLUTION_MS = 60_000;

/** Caches a looked-up principal; past CACHE_SWEEP_SIZE entries, those older than CACHE_TTL_MS are swept first. */
export function remember<P>(cache: Map<string, { principal: P; fetchedAt: number }>, key: string, principal: P, now: number): void {
  if (cache.size >= CACHE_SWEEP_SIZE) {
    for (const [id, entry] of cache) if (now - entry.fetchedAt >= CACHE_TTL_MS) cache.delete(id);
    // More distinct sessions than that within one second: start over rather than sweep on every insert.
    if (cache.size >= CACHE_SWEEP_SIZE) cache.clear();
  }
  cache.set(key, { principal, fetchedAt: now });
}

/**
 * Records a session's activity (at most once a minute per session: built here, not prepared), and its new end
 * when it slides. Without one, the end is left alone: a rotation elsewhere may have just moved it.
 */
export function* recordActivity(db: Db, sessionId: string, now: number, expiresAt?: number): Atomic<void> {
  const activity = expiresAt === undefined ? { lastSeenAt: new Date(now) } : { lastSeenAt: new Date(now), expiresAt: new Date(expiresAt) };
  yield* changes(db.update(sessions).set(activity).where(eq(sessions.id, sessionId)));
}
