import { and, desc, eq, gt, isNotNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "../../db/client";
import { loginChallenges } from "../../db/tables";
import { apiErrors } from "../../errors";
import { hmacBase64url, randomDigits, randomToken, safeEqual } from "../../lib/crypto";

/** What a challenge may be answered with; `totp_enrollment` (MFA_REQUIRED_ROLES): enrol now, see POST /login/enroll. */
export type ChallengeMethod = "totp" | "recovery_code" | "email_code" | "totp_enrollment";

/** A challenge dies at this many wrong answers; then even the right code gets challenge_expired. */
const MAX_CHALLENGE_FAILURES = 5;

export const challengeExpired = () =>
  apiErrors.challenge_expired("This sign-in has expired, was already completed or had too many wrong codes: sign in again.");

export type Challenge = typeof loginChallenges.$inferSelect;

/**
 * Sign-ins waiting for their second step. The id is 256 random bits; the emailed code is stored as an HMAC keyed
 * with the code key and the id of the challenge whose mail carried it. Answering spends the challenge with one
 * conditional DELETE; an emailed code, once it signed someone in, dies with every challenge that shared it.
 */
export function createChallengeStore(db: Db, codeKey: Uint8Array, ttlSeconds: number) {
  const codeHash = (id: string, code: string) => hmacBase64url(codeKey, `login|${id}|${code}`);

  return {
    ttlSeconds,

    /** Opens a challenge; `code` is the emailed code when email_code is among the methods. */
    async create(userId: string, methods: ChallengeMethod[]): Promise<{ id: string; code: string | undefined }> {
      const id = randomToken(32);
      const code = methods.includes("email_code") ? randomDigits(6) : undefined;
      await db
        .insert(loginChallenges)
        .values({ id, userId, methods, codeHash: code === undefined ? null : codeHash(id, code), expiresAt: new Date(Date.now() + ttlSeconds * 1000) });
      return { id, code };
    },

    /**
     * A new challenge for `userId` that takes the code its latest unexpired emailed-code challenge mailed, when the
     * address had its one mail of the minute: whoever signs in again within the minute (the owner, while someone
     * who has the password keeps signing in too) is not refused, and no second mail goes out. Even a challenge
     * that died of wrong answers lends its code (the owner's mail still holds it; the account-wide count of wrong
     * answers bounds the guesses). It ends when that code ends; undefined when no code is left to share (spent or
     * expired).
     */
    async reuseMailedCode(userId: string, methods: ChallengeMethod[]): Promise<{ id: string; expiresAt: Date } | undefined> {
      const [latest] = await db
        .select()
        .from(loginChallenges)
        .where(and(eq(loginChallenges.userId, userId), isNotNull(loginChallenges.codeHash), gt(loginChallenges.expiresAt, new Date())))
        .orderBy(desc(loginChallenges.expiresAt))
        .limit(1);
      if (!latest) return undefined;
      const id = randomToken(32);
      await db.insert(loginChallenges).values({
        id,
        userId,
        methods,
        codeHash: latest.codeHash,
        codeChallengeId: latest.codeChallengeId ?? latest.id,
        expiresAt: latest.expiresAt,
      });
      return { id, expiresAt: latest.expiresAt };
    },

    /** The live challenge, or challenge_expired (unknown, expired, spent or out of tries). */
    async live(id: string): Promise<Challenge> {
      const [row] = await db.select().from(loginChallenges).where(and(eq(loginChallenges.id, id), gt(loginChallenges.expiresAt, new Date())));
      if (!row || row.failures >= MAX_CHALLENGE_FAILURES) throw challengeExpired();
      return row;
    },

    emailCodeMatches(challenge: Challenge, code: string): boolean {
      return challenge.codeHash !== null && safeEqual(codeHash(challenge.codeChallengeId ?? challenge.id, code.trim()), challenge.codeHash);
    },

    async recordFailure(challenge: Challenge): Promise<void> {
      await db.update(loginChallenges).set({ failures: sql`${loginChallenges.failures} + 1` }).where(eq(loginChallenges.id, challenge.id));
    },

    /**
     * Spends the challenge; false when another request spent it first. `codeUsed`: it was answered with its
     * emailed code, which works once: the challenges that shared it go in the same DELETE, so that two of them
     * answered at once cannot both win.
     */
    async spend(challenge: Challenge, codeUsed = false): Promise<boolean> {
      const mailed = challenge.codeChallengeId ?? challenge.id;
      const target = codeUsed
        ? or(eq(loginChallenges.id, challenge.id), eq(loginChallenges.id, mailed), eq(loginChallenges.codeChallengeId, mailed))
        : eq(loginChallenges.id, challenge.id);
      const gone = await db.delete(loginChallenges).where(target).returning({ id: loginChallenges.id });
      return gone.some((row) => row.id === challenge.id);
    },
  };
}

export type ChallengeStore = ReturnType<typeof createChallengeStore>;

export async function pruneExpiredChallenges(db: Db): Promise<void> {
  await db.delete(loginChallenges).where(lt(loginChallenges.expiresAt, new Date()));
}
