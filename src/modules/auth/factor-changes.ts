import { apiErrors, validationFailed } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import type { AuditLog } from "../audit/service";
import { mfaNotEnrolled, type MfaService } from "../mfa/service";
import type { SessionPrincipal } from "../sessions/service";
import type { UserService } from "../users/service";
import { assertPasswordSize, type createPasswordCheck } from "./password-check";
import { invalidMfaCode } from "./second-step";

/**
 * A signed-in user's changes to their own second factors: switching TOTP on and off and new recovery codes. The
 * secrets they are proven with go through the same limiter as a sign-in's password.
 */
export function createFactorChanges(deps: {
  users: UserService;
  mfa: MfaService;
  audit: AuditLog;
  passwords: Pick<ReturnType<typeof createPasswordCheck>, "beginSecretCheck" | "checkPassword">;
}) {
  const { users, mfa, audit } = deps;
  const { beginSecretCheck, checkPassword } = deps.passwords;

  return {
    /**
     * Switches TOTP on with the app's first code (behind the limiter, like a password); answers the 10 recovery
     * codes. A wrong code is 400 invalid_code.
     */
    async enableTotp(principal: SessionPrincipal, code: string, client: ClientInfo): Promise<string[]> {
      const user = await users.findById(principal.userId);
      if (!user) throw invalidMfaCode();
      const check = await beginSecretCheck(user.username, user, client);
      const codes = await mfa.confirmTotp(user.id, code, principal.sessionId);
      if (!codes) throw apiErrors.invalid_code("The code is wrong or was already used.");
      await check.succeeded();
      await audit.record({ event: "totp_enabled", userId: user.id, ...client });
      return codes;
    },

    /** New recovery codes in place of the old ones (TOTP must be on). */
    async newRecoveryCodes(principal: SessionPrincipal, client: ClientInfo): Promise<string[]> {
      if (!(await mfa.hasTotp(principal.userId))) throw mfaNotEnrolled();
      const codes = await mfa.replaceRecoveryCodes(principal.userId, principal.sessionId);
      await audit.record({ event: "recovery_codes_generated", userId: principal.userId, ...client });
      return codes;
    },

    /** Removes TOTP and the recovery codes, proven by the password or a current code (both behind the limiter). */
    async removeTotp(principal: SessionPrincipal, proof: { password?: string; code?: string }, client: ClientInfo): Promise<void> {
      if (!(await mfa.hasTotp(principal.userId))) throw mfaNotEnrolled();
      if ((proof.password === undefined) === (proof.code === undefined))
        throw validationFailed([{ field: "password", message: "Give either password or code." }]);
      const user = await users.findById(principal.userId);
      let proven = false;
      if (user && proof.password !== undefined) {
        assertPasswordSize(proof.password, "password");
        proven = await checkPassword(principal.username, proof.password, user, client);
      } else if (user) {
        const check = await beginSecretCheck(user.username, user, client);
        proven = await mfa.verifyTotp(user.id, proof.code!);
        if (proven) await check.succeeded();
      }
      if (!proven) throw apiErrors.invalid_password_or_code("The password or code is incorrect.");
      await mfa.removeAll(principal.userId, principal.sessionId);
      await audit.record({ event: "totp_removed", userId: principal.userId, ...client });
    },
  };
}
