import { encodeBase32UpperCaseNoPadding } from "@oslojs/encoding";
import { createTOTPKeyURI, generateHOTP } from "@oslojs/otp";
import { and, count, eq, isNotNull, isNull, lt, sql } from "drizzle-orm";
import { renderSVG } from "uqr";
import { randomBytes, randomInt } from "node:crypto";
import { changedRows, changes, row, run, transaction, type Atomic } from "../../db/atomic";
import type { Pending } from "../../lib/pending";
import type { Db } from "../../db/client";
import { recoveryCodes, totpFactors } from "../../db/tables";
import { apiErrors } from "../../errors";
import { safeEqual, seal, sha256Hex, unseal } from "../../lib/crypto";
import { assertSessionLive } from "../sessions/service";
import { RECOVERY_CODE_COUNT, type SecondFactors } from "./model";

/** RFC 6238 with the parameters every authenticator app supports: 30 s steps, 6 digits, HMAC-SHA1. */
const STEP_SECONDS = 30;
const DIGITS = 6;
/** A code of the previous or next step is accepted too (clock drift, RFC 6238 §5.2). */
const DRIFT_STEPS = 1;
const SEAL_CONTEXT = "latchkey/totp-secret/v1";

const mfaAlreadyEnrolled = () => apiErrors.mfa_already_enrolled("This account already has an authenticator: remove it first.");
export const mfaNotEnrolled = () => apiErrors.mfa_not_enrolled("This account has no authenticator (or its enrolment was not started).");


/**
 * Letters and digits no one confuses when reading a code aloud or off paper: no 0/o, 1/l/i, u/v (29 symbols:
 * ten carry 48.6 random bits, far above the 20 NIST SP 800-63B §5.1.2.1 asks of rate-limited look-up secrets).
 */
const RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstwxyz";

/** `xxxxx-xxxxx` from RECOVERY_ALPHABET, easy to read out and type. */
function newRecoveryCode(): string {
  const text = Array.from({ length: 10 }, () => RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)]).join("");
  return `${text.slice(0, 5)}-${text.slice(5)}`;
}

/** Recovery codes are compared without case, spaces or dashes; stored as SHA-256 (50 random bits each). */
const recoveryHash = (code: string) => sha256Hex(`recovery|${code.toLowerCase().replace(/[\s-]/g, "")}`);

/**
 * TOTP authenticators (RFC 6238, with @oslojs/otp) and recovery codes. A TOTP secret must be read back, so it is
 * sealed (AES-256-GCM) with the data key instead of hashed; recovery codes are hashed and spent with one
 * conditional UPDATE, so two requests cannot both use one.
 */
export function createMfaService(db: Db, dataKey: Uint8Array, issuer: string) {
  /** What an authenticator app needs: the key (base32), its otpauth:// URI and that URI as a QR code. */
  function enrolment(accountName: string, key: Uint8Array) {
    const uri = createTOTPKeyURI(issuer, accountName, key, STEP_SECONDS, DIGITS);
    return { secret: encodeBase32UpperCaseNoPadding(key), otpauth_uri: uri, qr_svg: renderSVG(uri) };
  }

  const currentStep = () => Math.floor(Date.now() / 1000 / STEP_SECONDS);

  async function secretOf(userId: string, confirmed: boolean) {
    const [factor] = await db.select().from(totpFactors).where(eq(totpFactors.userId, userId));
    if (!factor || (factor.confirmedAt !== null) !== confirmed) return undefined;
    const secret = unseal(dataKey, factor.secret, `${SEAL_CONTEXT}|${userId}`);
    return secret === undefined ? undefined : { factor, key: Buffer.from(secret, "base64url") };
  }

  /**
   * The step whose code `code` is, within ±DRIFT_STEPS of now and after `lastStep` (a code is accepted once:
   * RFC 6238 §5.2), or undefined. Every candidate is compared, in constant time. Mutation testing: `step > lastStep`
   * and `found === undefined` survive, as spendStep's conditional UPDATE refuses a used step again (and two steps
   * never share a code in practice); the check here keeps a replay from costing a write.
   */
  function matchingStep(key: Uint8Array, code: string, lastStep: number): number | undefined {
    const now = currentStep();
    let found: number | undefined;
    for (let step = now - DRIFT_STEPS; step <= now + DRIFT_STEPS; step++)
      if (safeEqual(generateHOTP(key, BigInt(step), DIGITS), code.trim()) && step > lastStep && found === undefined) found = step;
    return found;
  }

  /**
   * Records `step` as used unless a concurrent request got there first: one conditional UPDATE, which both
   * engines apply to the row's latest version (PostgreSQL re-checks the condition after the row lock).
   */
  const spendStep = async (userId: string, step: number) =>
    changedRows(await db.update(totpFactors).set({ lastStep: step }).where(and(eq(totpFactors.userId, userId), lt(totpFactors.lastStep, step)))) === 1;

  /**
   * Runs a write in one transaction that first re-checks the session authorising it, when there is one (not
   * during a sign-in's enrolment step): the session cache may still vouch for a session another process has just
   * ended, and a second factor must not be changed on its word. Serial order with the sign-out or disable.
   */
  function authorised<T>(sessionId: string | undefined, write: (tx: Db) => Atomic<T>): Promise<T> {
    return transaction(db, function* (tx) {
      if (sessionId !== undefined) yield* assertSessionLive(tx, sessionId);
      return yield* write(tx);
    });
  }

  function* writeRecoveryCodes(tx: Db, userId: string): Atomic<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    yield* changes(tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId)));
    yield* changes(tx.insert(recoveryCodes).values(codes.map((code) => ({ codeHash: recoveryHash(code), userId }))));
    return codes;
  }

  /** New recovery codes (the old ones stop working), shown once. */
  const replaceRecoveryCodes = (userId: string, sessionId?: string): Promise<string[]> => authorised(sessionId, (tx) => writeRecoveryCodes(tx, userId));

  // Prepared once: every sign-in asks it.
  const confirmedTotp = db
    .select({ userId: totpFactors.userId })
    .from(totpFactors)
    .where(and(eq(totpFactors.userId, sql.placeholder("userId")), isNotNull(totpFactors.confirmedAt)))
    .prepare();

  function hasTotp(userId: string): Pending<boolean> {
    return run(db, function* () {
      return (yield* row(confirmedTotp, { userId })) !== undefined;
    });
  }

  return {
    async factors(userId: string): Promise<SecondFactors> {
      const totp = await hasTotp(userId);
      const [left] = await db.select({ n: count() }).from(recoveryCodes).where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt)));
      return { totp, recovery_codes_left: left?.n ?? 0 };
    },

    hasTotp,

    /** Starts (or restarts) an enrolment: a new secret, unconfirmed until a first code proves the app has it. */
    async startTotp(userId: string, accountName: string, sessionId?: string) {
      if (await hasTotp(userId)) throw mfaAlreadyEnrolled();
      const key = randomBytes(20);
      const sealed = seal(dataKey, key.toString("base64url"), `${SEAL_CONTEXT}|${userId}`);
      await authorised(sessionId, (tx) =>
        changes(
          tx
            .insert(totpFactors)
            .values({ userId, secret: sealed })
            .onConflictDoUpdate({ target: totpFactors.userId, set: { secret: sealed, confirmedAt: null, lastStep: 0 } }),
        ),
      );
      return enrolment(accountName, key);
    },

    /**
     * The enrolment started and not yet confirmed, or undefined: the pages show the same key and QR code until it
     * is confirmed or cancelled, so a typo in the first code does not void what the phone scanned.
     */
    async pendingTotp(userId: string, accountName: string) {
      const secret = await secretOf(userId, false);
      return secret && enrolment(accountName, secret.key);
    },

    /** Drops an enrolment not yet confirmed (a confirmed authenticator is removed with removeAll). */
    cancelTotp: (userId: string, sessionId?: string) =>
      authorised(sessionId, (tx) => changes(tx.delete(totpFactors).where(and(eq(totpFactors.userId, userId), isNull(totpFactors.confirmedAt))))),

    /** Confirms the enrolment with a first code; answers the recovery codes (shown once). False: wrong code. */
    async confirmTotp(userId: string, code: string, sessionId?: string): Promise<string[] | undefined> {
      const secret = await secretOf(userId, false);
      if (!secret) throw mfaNotEnrolled();
      const step = matchingStep(secret.key, code, secret.factor.lastStep);
      if (step === undefined) return undefined;
      return authorised(sessionId, function* (tx) {
        yield* changes(tx.update(totpFactors).set({ confirmedAt: new Date(), lastStep: step }).where(eq(totpFactors.userId, userId)));
        return yield* writeRecoveryCodes(tx, userId);
      });
    },

    /** True once per valid code of a confirmed authenticator. */
    async verifyTotp(userId: string, code: string): Promise<boolean> {
      const secret = await secretOf(userId, true);
      if (!secret) return false;
      const step = matchingStep(secret.key, code, secret.factor.lastStep);
      return step !== undefined && (await spendStep(userId, step));
    },

    /** Spends a recovery code (one conditional UPDATE, like spendStep); true when it was this user's and unused. */
    async useRecoveryCode(userId: string, code: string): Promise<boolean> {
      const spent = await db
        .update(recoveryCodes)
        .set({ usedAt: new Date() })
        .where(and(eq(recoveryCodes.codeHash, recoveryHash(code)), eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt)));
      return changedRows(spent) === 1;
    },

    replaceRecoveryCodes,

    /** Removes the user's authenticator and recovery codes (self-service, re-checking the session). */
    removeAll: (userId: string, sessionId?: string) => authorised(sessionId, (tx) => deleteSecondFactors(tx, userId)),
  };
}

export type MfaService = ReturnType<typeof createMfaService>;

/** Removes a user's authenticator and recovery codes (self-service removal, admin API and CLI reset). */
export function removeSecondFactors(db: Db, userId: string): Promise<boolean> {
  return transaction(db, (tx) => deleteSecondFactors(tx, userId));
}

function* deleteSecondFactors(tx: Db, userId: string): Atomic<boolean> {
  const removed = yield* changes(tx.delete(totpFactors).where(eq(totpFactors.userId, userId)));
  const codes = yield* changes(tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId)));
  return removed + codes > 0;
}
