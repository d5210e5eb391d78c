import type { User } from "../../db/schema";
import { apiErrors, rateLimited } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { throttleAccount } from "../../limits";
import type { RateLimitAudit } from "../../limits/audit";
import { SECOND_FACTOR_FAILURES, type SecondFactorLimiter } from "../../limits/second-factor";
import type { AuditLog } from "../audit/service";
import type { EmailFlows } from "../email/service";
import type { MfaService } from "../mfa/service";
import type { UserService } from "../users/service";
import { challengeExpired, type ChallengeMethod, type ChallengeStore } from "./challenges";
import type { ChallengeResponse } from "./model";

/** POST /login's 202: the password was right, a second step is due. */
export type LoginChallenge = typeof ChallengeResponse.static;

export interface SecondStepSettings {
  /** LOGIN_EMAIL_CODE: a correct password is followed by a code mailed to the account's address. */
  loginEmailCode: boolean;
  /** MFA_REQUIRED_ROLES: users with one of these roles enrol TOTP before their first session. */
  mfaRequiredRoles: readonly string[];
}

export const invalidMfaCode = () => apiErrors.invalid_mfa_code("The code is wrong or was already used.");

/**
 * The second step of a sign-in: which one an account owes, the challenge that asks for it, and the checking of an
 * answer. Every answer (TOTP, recovery code, emailed code, enrolment code) goes through two counts before it is
 * checked: the challenge's own (it dies at 5 wrong answers) and the account's, across challenges and addresses
 * (limits/second-factor.ts: delayed from the 100th in a row, and the owner is mailed once).
 */
export function createSecondStep(deps: {
  users: UserService;
  mfa: MfaService;
  challenges: ChallengeStore;
  secondFactors: SecondFactorLimiter;
  emailFlows: Pick<EmailFlows, "sendLoginCode" | "claimLoginCode" | "secondFactorFailures">;
  audit: AuditLog;
  auditRateLimit: RateLimitAudit;
  settings: SecondStepSettings;
}) {
  const { users, mfa, challenges, secondFactors, emailFlows, audit, auditRateLimit, settings } = deps;

  /** Counts the answer against the account before it is checked; 429 (audited) while the account is delayed. */
  async function beginAnswer(user: User, client: ClientInfo): Promise<void> {
    try {
      await secondFactors.begin(user.id);
    } catch (error) {
      await auditRateLimit({ scope: "second_factor", account: throttleAccount(user.username, user), userId: user.id, client });
      throw error;
    }
  }

  return {
    /** The second steps this account owes after its password, in the order a client would offer them. */
    async methodsFor(user: User): Promise<ChallengeMethod[]> {
      const methods: ChallengeMethod[] = [];
      if (await mfa.hasTotp(user.id)) methods.push("totp", "recovery_code");
      else if (user.roles.some((role) => settings.mfaRequiredRoles.includes(role))) return ["totp_enrollment"];
      if (settings.loginEmailCode && user.email !== null) methods.push("email_code");
      return methods;
    },

    /**
     * A challenge for `user`, with the code mailed when email_code is among the methods. Within the minute after
     * such a mail (one a minute per address), the new challenge takes the code already mailed: no second mail, and
     * no 429 that someone who has the password could use, signing in once a minute, to keep the owner out. 429
     * only when that code is already spent or expired.
     */
    async open(user: User, methods: ChallengeMethod[]): Promise<LoginChallenge> {
      if (methods.includes("email_code")) {
        const claim = emailFlows.claimLoginCode(user.email!);
        if (!claim.allowed) {
          const shared = await challenges.reuseMailedCode(user.id, methods);
          if (shared === undefined) throw rateLimited(claim.retryAfter);
          return { challenge_id: shared.id, methods, expires_in: Math.max(1, Math.ceil((shared.expiresAt.getTime() - Date.now()) / 1000)) };
        }
      }
      const { id, code } = await challenges.create(user.id, methods);
      if (code !== undefined) await emailFlows.sendLoginCode(user, code, challenges.ttlSeconds);
      return { challenge_id: id, methods, expires_in: challenges.ttlSeconds };
    },

    /**
     * Checks an answer to a challenge and spends the challenge: who signed in, and how. A wrong answer counts
     * against the challenge and the account; the one that makes the account's run reach the bound mails the owner.
     * The run ends here only when the sign-in is complete.
     */
    async answer(challengeId: string, answer: { code?: string; recovery_code?: string }, client: ClientInfo) {
      const challenge = await challenges.live(challengeId);
      const user = await users.findById(challenge.userId);
      if (!user || user.disabled) {
        await challenges.spend(challenge);
        throw challengeExpired();
      }
      await beginAnswer(user, client);
      const methods = challenge.methods as ChallengeMethod[];
      let method: ChallengeMethod | undefined;
      let recoveryCodes: string[] | undefined;
      if (answer.recovery_code !== undefined) {
        if (methods.includes("recovery_code") && (await mfa.useRecoveryCode(user.id, answer.recovery_code))) method = "recovery_code";
      } else if (answer.code !== undefined) {
        if (methods.includes("totp_enrollment")) {
          recoveryCodes = await mfa.confirmTotp(user.id, answer.code);
          if (recoveryCodes) method = "totp_enrollment";
        } else if (methods.includes("email_code") && challenges.emailCodeMatches(challenge, answer.code)) method = "email_code";
        else if (methods.includes("totp") && (await mfa.verifyTotp(user.id, answer.code))) method = "totp";
      }
      if (method === undefined) {
        await challenges.recordFailure(challenge);
        await audit.record({ event: "mfa_challenge_failed", userId: user.id, ...client, detail: { methods } });
        if (await secondFactors.claimNotice(user.id)) await emailFlows.secondFactorFailures(user, SECOND_FACTOR_FAILURES);
        throw invalidMfaCode();
      }
      if (!(await challenges.spend(challenge, method === "email_code"))) throw challengeExpired();
      await secondFactors.end(user.id);
      if (method === "recovery_code")
        await audit.record({ event: "recovery_code_used", userId: user.id, ...client, detail: { left: (await mfa.factors(user.id)).recovery_codes_left } });
      if (method === "totp_enrollment") await audit.record({ event: "totp_enabled", userId: user.id, ...client, detail: { via: "sign-in" } });
      return { user, method, recoveryCodes };
    },

    /** MFA_REQUIRED_ROLES: the authenticator secret for a challenge that asks for enrolment. */
    async startEnrollment(challengeId: string) {
      const challenge = await challenges.live(challengeId);
      const user = await users.findById(challenge.userId);
      if (!user || user.disabled || !(challenge.methods as ChallengeMethod[]).includes("totp_enrollment")) throw challengeExpired();
      return mfa.startTotp(user.id, user.username);
    },
  };
}

export type SecondStep = ReturnType<typeof createSecondStep>;
