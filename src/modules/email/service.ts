import type { Atomic } from "../../db/atomic";
import type { Db } from "../../db/client";
import type { User } from "../../db/schema";
import { apiErrors, rateLimited, validationFailed } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { throttleAccount, type SecretCheckLimiter } from "../../limits";
import { PASSWORD_MAX_BYTES, passwordTooLong } from "../../lib/passwords";
import type { Mailer } from "../../mail";
import type { AuditLog } from "../audit/service";
import type { OneTimeCodes, CodePurpose } from "../codes/service";
import { assertSessionLive, type SessionService } from "../sessions/service";
import type { UserService } from "../users/service";

export interface EmailFlowSettings {
  publicUrl: string;
  codeTtl: number;
  passwordResetTtl: number;
}

export const invalidCode = () => apiErrors.invalid_code("The code or link is wrong, already used or expired.");
export const mailDisabled = () => apiErrors.mail_disabled("This server sends no mail (SMTP_URL is not set).");

/** The one answer of the requests that may mail an address, whether or not it belongs to anyone. */
export const RESET_REQUESTED = { message: "If an account has this verified address, a code and a link are on their way." } as const;
export const VERIFICATION_REQUESTED = { message: "If an account has this unverified address, a code and a link are on their way." } as const;

const minutes = (seconds: number) => String(Math.max(1, Math.round(seconds / 60)));

/**
 * Email verification, password reset and the password-changed notice: every code goes through the same
 * limiter as passwords (per account and per (account, address)), and every answer that could tell whether an
 * address is registered is the same for all addresses.
 */
export function createEmailFlows(deps: {
  users: UserService;
  sessions: SessionService;
  codes: OneTimeCodes;
  mailer: Mailer;
  limiter: SecretCheckLimiter;
  audit: AuditLog;
  settings: EmailFlowSettings;
}) {
  const { users, sessions, codes, mailer, limiter, audit, settings } = deps;
  const link = (path: string, token: string) => `${settings.publicUrl}/api/v1/auth${path}?token=${encodeURIComponent(token)}`;

  function assertMail(): void {
    if (!mailer.enabled) throw mailDisabled();
  }

  async function sendVerification(user: User & { email: string }): Promise<void> {
    const issued = await codes.issue(user.id, "verify_email", settings.codeTtl);
    await mailer.send("verify_email", user.email, user, { code: issued.code, link: link("/verify-email", issued.token), minutes: minutes(settings.codeTtl) });
  }

  /**
   * Checks an emailed code behind the limiter (counted as a failure until it proves right). `login` is what
   * names the account (an unknown address is counted and refused like a wrong code).
   */
  async function checkUserCode(login: string, user: User | undefined, purpose: CodePurpose, code: string, client: ClientInfo) {
    const account = throttleAccount(login, user);
    await limiter.beginAttempt(account, client.ip);
    const row = user ? await codes.checkCode(user.id, purpose, code) : undefined;
    if (!user || !row) {
      await audit.record({ event: "code_failed", userId: user?.id ?? null, ...client, detail: { purpose } });
      throw invalidCode();
    }
    await limiter.recordSuccess(account, client.ip);
    return row;
  }

  async function checkEmailCode(email: string, purpose: CodePurpose, code: string, client: ClientInfo) {
    const user = await users.findByEmail(email);
    return { user: user!, row: await checkUserCode(email, user, purpose, code, client) };
  }

  /** "Your password was changed", to a verified address: a notice, never throttled. */
  async function passwordChanged(user: Pick<User, "id" | "username" | "email" | "emailVerified">): Promise<void> {
    if (mailer.enabled && user.email !== null && user.emailVerified) await mailer.send("password_changed", user.email, user, {});
  }

  return {
    /**
     * "Someone has your password": a second step was answered wrong `count` times in a row (limits/second-factor.ts),
     * to a verified address: a notice, never throttled (the caller sends it once per run).
     */
    async secondFactorFailures(user: Pick<User, "id" | "username" | "email" | "emailVerified">, count: number): Promise<void> {
      if (mailer.enabled && user.email !== null && user.emailVerified) await mailer.send("second_factor_failures", user.email, user, { count: String(count) });
    },

    /** After registration: a code and a link to the new address (when mail is on). */
    async registered(user: User): Promise<void> {
      if (mailer.enabled && user.email !== null && !user.emailVerified && mailer.claimAddress("verify_email", user.email).allowed)
        await sendVerification(user as User & { email: string });
    },

    /** Always the same answer; mails only an existing, unverified, enabled account, at most once a minute. */
    async resendVerification(email: string): Promise<typeof VERIFICATION_REQUESTED> {
      assertMail();
      const user = await users.findByEmail(email);
      if (user && user.email !== null && !user.emailVerified && !user.disabled && mailer.claimAddress("verify_email", user.email).allowed)
        await sendVerification(user as User & { email: string });
      return VERIFICATION_REQUESTED;
    },

    async verifyEmailCode(email: string, code: string, client: ClientInfo): Promise<void> {
      assertMail();
      const { user, row } = await checkEmailCode(email, "verify_email", code, client);
      if (!(await codes.consume(row))) throw invalidCode();
      await users.markEmailVerified(user.id);
      await audit.record({ event: "email_verified", userId: user.id, ...client, detail: { via: "code" } });
    },

    async verifyEmailToken(token: string, client: ClientInfo): Promise<void> {
      const row = await codes.checkToken("verify_email", token);
      if (!row || !(await codes.consume(row))) throw invalidCode();
      await users.markEmailVerified(row.userId);
      await audit.record({ event: "email_verified", userId: row.userId, ...client, detail: { via: "link" } });
    },

    /** Always the same answer; mails only an existing, verified, enabled account, at most once a minute. */
    async forgotPassword(email: string, client: ClientInfo): Promise<typeof RESET_REQUESTED> {
      assertMail();
      const user = await users.findByEmail(email);
      if (user && user.email !== null && user.emailVerified && !user.disabled && mailer.claimAddress("password_reset", user.email).allowed) {
        const issued = await codes.issue(user.id, "password_reset", settings.passwordResetTtl);
        await mailer.send("password_reset", user.email, user, {
          code: issued.code,
          link: link("/password/reset", issued.token),
          minutes: minutes(settings.passwordResetTtl),
        });
        await audit.record({ event: "password_reset_requested", userId: user.id, ...client });
      }
      return RESET_REQUESTED;
    },

    /**
     * Sets a new password from an emailed code (with the address) or link token; ends every session (their
     * access tokens fail at once), keeps API keys, spends the code and marks the address verified (the mail
     * reached its owner). The new password is checked before the code is spent, so a weak one costs nothing.
     */
    async resetPassword(proof: { email: string; code: string } | { token: string }, newPassword: string, client: ClientInfo): Promise<number> {
      assertMail();
      if (passwordTooLong(newPassword)) throw validationFailed([{ field: "new_password", message: `Must be at most ${PASSWORD_MAX_BYTES} bytes.` }]);
      let user: User | undefined;
      let row;
      if ("token" in proof) {
        row = await codes.checkToken("password_reset", proof.token);
        user = row && (await users.findById(row.userId));
      } else ({ user, row } = await checkEmailCode(proof.email, "password_reset", proof.code, client));
      if (!user || !row || user.disabled) throw invalidCode();
      users.assertValidPassword(user, newPassword, "new_password");
      if (!(await codes.consume(row))) throw invalidCode();
      await users.setPassword(user, newPassword, "new_password");
      await users.markEmailVerified(user.id);
      const ended = await sessions.revokeAllForUser(user.id);
      await audit.record({ event: "password_reset", userId: user.id, ...client, detail: { sessions_ended: ended } });
      await passwordChanged({ ...user, emailVerified: true });
      return ended;
    },

    passwordChanged,

    /**
     * Mails a code to `newEmail` (after the caller checked its proof: the password, or a recent passkey sign-in,
     * which `precondition` re-checks in the code's transaction). The address must be free; it is claimed only
     * when the code is confirmed. One mail a minute per address: 429 (the caller is signed in).
     */
    async requestEmailChange(user: Pick<User, "id" | "username">, newEmail: string, client: ClientInfo, precondition?: (tx: Db) => Atomic<void>): Promise<void> {
      assertMail();
      const email = await users.assertNewEmail(newEmail, "new_email");
      const claim = mailer.claimAddress("email_change", email);
      if (!claim.allowed) throw rateLimited(claim.retryAfter);
      const issued = await codes.issue(user.id, "email_change", settings.codeTtl, email, precondition);
      await mailer.send("email_change", email, user, { code: issued.code, minutes: minutes(settings.codeTtl), new_email: email });
      await audit.record({ event: "email_change_requested", userId: user.id, ...client });
    },

    /** Switches to the address the code was sent to (verified), and tells the old address. */
    async confirmEmailChange({ userId, sessionId }: { userId: string; sessionId: string }, code: string, client: ClientInfo): Promise<User> {
      assertMail();
      const user = await users.findById(userId);
      if (!user) throw invalidCode();
      const row = await checkUserCode(user.username, user, "email_change", code, client);
      if (row.newEmail === null || !(await codes.consume(row))) throw invalidCode();
      await users.setVerifiedEmail(user.id, row.newEmail, (tx) => assertSessionLive(tx, sessionId));
      await sessions.forgetUser(user.id);
      if (user.email !== null) await mailer.send("email_changed", user.email, user, { new_email: row.newEmail });
      await audit.record({ event: "email_changed", userId: user.id, ...client, detail: { via: "self-service" } });
      return (await users.findById(user.id))!;
    },

    /** The sign-in code's one mail a minute per address (the caller answers 429 when refused: it knows the password). */
    claimLoginCode(address: string) {
      return mailer.claimAddress("login_code", address);
    },

    async sendLoginCode(user: Pick<User, "id" | "username" | "email">, code: string, ttlSeconds: number): Promise<void> {
      await mailer.send("login_code", user.email!, user, { code, minutes: minutes(ttlSeconds) });
    },
  };
}

export type EmailFlows = ReturnType<typeof createEmailFlows>;
