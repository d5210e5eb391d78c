import type { User } from "../../db/schema";
import { apiErrors, validationFailed } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import type { DeviceCookies } from "../../limits/device";
import type { Mailer } from "../../mail";
import type { AuditLog } from "../audit/service";
import type { CodePurpose, OneTimeCodes } from "../codes/service";
import type { MfaService } from "../mfa/service";
import { NO_NOTICES, type LogoutNotices } from "../oidc/backchannel";
import type { PasskeyService } from "../passkeys/service";
import { AccountChanged } from "../sessions/account-check";
import { assertSessionLive, type SessionService } from "../sessions/service";
import type { UserService } from "../users/service";
import type { createPasswordCheck } from "./password-check";

/** A setup link (an account made to set up a passkey first, or an admin's reset) works for a day, once. */
const SETUP_LINK_TTL = 24 * 60 * 60;
/** A mailed sign-in link (a lost passkey) works for 15 minutes, once: like a password reset link, it is a key to the account. */
const SIGN_IN_LINK_TTL = 15 * 60;

/**
 * RFC 8176 amr of the sessions these paths open: a recovery code is a one-time code ("otp", as when it answers
 * a second step); a mailed link and a setup link have no registered value (RFC 8176 §2 leaves other values to
 * the parties: README, Passkeys), so "email" and "link". None is "hwk" or "mfa": such a session never satisfies a
 * passkey requirement (NIST SP 800-63B §6.1.2.3: a replacement is bound at a lower assurance than the lost one).
 */
const FALLBACK_AMR = { recovery_code: ["otp"], email_link: ["email"], setup_link: ["link"] } as const;
type FallbackMethod = keyof typeof FALLBACK_AMR;

/** The one answer of a request for a mailed sign-in link, whether or not the address is anyone's. */
const SIGN_IN_LINK_REQUESTED = { message: "If a passkey account has this verified address, a sign-in link is on its way: it works for 15 minutes." } as const;

/** A link that is wrong, spent or expired: one answer for all three. */
const deadLink = () => apiErrors.invalid_code("This link is wrong, already used or expired.");
/** A wrong username or recovery code: one answer for both (no enumeration). */
const wrongRecoveryCode = () => apiErrors.invalid_code("The username or recovery code is incorrect.");

/** What a fallback's sign-in hands the page: a browser session, the device cookie, and whose it is. */
export interface FallbackSignIn {
  session: { sessionId: string; token: string; expiresAt: number };
  device: string;
  user: User;
  /** A setup link of a new account (finish setting it up) or of a reset / lost device (add a new passkey). */
  purpose: "setup" | "replace";
}

/** Makes a setup link for `user` (only its hash is stored), and audits it. Shared by the server and the CLI. */
export async function issueSetupLink(
  deps: { codes: OneTimeCodes; audit: AuditLog; publicUrl: string },
  user: Pick<User, "id">,
  reason: "new_account" | "reset",
  detail: Record<string, unknown>,
  client?: ClientInfo,
): Promise<{ link: string; expiresAt: Date }> {
  const issued = await deps.codes.issue(user.id, reason === "reset" ? "passkey_reset" : "passkey_setup", SETUP_LINK_TTL);
  await deps.audit.record({ event: "passkey_setup_link_created", userId: user.id, ...client, detail: { ...detail, reset: reason === "reset" } });
  return { link: `${deps.publicUrl}/passkey-setup/${encodeURIComponent(issued.token)}`, expiresAt: new Date(Date.now() + SETUP_LINK_TTL * 1000) };
}

/**
 * The ways back to a passkey when a device is lost (issue 25; Pocket ID #18), and the setup link of an account
 * made to set up a passkey first. Each is single use, audited, and opens a real browser session whose amr says
 * how it was made (FALLBACK_AMR); the page then sends the person to add a passkey.
 *
 * Who may use which, deliberately narrow (fail closed): the recovery code and the mailed link serve accounts
 * without a password only. An account with a password already has its way back (the password, then a recovery
 * code as the second step, or a password reset), and a recovery code or a mail alone must not become a way
 * around its password. The mailed link also skips accounts with an authenticator app (they have recovery codes,
 * and a mail alone must not get around TOTP).
 */
export function createPasskeyFallbacks(deps: {
  users: UserService;
  sessions: SessionService;
  codes: OneTimeCodes;
  mfa: Pick<MfaService, "useRecoveryCode" | "hasTotp" | "factors">;
  passkeys: Pick<PasskeyService, "removeAllOf">;
  passwords: Pick<ReturnType<typeof createPasswordCheck>, "beginSecretCheck" | "admitAccount" | "completeSignIn">;
  devices: DeviceCookies;
  mailer: Pick<Mailer, "enabled" | "claimAddress" | "send">;
  audit: AuditLog;
  publicUrl: string;
  notices?: LogoutNotices;
}) {
  const { users, sessions, codes, mfa, passkeys, passwords, devices, mailer, audit, publicUrl, notices = NO_NOTICES } = deps;

  /**
   * The session of a fallback (or of a passkey-first account's first visit), audited as the sign-in it is. The
   * account was admitted (enabled, its address verified where that is required) by the caller.
   */
  async function open(user: User, method: FallbackMethod, client: ClientInfo, audited: Record<string, unknown>): Promise<Omit<FallbackSignIn, "purpose">> {
    let session;
    try {
      session = await sessions.createBrowser({ userId: user.id }, client, { amr: [...FALLBACK_AMR[method]] });
    } catch (error) {
      // Deleted or disabled meanwhile: the link or code is spent, and signs in nobody.
      if (error instanceof AccountChanged) throw deadLink();
      throw error;
    }
    await passwords.completeSignIn(user, client);
    await audit.record({ event: "login_succeeded", userId: user.id, ...client, detail: { via: "browser", fallback: method, ...audited } });
    return { session, device: devices.issue(user.id), user };
  }

  /**
   * Spends a link of one of `purposes` (single use: a conditional DELETE) and names its account. The account is
   * admitted first: a link to a disabled or not yet verified account is refused without being spent, so it still
   * works once an admin enables the account or the address is confirmed.
   */
  async function spendLink(purposes: CodePurpose[], token: string, client: ClientInfo, method: FallbackMethod) {
    // A token is 43 characters of base64url: anything else is no token of ours, looked up or not.
    if (!/^[A-Za-z0-9_-]{16,128}$/.test(token)) throw deadLink();
    for (const purpose of purposes) {
      const row = await codes.checkToken(purpose, token);
      if (!row) continue;
      const user = await users.findById(row.userId);
      if (!user) throw deadLink();
      await passwords.admitAccount(user, client, method);
      if (!(await codes.consume(row))) throw deadLink();
      return { user, purpose };
    }
    throw deadLink();
  }

  return {
    /** The setup link of an account made without a password (admin API, admin page), or after a reset. */
    issueSetupLink: (user: Pick<User, "id">, reason: "new_account" | "reset", detail: Record<string, unknown>, client?: ClientInfo) =>
      issueSetupLink({ codes, audit, publicUrl }, user, reason, detail, client),

    /** A passkey-first account made from an invitation signs in at once: a session (amr "link"), then a passkey. */
    async afterInvitation(user: User, client: ClientInfo): Promise<FallbackSignIn> {
      await passwords.admitAccount(user, client, "setup_link");
      return { ...(await open(user, "setup_link", client, { invitation: true })), purpose: "setup" };
    },

    /** Opens a setup link (once): the account signs in, and is sent to add a passkey. */
    async useSetupLink(token: string, client: ClientInfo): Promise<FallbackSignIn> {
      const { user, purpose } = await spendLink(["passkey_setup", "passkey_reset"], token, client, "setup_link");
      await audit.record({ event: "passkey_fallback_used", userId: user.id, ...client, detail: { method: "setup_link" } });
      return { ...(await open(user, "setup_link", client, {})), purpose: purpose === "passkey_setup" ? "setup" : "replace" };
    },

    /** Opens a mailed sign-in link (once). */
    async useSignInLink(token: string, client: ClientInfo): Promise<FallbackSignIn> {
      const { user } = await spendLink(["sign_in_link"], token, client, "email_link");
      await audit.record({ event: "passkey_fallback_used", userId: user.id, ...client, detail: { method: "email_link" } });
      return { ...(await open(user, "email_link", client, {})), purpose: "replace" };
    },

    /**
     * A lost passkey's recovery code, with the username or address: behind the limiter of every secret (per
     * address and per account; an unknown name is throttled exactly like an account). An unknown name, an account
     * with a password and a wrong code fail alike, after the same work (one lookup of the code's hash), and a
     * code is spent only for an account that may use this path.
     */
    async useRecoveryCode(login: string, code: string, client: ClientInfo): Promise<FallbackSignIn> {
      if (login.length > 254 || code.length > 64) throw validationFailed([{ field: login.length > 254 ? "login" : "code", message: "Too long." }]);
      const user = await users.findByLogin(login);
      const check = await passwords.beginSecretCheck(login, user, client);
      const eligible = user !== undefined && user.passwordHash === null;
      // An account that may not use this path still costs the same query, against no account's codes.
      if (!(await mfa.useRecoveryCode(eligible ? user.id : "", code)) || !eligible) {
        await audit.record({ event: "login_failed", userId: user?.id ?? null, ...client, detail: { reason: "invalid_recovery_code", via: "lost_passkey" } });
        throw wrongRecoveryCode();
      }
      await check.succeeded();
      await passwords.admitAccount(user, client, "recovery_code");
      await audit.record({ event: "recovery_code_used", userId: user.id, ...client, detail: { left: (await mfa.factors(user.id)).recovery_codes_left, via: "lost_passkey" } });
      await audit.record({ event: "passkey_fallback_used", userId: user.id, ...client, detail: { method: "recovery_code" } });
      return { ...(await open(user, "recovery_code", client, {})), purpose: "replace" };
    },

    /**
     * Mails a sign-in link to a verified address of a passwordless account without an authenticator app (see
     * above), once a minute per address; the same answer whatever the address (no enumeration).
     */
    async mailSignInLink(email: string, client: ClientInfo): Promise<typeof SIGN_IN_LINK_REQUESTED> {
      if (!mailer.enabled) throw apiErrors.mail_disabled("This server sends no mail.");
      const user = email.length <= 254 ? await users.findByEmail(email) : undefined;
      const eligible = user !== undefined && user.email !== null && user.emailVerified && !user.disabled && user.passwordHash === null && !(await mfa.hasTotp(user.id));
      if (eligible && mailer.claimAddress("sign_in_link", user.email!).allowed) {
        const issued = await codes.issue(user.id, "sign_in_link", SIGN_IN_LINK_TTL);
        await mailer.send("sign_in_link", user.email!, user, { link: `${publicUrl}/login/link/${encodeURIComponent(issued.token)}`, minutes: String(SIGN_IN_LINK_TTL / 60) });
        await audit.record({ event: "sign_in_link_requested", userId: user.id, ...client });
      }
      return SIGN_IN_LINK_REQUESTED;
    },

    /**
     * An admin's reset of a lost device: every passkey of the account is deleted, every session ends (its clients
     * are told), and a setup link is made for the person to add a new one. The password, if any, stays.
     */
    async resetPasskeys(user: User, actor: ClientInfo & { userId: string; username: string; sessionId: string }) {
      const deleted = await passkeys.removeAllOf(user.id, (tx) => assertSessionLive(tx, actor.sessionId, "admin"));
      const ended = await notices.around([user.id], () => sessions.revokeAllForUser(user.id));
      const by = { actor_id: actor.userId, actor: actor.username };
      await audit.record({ event: "passkeys_reset", userId: user.id, ip: actor.ip, userAgent: actor.userAgent, detail: { ...by, passkeys_deleted: deleted, sessions_ended: ended } });
      const setup = await issueSetupLink({ codes, audit, publicUrl }, user, "reset", by, { ip: actor.ip, userAgent: actor.userAgent });
      return { ...setup, passkeysDeleted: deleted, sessionsEnded: ended };
    },
  };
}

export type PasskeyFallbacks = ReturnType<typeof createPasskeyFallbacks>;
