import type { Db } from "../../src/db/client";
import { createRateLimitAudit } from "../../src/limits/audit";
import { createSecondFactorLimiter } from "../../src/limits/second-factor";
import type { AuditLog } from "../../src/modules/audit/service";
import { createChallengeStore } from "../../src/modules/auth/challenges";
import { createSecondStep } from "../../src/modules/auth/second-step";
import type { MfaService } from "../../src/modules/mfa/service";
import type { UserService } from "../../src/modules/users/service";

/** The second step for in-process tests of the auth service: no mail, no limits (RATE_LIMIT=off), no LOGIN_EMAIL_CODE. */
export function quietSecondStep(db: Db, deps: { users: UserService; mfa: MfaService; audit: AuditLog; codeKey: Uint8Array }) {
  const { users, mfa, audit, codeKey } = deps;
  return createSecondStep({
    users,
    mfa,
    challenges: createChallengeStore(db, codeKey, 600),
    secondFactors: createSecondFactorLimiter(db, undefined),
    emailFlows: { async sendLoginCode() {}, claimLoginCode: () => ({ allowed: true }), async secondFactorFailures() {} },
    audit,
    auditRateLimit: createRateLimitAudit((event) => audit.record(event)),
    settings: { loginEmailCode: false, mfaRequiredRoles: [] },
  });
}
