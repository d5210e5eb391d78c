import { and, eq, isNull, sql } from "drizzle-orm";
import { normalizeUsername } from "../../lib/names";
import { changedRows, changes, row, run, transaction, type Atomic } from "../../db/atomic";
import type { Pending } from "../../lib/pending";
import type { Db } from "../../db/client";
import type { User } from "../../db/schema";
import { users } from "../../db/tables";
import { ApiError, apiErrors, type FieldError, validationFailed } from "../../errors";
import { PASSWORD_MAX_BYTES, normalizePassword, passwordTooLong, type PasswordHasher } from "../../lib/passwords";
import { weakPasswordReason } from "./weak-passwords";
import type { UserBody } from "./model";

const USERNAME_PATTERN = /^[a-z0-9][a-z0-9._-]{2,31}$/;
// Deliberately loose (one @, a dot in the domain, no spaces, no control or invisible format characters): the
// real check is a verification email.
const EMAIL_PATTERN = /^[^\s@\p{C}]+@[^\s@\p{C}]+\.[^\s@\p{C}]+$/u;

/**
 * NFKC and lower case, and no trailing dot: `example.com.` is the same domain as `example.com` in DNS (the
 * fully-qualified form), so both must name one account.
 */
export function normalizeEmail(raw: string): string {
  return raw.normalize("NFKC").toLowerCase().replace(/\.+$/, "");
}

export function usernameError(username: string): string | undefined {
  return USERNAME_PATTERN.test(username)
    ? undefined
    : "Must be 3-32 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit.";
}

export function emailError(email: string): string | undefined {
  return email.length <= 254 && EMAIL_PATTERN.test(email) ? undefined : "Must be a valid email address.";
}

export function passwordError(password: string, minLength: number): string | undefined {
  if (passwordTooLong(password)) return `Must be at most ${PASSWORD_MAX_BYTES} bytes.`;
  if ([...normalizePassword(password)].length < minLength) return `Must be at least ${minLength} characters.`;
  return undefined;
}

/** 422 weak_password when the password is the username, the email or a common password. */
function assertStrongPassword(password: string, context: { username: string; email: string | null }, field = "password"): void {
  const reason = weakPasswordReason(password, context);
  if (reason) throw apiErrors.weak_password(reason, [{ field, message: reason }]);
}

/** A password changed by another request between the decision and the update: the update is refused. */
const passwordChangedMeanwhile = () => apiErrors.invalid_current_password("The password was changed by another request meanwhile: try again.");

/** Who a request acts for, whatever authenticated it (a session or an API key). */
export interface UserIdentity {
  userId: string;
  username: string;
  email: string | null;
  emailVerified: boolean;
  roles: string[];
  metadata: Record<string, unknown>;
  createdAt: Date;
}

/**
 * The user columns every principal (session or API key) carries, for the one lookup a protected route makes. A
 * function, not a constant: the columns are the configured engine's (db/tables.ts), bound after modules load.
 */
export const principalUserColumns = () => ({
  userId: users.id,
  username: users.username,
  email: users.email,
  emailVerified: users.emailVerified,
  roles: users.roles,
  metadata: users.metadata,
  createdAt: users.createdAt,
  disabled: users.disabled,
});

/** What clients may see of a user. */
export type PublicUser = typeof UserBody.static;

export function toPublicUser(user: User): PublicUser {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    email_verified: user.emailVerified,
    roles: user.roles,
    created_at: user.createdAt.toISOString(),
  };
}

export interface NewUser {
  username: string;
  /** Null: a passwordless account, which signs in with a passkey (set up through a link or its first session). */
  password: string | null;
  email?: string | null;
  roles?: string[];
  /** Set by an admin who created the account with a known address; false otherwise. */
  emailVerified?: boolean;
}

export function createUserService(db: Db, hasher: PasswordHasher, passwordMinLength: number) {
  /** A login is a username or an email (usernames cannot contain "@"), case-insensitive. */
  // Prepared once: every sign-in runs one (drizzle would build and SQLite compile it anew each time).
  const byEmail = db.select().from(users).where(eq(users.email, sql.placeholder("email"))).prepare();
  const byUsername = db.select().from(users).where(eq(users.username, sql.placeholder("username"))).prepare();

  function findByLogin(login: string): Pending<User | undefined> {
    return run(db, () =>
      login.includes("@") ? row(byEmail, { email: normalizeEmail(login) }) : row(byUsername, { username: normalizeUsername(login) }),
    );
  }

  /** Checks every field and reports all problems at once, before any hashing. */
  function validateNewUser(input: NewUser): { username: string; email: string | null } {
    const username = normalizeUsername(input.username);
    const email = input.email == null ? null : normalizeEmail(input.email);
    const details: FieldError[] = [];
    const nameProblem = usernameError(username);
    if (nameProblem) details.push({ field: "username", message: nameProblem });
    const emailProblem = email === null ? undefined : emailError(email);
    if (emailProblem) details.push({ field: "email", message: emailProblem });
    const passwordProblem = input.password === null ? undefined : passwordError(input.password, passwordMinLength);
    if (passwordProblem) details.push({ field: "password", message: passwordProblem });
    if (details.length) throw validationFailed(details);
    if (input.password !== null) assertStrongPassword(input.password, { username, email });
    return { username, email };
  }

  async function assertEmailFree(email: string): Promise<void> {
    if ((await db.select({ id: users.id }).from(users).where(eq(users.email, email))).length)
      throw apiErrors.email_taken("That email address is already registered.");
  }

  async function assertAvailable(username: string, email: string | null): Promise<void> {
    if ((await db.select({ id: users.id }).from(users).where(eq(users.username, username))).length)
      throw apiErrors.username_taken("That username is already taken.");
    if (email !== null) await assertEmailFree(email);
  }

  function assertValidPassword(user: Pick<User, "username" | "email">, password: string, field = "password"): void {
    const problem = passwordError(password, passwordMinLength);
    if (problem) throw validationFailed([{ field, message: problem }]);
    assertStrongPassword(password, user, field);
  }

  return {
    findByLogin,

    async findById(id: string): Promise<User | undefined> {
      return (await db.select().from(users).where(eq(users.id, id)))[0];
    },

    /**
     * `precondition` runs in the insert's transaction and throws to refuse it: an invitation's use is counted
     * there, so a sign-up that fails (a name taken meanwhile) spends no use, and two cannot share the last one.
     */
    async create(input: NewUser, precondition?: (tx: Db) => Atomic<void>): Promise<User> {
      const { username, email } = validateNewUser(input);
      await assertAvailable(username, email);
      const passwordHash = input.password === null ? null : await hasher.hash(input.password);
      const values = {
        id: Bun.randomUUIDv7(),
        username,
        email,
        emailVerified: email !== null && (input.emailVerified ?? false),
        passwordHash,
        roles: input.roles ?? [],
      };
      try {
        if (!precondition) {
          const [created] = await db.insert(users).values(values).returning();
          return created!;
        }
        return await transaction(db, function* (tx) {
          yield* precondition(tx);
          return (yield* row(tx.insert(users).values(values).returning()))!;
        });
      } catch (error) {
        if (error instanceof ApiError) throw error;
        // Another request took the name while this one was hashing.
        await assertAvailable(username, email);
        throw error;
      }
    },

    /** The account with this email address (normalised), if any. */
    async findByEmail(email: string): Promise<User | undefined> {
      return (await db.select().from(users).where(eq(users.email, normalizeEmail(email))))[0];
    },

    /** 422 unless `password` may become this user's password (length, not weak); no hashing. */
    assertValidPassword,

    /**
     * Sets a confirmed new address (verified: its owner typed the mailed code). A unique-index race with another
     * account is 409 email_taken.
     */
    async setVerifiedEmail(userId: string, email: string, precondition?: (tx: Db) => Atomic<void>): Promise<void> {
      try {
        // Serial order with the precondition's session re-check (a sign-out or disable cannot slip in between).
        await transaction(db, function* (tx) {
          if (precondition) yield* precondition(tx);
          yield* changes(tx.update(users).set({ email: normalizeEmail(email), emailVerified: true, updatedAt: new Date() }).where(eq(users.id, userId)));
        });
      } catch (error) {
        if (error instanceof ApiError) throw error;
        await assertEmailFree(normalizeEmail(email));
        throw error;
      }
    },

    /** 422 for a malformed address, 409 email_taken when an account has it; the normalised address. */
    async assertNewEmail(raw: string, field: string): Promise<string> {
      const email = normalizeEmail(raw);
      const problem = emailError(email);
      if (problem) throw validationFailed([{ field, message: problem }]);
      await assertEmailFree(email);
      return email;
    },

    async markEmailVerified(userId: string): Promise<void> {
      await db.update(users).set({ emailVerified: true, updatedAt: new Date() }).where(eq(users.id, userId));
    },

    /** Validates a new password for this user (length, not weak) before any hashing, then stores its hash. */
    async setPassword(
      user: Pick<User, "id" | "username" | "email">,
      password: string,
      field = "password",
      /** Runs in the update's transaction and throws to refuse it (a session-authorised change re-checks the session). */
      precondition?: (tx: Db) => Atomic<void>,
      /**
       * The hash the caller's decision read (null: no password, so none was asked for): the update is refused with
       * 409 password_changed when another request changed it meanwhile (a password set by two sessions at once).
       */
      expectedHash?: string | null,
    ): Promise<void> {
      assertValidPassword(user, password, field);
      const passwordHash = await hasher.hash(password);
      const unchanged = expectedHash === undefined ? undefined : expectedHash === null ? isNull(users.passwordHash) : eq(users.passwordHash, expectedHash);
      // Serial order with the precondition's session re-check.
      await transaction(db, function* (tx) {
        if (precondition) yield* precondition(tx);
        const written = yield* changes(tx.update(users).set({ passwordHash, updatedAt: new Date() }).where(and(eq(users.id, user.id), unchanged)));
        if (written !== 1 && unchanged !== undefined) throw passwordChangedMeanwhile();
      });
    },

    /**
     * Makes the account passwordless: clears the hash the caller verified (compare-and-set, like setPassword's
     * `expectedHash`) after `precondition`, in its transaction (the session re-check and the rule "not the last
     * way in", decided in serial order with a passkey deleted meanwhile).
     */
    async removePassword(userId: string, expectedHash: string, precondition: (tx: Db) => Atomic<void>): Promise<void> {
      await transaction(db, function* (tx) {
        yield* precondition(tx);
        const written = yield* changes(tx.update(users).set({ passwordHash: null, updatedAt: new Date() }).where(and(eq(users.id, userId), eq(users.passwordHash, expectedHash))));
        if (written !== 1) throw passwordChangedMeanwhile();
      });
    },

    /**
     * Replaces a hash made with weaker parameters than configured (after a successful verification), and returns
     * the hash now stored for the password that was verified. Compare-and-set: a password change that committed
     * while this re-hash was computed wins, and the old hash is returned, so the sign-in that verified it fails
     * its session check (sessions/service.ts) instead of undoing the change.
     */
    async upgradeHashIfNeeded(user: { id: string; passwordHash: string }, password: string): Promise<string> {
      if (!hasher.needsRehash(user.passwordHash)) return user.passwordHash;
      const passwordHash = await hasher.hash(password);
      const written = await db
        .update(users)
        .set({ passwordHash })
        .where(and(eq(users.id, user.id), eq(users.passwordHash, user.passwordHash)));
      return changedRows(written) === 1 ? passwordHash : user.passwordHash;
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
