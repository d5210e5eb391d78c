import { and, eq, gte, isNull } from "drizzle-orm";
import type { RateLimitConfig } from "../config";
import { changedRows, changes, row, transaction } from "../db/atomic";
import type { Db } from "../db/client";
import { secondFactorFailures } from "../db/tables";
import { rateLimited } from "../errors";

/**
 * Consecutive wrong second-step answers an account takes before each further one waits: NIST SP 800-63B §5.2.2
 * allows at most 100 consecutive failed attempts on one account. Whoever answers a second step already has the
 * password, so this count is the account's last wall: it is not keyed by address, has no exemption for recent
 * clients, and is ended only by a completed sign-in.
 */
export const SECOND_FACTOR_FAILURES = 100;

/**
 * The delay the `failures`-th consecutive failure starts: none before `threshold`, then 1 s doubling up to
 * `maxDelayMs`. The same curve for passwords (per address and per account) and second steps.
 */
export function failureDelayMs(failures: number, threshold: number, maxDelayMs: number): number {
  return failures < threshold ? 0 : Math.min(1000 * 2 ** Math.min(failures - threshold, 30), maxDelayMs);
}

export interface SecondFactorCount {
  failures: number;
  /** Epoch ms; null or past: not delayed. */
  blockedUntil: number | null;
}

export type SecondFactorVerdict = { allowed: false; retryAfter: number } | ({ allowed: true } & SecondFactorCount);

/**
 * The decision, apart from storage: may one more answer be checked `now`, given the account's count? Refused
 * (with the seconds to wait) while delayed; otherwise the answer counts as wrong until it proves right (so
 * answers sent in parallel cannot all pass the check), and the count it makes may start the next delay. A count
 * that cannot be read (not a finite number) refuses, for the longest delay: fail closed.
 */
export function secondFactorVerdict(count: SecondFactorCount | undefined, now: number, maxDelayMs: number, threshold = SECOND_FACTOR_FAILURES): SecondFactorVerdict {
  const failures = count?.failures ?? 0;
  const blockedUntil = count?.blockedUntil ?? null;
  if (!Number.isFinite(failures) || failures < 0 || (blockedUntil !== null && !Number.isFinite(blockedUntil)))
    return { allowed: false, retryAfter: Math.ceil(maxDelayMs / 1000) };
  // (Mutation testing: `blockedUntil !== null &&` is kept for the reader and the types; `null > now` is false
  // anyway, so its removal is an equivalent mutant.)
  if (blockedUntil !== null && blockedUntil > now) return { allowed: false, retryAfter: Math.ceil((blockedUntil - now) / 1000) };
  const counted = failures + 1;
  const delay = failureDelayMs(counted, threshold, maxDelayMs);
  return { allowed: true, failures: counted, blockedUntil: delay > 0 ? now + delay : null };
}

/**
 * The per-account count of wrong second-step answers (TOTP, recovery codes and emailed codes alike), across
 * challenges and addresses, in the database (every instance sees one count). Disabled with RATE_LIMIT=off.
 */
export function createSecondFactorLimiter(db: Db, settings: RateLimitConfig | undefined) {
  if (!settings) return disabledSecondFactorLimiter;
  const maxDelayMs = settings.maxDelaySeconds * 1000;

  return {
    /**
     * Before an answer is checked: 429 rate_limited (Retry-After) while the account is delayed; otherwise counts
     * the answer as wrong. One transaction in serial order with every other answer, even on other instances.
     */
    async begin(userId: string): Promise<void> {
      const now = Date.now();
      await transaction(db, function* (tx) {
        const stored = yield* row(
          tx
            .select({ failures: secondFactorFailures.failures, blockedUntil: secondFactorFailures.blockedUntil })
            .from(secondFactorFailures)
            .where(eq(secondFactorFailures.userId, userId)),
        );
        const verdict = secondFactorVerdict(stored && { failures: stored.failures, blockedUntil: stored.blockedUntil?.getTime() ?? null }, now, maxDelayMs);
        if (!verdict.allowed) throw rateLimited(verdict.retryAfter);
        // (Mutation testing: storing a date of 0 for "not delayed" instead of null would be equivalent: it is never
        // in the future.)
        const set = { failures: verdict.failures, blockedUntil: verdict.blockedUntil === null ? null : new Date(verdict.blockedUntil), updatedAt: new Date(now) };
        yield* changes(tx.insert(secondFactorFailures).values({ userId, ...set }).onConflictDoUpdate({ target: secondFactorFailures.userId, set }));
      });
    },

    /**
     * After an answer proved wrong: true exactly once per run, when the count has reached the bound, so that the
     * owner is told once that someone has the password (a conditional UPDATE: two instances cannot both claim it).
     */
    async claimNotice(userId: string): Promise<boolean> {
      const claimed = await db
        .update(secondFactorFailures)
        .set({ notifiedAt: new Date() })
        .where(and(eq(secondFactorFailures.userId, userId), gte(secondFactorFailures.failures, SECOND_FACTOR_FAILURES), isNull(secondFactorFailures.notifiedAt)));
      return changedRows(claimed) === 1;
    },

    /** A completed sign-in ends the run (and a later run mails the owner again). */
    async end(userId: string): Promise<void> {
      await db.delete(secondFactorFailures).where(eq(secondFactorFailures.userId, userId));
    },
  };
}

const disabledSecondFactorLimiter = {
  begin: async (_userId: string): Promise<void> => {},
  claimNotice: async (_userId: string): Promise<boolean> => false,
  end: async (_userId: string): Promise<void> => {},
};

export type SecondFactorLimiter = ReturnType<typeof createSecondFactorLimiter>;
