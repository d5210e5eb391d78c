import { apiErrors } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { leavesNoWayIn, type WaysIn } from "../../lib/ways-in";
import type { AuditLog } from "../audit/service";
import type { EmailFlows } from "../email/service";
import type { LogoutNotices } from "../oidc/backchannel";
import { waysIn } from "../passkeys/service";
import { assertSessionLive, type SessionPrincipal, type SessionService } from "../sessions/service";
import type { UserService } from "../users/service";
import { assertPasswordSize, type createPasswordCheck } from "./password-check";

const lastWayIn = () =>
  apiErrors.last_sign_in_method("Your account has no passkey, so the password is its only way in: add a passkey before removing the password.");

/**
 * A signed-in user's changes to their own password: a new one, a first one for an account without, and its
 * removal while a passkey remains (the rule "not the last way in", lib/ways-in.ts, decided again inside the write's
 * transaction). Each keeps this session and ends every other one.
 */
export function createPasswordChanges(deps: {
  users: UserService;
  sessions: SessionService;
  audit: AuditLog;
  emailFlows: Pick<EmailFlows, "passwordChanged">;
  notices: LogoutNotices;
  /** The account's passkeys: a password goes only while one remains. */
  passkeys: { list(userId: string): PromiseLike<readonly unknown[]> };
  passwords: Pick<ReturnType<typeof createPasswordCheck>, "checkPassword">;
}) {
  const { users, sessions, audit, emailFlows, notices, passkeys } = deps;
  const { checkPassword } = deps.passwords;

  return {
    /** What the account signs in with (the account page shows "Remove password" only with a passkey). */
    async waysIn(userId: string): Promise<WaysIn> {
      const user = await users.findById(userId);
      return { hasPassword: user?.passwordHash != null, passkeys: (await passkeys.list(userId)).length };
    },

    /**
     * Makes the account passwordless, proven by the current password (behind the limiter, like a sign-in: it is
     * the authenticator being removed, and it must be the owner who removes it). Refused while the account has no
     * passkey (409 last_sign_in_method: not the last way in). Every other session ends, as after a password
     * change: sessions a password opened rest on an authenticator that is no longer bound, and one opened with a
     * stolen password must not outlive its removal (OWASP ASVS 4.0 V3.3.3: terminate other sessions after a
     * credential change; NIST SP 800-63B §6.1.2.3: sessions of a removed authenticator are not to be relied on).
     */
    async removePassword(principal: SessionPrincipal, currentPassword: string, client: ClientInfo): Promise<number> {
      assertPasswordSize(currentPassword, "current_password");
      const user = await users.findById(principal.userId);
      if (user?.passwordHash === null) throw apiErrors.no_password("This account has no password.");
      // The rule first: a refusal that costs no hashing and no count against the account.
      if (user && leavesNoWayIn({ hasPassword: true, passkeys: (await passkeys.list(user.id)).length }, "password")) throw lastWayIn();
      if (!user || !(await checkPassword(principal.username, currentPassword, user, client))) {
        await audit.record({ event: "password_change_failed", userId: principal.userId, ...client, detail: { reason: "invalid_current_password", removal: true } });
        throw apiErrors.invalid_current_password("The current password is incorrect.");
      }
      await users.removePassword(user.id, user.passwordHash!, function* (tx) {
        yield* assertSessionLive(tx, principal.sessionId);
        if (leavesNoWayIn(yield* waysIn(tx, user.id), "password")) throw lastWayIn();
      });
      const ended = await notices.around([user.id], () => sessions.revokeOthers(user.id, principal.sessionId));
      await audit.record({ event: "password_removed", userId: user.id, ...client, detail: { sessions_ended: ended } });
      await emailFlows.passwordChanged(user);
      return ended;
    },

    /**
     * Needs the current password (throttled like a login); keeps this session and ends every other one. An account
     * without a password (passkeys only) sets its first one with the session alone: there is no current password
     * to prove, and the session's sign-in was a passkey (NIST SP 800-63B §6.1.2.1: an authenticator is bound within
     * an authenticated session). Which of the two it was is re-checked in the update (the hash it read is still there).
     */
    async changePassword(principal: SessionPrincipal, currentPassword: string | undefined, newPassword: string, client: ClientInfo) {
      if (currentPassword !== undefined) assertPasswordSize(currentPassword, "current_password");
      assertPasswordSize(newPassword, "new_password");
      const user = await users.findById(principal.userId);
      const proven = user?.passwordHash === null || (currentPassword !== undefined && user !== undefined && (await checkPassword(principal.username, currentPassword, user, client)));
      if (!user || !proven) {
        await audit.record({ event: "password_change_failed", userId: principal.userId, ...client, detail: { reason: "invalid_current_password" } });
        throw apiErrors.invalid_current_password("The current password is incorrect.");
      }
      await users.setPassword(user, newPassword, "new_password", (tx) => assertSessionLive(tx, principal.sessionId), user.passwordHash);
      const ended = await sessions.revokeOthers(user.id, principal.sessionId);
      await audit.record({ event: "password_changed", userId: user.id, ...client, detail: user.passwordHash === null ? { sessions_ended: ended, first_password: true } : { sessions_ended: ended } });
      await emailFlows.passwordChanged(user);
      return ended;
    },
  };
}
