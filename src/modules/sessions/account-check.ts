import { eq } from "drizzle-orm";
import { changes, row, type Atomic } from "../../db/atomic";
import type { Db } from "../../db/client";
import { refreshTokens, sessions, users } from "../../db/tables";

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
export async function assertAccountUnchanged(db: Db, account: VerifiedAccount): Promise<void> {
  const [found] = await db.select({ disabled: users.disabled, passwordHash: users.passwordHash }).from(users).where(eq(users.id, account.userId));
  assertAccount(found, account);
}

function assertAccount(row: { disabled: boolean; passwordHash: string | null } | undefined, account: VerifiedAccount): void {
  if (!row) throw new AccountChanged("deleted");
  if (row.disabled) throw new AccountChanged("disabled");
  if (account.passwordHash !== undefined && row.passwordHash !== account.passwordHash) throw new AccountChanged("password_changed");
}

/**
 * A sign-in's session insert, with the re-check of the account it verified (and, for a refresh-token session,
 * its first token), in the caller's transaction: serial order with a password change, a disable or a delete,
 * so the sign-in that verified the old state cannot open a session after the change.
 */
export function* insertSession(tx: Db, account: VerifiedAccount, session: typeof sessions.$inferInsert, refreshTokenHash?: string): Atomic<void> {
  assertAccount(yield* row(tx.select({ disabled: users.disabled, passwordHash: users.passwordHash }).from(users).where(eq(users.id, account.userId))), account);
  yield* changes(tx.insert(sessions).values(session));
  if (refreshTokenHash !== undefined) yield* changes(tx.insert(refreshTokens).values({ tokenHash: refreshTokenHash, sessionId: session.id }));
}
