import type { Db } from "../../db/client";
import { apiErrors, validationFailed, type ApiError } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { recentPasskeySignIn } from "../../lib/amr";
import type { AuditLog } from "../audit/service";
import type { EmailFlows } from "../email/service";
import { liveAuthentication, type SessionPrincipal, type SessionService } from "../sessions/service";
import type { UserService } from "../users/service";
import { assertPasswordSize, type createPasswordCheck } from "./password-check";

const wrongPassword = () => apiErrors.invalid_current_password("The current password is incorrect.");

const reauthenticationRequired = () =>
  apiErrors.reauthentication_required(
    "Your account has no password, so changing its email address needs a passkey sign-in of the last 5 minutes: sign in again with a passkey (in a browser, /login/passkey-step).",
  );

/**
 * A signed-in user's request to change their email address, and its proof: one rule per kind of account. An
 * account with a password proves it with the password (behind the limiter, like a sign-in); an account without
 * one with its session, when that session is a passkey sign-in of the last 5 minutes (lib/amr.ts
 * `recentPasskeySignIn`: reauthentication before a sensitive change, OWASP ASVS 4.0 V3.7.1). A passkey never
 * stands in for an existing password. The proof is decided again in the code's transaction: the session still
 * live, its user enabled, the password the one that was decided on (none, or the hash checked).
 */
export function createEmailChange(deps: {
  users: Pick<UserService, "findById">;
  sessions: Pick<SessionService, "authenticationOf">;
  emailFlows: Pick<EmailFlows, "requestEmailChange">;
  passwords: Pick<ReturnType<typeof createPasswordCheck>, "checkPassword">;
  audit: Pick<AuditLog, "record">;
}) {
  const { users, sessions, emailFlows, audit } = deps;
  const { checkPassword } = deps.passwords;

  /** Whether this session may change the address of an account without a password (and skip the passkey step). */
  const recentPasskeySession = async (sessionId: string) => recentPasskeySignIn(await sessions.authenticationOf(sessionId), Date.now());

  return {
    recentPasskeySession,

    /**
     * Mails a code to `newEmail` once the caller is proven the owner. A `currentPassword` is always checked (for an
     * account without a password it fails as a wrong one does, after the same work: no oracle); without one, an
     * account with a password gets the 422 of a missing field, and one without needs a recent passkey sign-in
     * (403 reauthentication_required).
     */
    async requestEmailChange(principal: SessionPrincipal, newEmail: string, currentPassword: string | undefined, client: ClientInfo): Promise<void> {
      if (currentPassword !== undefined) assertPasswordSize(currentPassword, "current_password");
      const user = await users.findById(principal.userId);
      // A refused proof is audited: on a session someone else holds, it is the trace of an attempt to take the account.
      const refuse = async (error: ApiError) => (await audit.record({ event: "email_change_failed", userId: principal.userId, ...client, detail: { reason: error.code } }), error);
      if (!user) throw wrongPassword();
      if (currentPassword !== undefined) {
        if (!(await checkPassword(principal.username, currentPassword, user, client))) throw await refuse(wrongPassword());
      } else if (user.passwordHash !== null) {
        throw validationFailed([{ field: "current_password", message: "Is required." }]);
      } else if (!(await recentPasskeySession(principal.sessionId))) {
        throw await refuse(reauthenticationRequired());
      }
      const decidedHash = user.passwordHash;
      await emailFlows.requestEmailChange({ id: user.id, username: user.username }, newEmail, client, function* (tx: Db) {
        const now = yield* liveAuthentication(tx, principal.sessionId);
        // A password set, changed or removed meanwhile: what was proven no longer stands.
        if (now.passwordHash !== decidedHash) throw apiErrors.invalid_current_password("The password of this account changed meanwhile: try again.");
        if (decidedHash === null && !recentPasskeySignIn(now, Date.now())) throw reauthenticationRequired();
      });
    },
  };
}
