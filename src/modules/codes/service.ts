import { and, eq, gt, lt, sql } from "drizzle-orm";
import { changedRows, changes, transaction, type Atomic } from "../../db/atomic";
import type { Db } from "../../db/client";
import { oneTimeCodes } from "../../db/tables";
import { hmacBase64url, randomDigits, randomToken, safeEqual, sha256Hex } from "../../lib/crypto";

/**
 * passkey_setup: the link of an account made to set up a passkey first (admin, CLI); passkey_reset: the link an
 * admin's "Reset passkeys" makes; sign_in_link: the mailed link of a lost passkey (modules/auth/passkey-fallbacks.ts).
 */
export type CodePurpose = "verify_email" | "password_reset" | "email_change" | "passkey_setup" | "passkey_reset" | "sign_in_link";

/** Wrong codes a code (and the codes that replaced it) survives; the next one is refused even when right. */
export const MAX_CODE_FAILURES = 5;

export interface IssuedCode {
  code: string;
  /** For the link: 256 random bits. */
  token: string;
}

export type CodeRow = typeof oneTimeCodes.$inferSelect;

/**
 * Emailed codes and link tokens: from the CSPRNG, one live per (user, purpose), single-use, stored only as an
 * HMAC (code) or SHA-256 (token), compared in constant time. A code dies after MAX_CODE_FAILURES wrong answers;
 * the account's count of failures lives in the limiter (callers check codes behind it), which a new code does
 * not reset (NIST SP 800-63B §3.1.3).
 */
export function createOneTimeCodes(db: Db, codeKey: Uint8Array) {
  const codeHash = (id: string, code: string) => hmacBase64url(codeKey, `${id}|${code}`);

  return {
    /** `precondition` runs in the insert's transaction and throws to refuse it (a session-authorised request re-checks its proof). */
    async issue(userId: string, purpose: CodePurpose, ttlSeconds: number, newEmail: string | null = null, precondition?: (tx: Db) => Atomic<void>): Promise<IssuedCode> {
      const code = randomDigits(6);
      const token = randomToken(32);
      const id = Bun.randomUUIDv7();
      const now = Date.now();
      // Serial order with another issue for the same (user, purpose): one live code each, never two.
      await transaction(db, function* (tx) {
        if (precondition) yield* precondition(tx);
        yield* changes(tx.delete(oneTimeCodes).where(and(eq(oneTimeCodes.userId, userId), eq(oneTimeCodes.purpose, purpose))));
        yield* changes(
          tx
            .insert(oneTimeCodes)
            .values({ id, userId, purpose, codeHash: codeHash(id, code), tokenHash: sha256Hex(token), newEmail, expiresAt: new Date(now + ttlSeconds * 1000) }),
        );
      });
      return { code, token };
    },

    /**
     * The live row when `code` is right; a wrong code counts against the row. Undefined for wrong, spent,
     * expired or exhausted codes alike.
     */
    async checkCode(userId: string, purpose: CodePurpose, code: string): Promise<CodeRow | undefined> {
      const [row] = await db
        .select()
        .from(oneTimeCodes)
        .where(and(eq(oneTimeCodes.userId, userId), eq(oneTimeCodes.purpose, purpose), gt(oneTimeCodes.expiresAt, new Date())));
      if (!row || row.failures >= MAX_CODE_FAILURES) return undefined;
      if (safeEqual(codeHash(row.id, code.trim()), row.codeHash)) return row;
      await db.update(oneTimeCodes).set({ failures: sql`${oneTimeCodes.failures} + 1` }).where(eq(oneTimeCodes.id, row.id));
      return undefined;
    },

    /** The live row a link token belongs to (looked up by its SHA-256: no comparison of the secret itself). */
    async checkToken(purpose: CodePurpose, token: string): Promise<CodeRow | undefined> {
      const [row] = await db
        .select()
        .from(oneTimeCodes)
        .where(and(eq(oneTimeCodes.tokenHash, sha256Hex(token)), eq(oneTimeCodes.purpose, purpose), gt(oneTimeCodes.expiresAt, new Date())));
      return row;
    },

    /** Spends a row; false when a concurrent request spent it first. */
    async consume(row: CodeRow): Promise<boolean> {
      return changedRows(await db.delete(oneTimeCodes).where(eq(oneTimeCodes.id, row.id))) === 1;
    },
  };
}

export type OneTimeCodes = ReturnType<typeof createOneTimeCodes>;

export async function pruneExpiredCodes(db: Db): Promise<void> {
  await db.delete(oneTimeCodes).where(lt(oneTimeCodes.expiresAt, new Date(Date.now() - 86_400_000)));
}
