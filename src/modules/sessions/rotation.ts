import { and, desc, eq, isNotNull, isNull, notInArray, sql } from "drizzle-orm";
import { changes, isPostgres, row, type Atomic } from "../../db/atomic";
import type { Db } from "../../db/client";
import { refreshTokens, sessions, users } from "../../db/tables";
import { hmacBase64url, sha256Hex } from "../../lib/crypto";

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

/** How a presented refresh token was met: spent into a child, or refused (and why), in one transaction. */
export type RotationOutcome =
  | { kind: "rotated"; sessionId: string; child: string }
  | { kind: "invalid" }
  /** Another client's token (an OpenID Connect client's at /refresh): refused before anything is spent. */
  | { kind: "client's" }
  /** A spent token again, outside the grace window: the session is deleted. */
  | { kind: "reused"; sessionId: string; userId: string };

/**
 * Spends a refresh token in the caller's transaction (serial order with every other rotation of the same token,
 * on this instance or another: of two concurrent rotations one spends the token and the other sees it spent).
 * The child is derived from the parent (an HMAC under the rotation key), so a retry within the grace window gets
 * the same child back; any other reuse deletes the session (RFC 9700 §4.14.2).
 */
export function* rotation(
  tx: Db,
  refreshToken: string,
  clientId: string | null,
  rule: { now: number; graceMs: number; refreshTtlMs: number; rotationKey: Uint8Array },
): Atomic<RotationOutcome> {
  const now = rule.now;
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

  const child = hmacBase64url(rule.rotationKey, refreshToken);
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
      .set({ lastSeenAt: new Date(now), expiresAt: new Date(now + rule.refreshTtlMs) })
      .where(eq(sessions.id, presented.sessionId)));
    return { kind: "rotated" as const, sessionId: presented.sessionId, child };
  }

  const withinGrace = rule.graceMs > 0 && now - presented.spentAt.getTime() <= rule.graceMs;
  if (withinGrace) {
    const childRow = yield* row(tx
      .select({ spentAt: refreshTokens.spentAt })
      .from(refreshTokens)
      .where(eq(refreshTokens.tokenHash, sha256Hex(child))));
    if (childRow && childRow.spentAt === null) return { kind: "rotated" as const, sessionId: presented.sessionId, child };
  }
  yield* changes(tx.delete(sessions).where(eq(sessions.id, presented.sessionId)));
  return { kind: "reused" as const, sessionId: presented.sessionId, userId: presented.userId };
}
