import { apiErrors, OAuthError, validationFailed } from "../../errors";
import { NO_NOTICES, type LogoutNotices } from "../oidc/backchannel";
import type { User } from "../../db/schema";
import type { MfaService } from "../mfa/service";
import type { Atomic } from "../../db/atomic";
import type { Db } from "../../db/client";
import type { IssuedTokens as DeliveredTokens } from "../../delivery";
import type { ClientInfo } from "../../http/client-ip";
import type { SecretCheckLimiter } from "../../limits";
import type { RateLimitAudit } from "../../limits/audit";
import type { DeviceCookies } from "../../limits/device";
import type { PasswordHasher } from "../../lib/passwords";
import type { AccessTokens } from "../../tokens/access";
import type { AuditLog } from "../audit/service";
import type { EmailFlows } from "../email/service";
import { AccountChanged, type VerifiedAccount } from "../sessions/account-check";
import { RefreshTokenReused, type BrowserSessionPrincipal, type SessionPrincipal, type SessionService } from "../sessions/service";
import { toPublicUser, type PublicUser, type UserIdentity, type UserService } from "../users/service";
import { accountDisabled, createPasswordCheck, invalidCredentials } from "./password-check";
import { createFactorChanges } from "./factor-changes";
import { createPasswordChanges } from "./password-changes";
import { createEmailChange } from "./email-change";
import type { ChallengeMethod } from "./challenges";
import type { LoginChallenge, SecondStep, SecondStepAnswer } from "./second-step";

/** What a sign-in or refresh hands to the configured transport: tokens for a user as the API shows users. */
type IssuedTokens = DeliveredTokens<PublicUser>;

export interface AuthSettings {
  allowRegistration: boolean;
  /** REQUIRE_EMAIL_VERIFICATION: registration needs an email, and sign-in waits until it is verified. */
  requireEmailVerification: boolean;
  refreshTokenTtl: number;
}

export interface AuthDeps {
  users: UserService;
  sessions: SessionService;
  accessTokens: AccessTokens;
  hasher: PasswordHasher;
  limiter: SecretCheckLimiter;
  audit: AuditLog;
  auditRateLimit: RateLimitAudit;
  /** The mails that follow a registration and a password change. */
  emailFlows: Pick<EmailFlows, "registered" | "passwordChanged" | "requestEmailChange">;
  mfa: MfaService;
  /** Which second step an account owes, its challenge, and the checking of answers (second-step.ts). */
  secondStep: SecondStep;
  devices: DeviceCookies;
  settings: AuthSettings;
  /** Back-channel logout: the OpenID Connect clients a sign-out ends are told. */
  notices?: LogoutNotices;
  /** The account's passkeys: a password goes only while one remains (lib/ways-in.ts). */
  passkeys: { list(userId: string): PromiseLike<readonly unknown[]> };
}

/** What a person registering types. */
interface NewAccount {
  username: string;
  /** Null: a passkey-first account (an invitation's "Use a passkey instead"). */
  password: string | null;
  email?: string | null;
}

/** An invitation's part in a registration (modules/invitations): its address, roles, the address's state, its use. */
export interface InvitedAccount {
  id: string;
  /** The address the invitation pins (what the person typed is ignored), or null. */
  email: string | null;
  roles: string[];
  emailVerified: boolean;
  /** Counts the use in the account's insert transaction; throws when the invitation can no longer be used. */
  claim: (tx: Db) => Atomic<void>;
}

/** Registration that must verify its address first: the account exists, no session yet. */
export interface PendingVerification {
  pending: PublicUser;
}

/** RFC 8176 amr of a sign-in (API or browser): a password; or a password and a one-time code (TOTP, mailed or recovery). */
const PASSWORD_AMR = ["pwd"];

/**
 * RFC 8176 amr of a passkey sign-in: a hardware-bound key ("hwk"); with user verification also "user" (the
 * authenticator checked its user, by PIN or biometric: which one it does not say, so not "pin" or "fpt"), and
 * the two factors make "mfa".
 */
const passkeyAmr = (userVerified: boolean) => (userVerified ? ["hwk", "user", "mfa"] : ["hwk"]);

/**
 * RFC 8176 amr after a passkey step-up of a session (pages/passkey-step.tsx): what the session had, and the
 * passkey (`hwk`); with user verification `user` and `mfa`, and `mfa` too when the session's password (or code)
 * was a factor of another kind. Nothing is dropped: the step-up adds an authentication, it forgets none.
 */
export function stepUpAmr(previous: readonly string[], userVerified: boolean): string[] {
  const added = ["hwk", ...(userVerified ? ["user", "mfa"] : []), ...(previous.includes("pwd") || previous.includes("otp") ? ["mfa"] : [])];
  return [...new Set([...previous, ...added])];
}

/** RFC 8176 amr after a second step: the first factor (a password, or a passkey without user verification), then a passkey or a one-time code. */
function secondStepAmr(firstFactor: "password" | "passkey", method: ChallengeMethod): string[] {
  return [firstFactor === "passkey" ? "hwk" : "pwd", method === "passkey" ? "hwk" : "otp", "mfa"];
}

export const mfaRequired = () =>
  new OAuthError("mfa_required", "This account signs in with a second step, which the password grant cannot carry: use POST /api/v1/auth/login, then POST /api/v1/auth/login/verify.", 403);

export type LogoutScope = "current" | "others" | "global";

export function principalUser(principal: UserIdentity): PublicUser {
  return {
    id: principal.userId,
    username: principal.username,
    email: principal.email,
    email_verified: principal.emailVerified,
    roles: principal.roles,
    created_at: principal.createdAt.toISOString(),
  };
}

/** Account rules with no knowledge of HTTP: what goes in, which tokens or which ApiError come out. */
export function createAuthService({ users, sessions, accessTokens, hasher, limiter, audit, auditRateLimit, emailFlows, mfa, secondStep, devices, settings, notices = NO_NOTICES, passkeys }: AuthDeps) {
  const passwords = createPasswordCheck({
    users,
    hasher,
    limiter,
    devices,
    audit,
    auditRateLimit,
    requireEmailVerification: settings.requireEmailVerification,
  });
  const { verifyLogin, admitAccount, completeSignIn } = passwords;

  /**
   * Runs a session insert (or the opening of a challenge) that a sign-in verified: an account deleted, disabled or
   * given a new password while its password was being checked fails that sign-in as if the password were wrong
   * (or as disabled), never with a 500 and never with a session that outlives the change.
   */
  async function forVerifiedAccount<T>(account: VerifiedAccount, client: ClientInfo, open: () => Promise<T>): Promise<T> {
    try {
      return await open();
    } catch (error) {
      if (!(error instanceof AccountChanged)) throw error;
      const reason = error.reason === "disabled" ? "account_disabled" : "invalid_credentials";
      await audit.record({ event: "login_failed", userId: error.reason === "deleted" ? null : account.userId, ...client, detail: { reason } });
      throw error.reason === "disabled" ? accountDisabled() : invalidCredentials();
    }
  }

  /** An API sign-in's refresh-token session, recording how it authenticated (`amr`, as the browser's does). */
  async function startSession(account: VerifiedAccount, user: PublicUser, client: ClientInfo, amr: string[]): Promise<IssuedTokens> {
    const session = await forVerifiedAccount(account, client, () => sessions.create(account, client, amr));
    const access = await accessTokens.issue(account.userId, session.sessionId, session.expiresAt);
    return { access, refreshToken: session.refreshToken, refreshExpiresIn: settings.refreshTokenTtl, user };
  }

  /**
   * The password was right: the challenge of a second step, or undefined when none is owed. `allowChallenge`
   * false (the password grant of /token, which has no second step): an account that owes one gets mfa_required,
   * and no challenge is opened or mailed.
   */
  async function challengeAfterPassword(user: User, client: ClientInfo, allowChallenge = true, firstFactor: "password" | "passkey" = "password"): Promise<LoginChallenge | undefined> {
    const methods = await secondStep.methodsFor(user, firstFactor);
    if (methods.length === 0) return undefined;
    if (!allowChallenge) throw mfaRequired();
    const verified = { userId: user.id, passwordHash: user.passwordHash };
    return forVerifiedAccount(verified, client, async () => (await sessions.assertAccountUnchanged(verified), secondStep.open(user, methods)));
  }

  /** A passkey was verified: the account may sign in, and without UV its second step is owed (when it has one). */
  async function afterPasskey(user: User, userVerified: boolean, client: ClientInfo): Promise<LoginChallenge | undefined> {
    await admitAccount(user, client, "passkey");
    return userVerified ? undefined : challengeAfterPassword(user, client, true, "passkey");
  }

  async function passkeySignedIn(user: User, userVerified: boolean, client: ClientInfo, via?: "browser") {
    await completeSignIn(user, client);
    await audit.record({ event: "login_succeeded", userId: user.id, ...client, detail: via === undefined ? { passkey: true, user_verified: userVerified } : { passkey: true, user_verified: userVerified, via } });
  }

  /**
   * The one way an account is registered (the API, the sign-up page, an invitation's page): the same rules,
   * audit and mail. Only an invitation opens it while registration is closed; it brings the roles and the
   * address's verified state, and its use is counted in the account's insert (users.create's precondition).
   */
  async function createAccount(input: NewAccount, client: ClientInfo, invitation?: InvitedAccount): Promise<User> {
    if (!settings.allowRegistration && !invitation)
      throw apiErrors.registration_disabled("Registration is closed on this server.");
    if (settings.requireEmailVerification && !(invitation?.email ?? input.email))
      throw validationFailed([{ field: "email", message: "An email address is required (REQUIRE_EMAIL_VERIFICATION=true)." }]);
    const user = await users.create(
      { ...input, email: invitation?.email ?? input.email, roles: invitation?.roles, emailVerified: invitation?.emailVerified },
      invitation?.claim,
    );
    await audit.record({ event: "user_registered", userId: user.id, ...client, ...(invitation ? { detail: { invitation_id: invitation.id } } : {}) });
    if (invitation)
      await audit.record({ event: "invitation_used", userId: user.id, ...client, detail: { invitation_id: invitation.id, username: user.username, roles: user.roles } });
    await emailFlows.registered(user);
    return user;
  }

  return {
    ...createFactorChanges({ users, mfa, audit, passwords }),
    ...createPasswordChanges({ users, sessions, audit, emailFlows, notices, passkeys, passwords }),
    ...createEmailChange({ users, sessions, emailFlows, passwords, audit }),

    async register(input: NewAccount, client: ClientInfo, invitation?: InvitedAccount): Promise<IssuedTokens | PendingVerification> {
      const user = await createAccount(input, client, invitation);
      if (settings.requireEmailVerification && !user.emailVerified) return { pending: toPublicUser(user) };
      return startSession({ userId: user.id, passwordHash: user.passwordHash }, toPublicUser(user), client, PASSWORD_AMR);
    },

    createAccount,

    /**
     * Signs in an API client: a refresh-token session and an access token, or the challenge of a second step
     * (`allowChallenge`: see challengeAfterPassword).
     */
    async login(login: string, password: string, client: ClientInfo, allowChallenge = true): Promise<IssuedTokens | LoginChallenge> {
      const user = await verifyLogin(login, password, client);
      const verified = { userId: user.id, passwordHash: user.passwordHash };
      const challenge = await challengeAfterPassword(user, client, allowChallenge);
      if (challenge) return challenge;
      const tokens = await startSession(verified, toPublicUser(user), client, PASSWORD_AMR);
      await completeSignIn(user, client);
      await audit.record({ event: "login_succeeded", userId: user.id, ...client });
      return { ...tokens, device: devices.issue(user.id) };
    },

    /**
     * Signs in with a verified passkey assertion (modules/passkeys). With user verification (a PIN or a biometric
     * on the authenticator) it is two factors in one, a complete sign-in (NIST SP 800-63B §5.1.9: a multi-factor
     * cryptographic authenticator); without it, it is one factor like a password, and the account's second step
     * follows (the 202 challenge), when it has one.
     */
    async loginWithPasskey(user: User, userVerified: boolean, client: ClientInfo): Promise<IssuedTokens | LoginChallenge> {
      const challenge = await afterPasskey(user, userVerified, client);
      if (challenge) return challenge;
      const tokens = await startSession({ userId: user.id }, toPublicUser(user), client, passkeyAmr(userVerified));
      await passkeySignedIn(user, userVerified, client);
      return { ...tokens, device: devices.issue(user.id) };
    },

    /** The sign-in page's passkey: the same rules as loginWithPasskey, then a browser session. */
    async signInBrowserWithPasskey(user: User, userVerified: boolean, client: ClientInfo) {
      const challenge = await afterPasskey(user, userVerified, client);
      if (challenge) return { challenge };
      const session = await forVerifiedAccount({ userId: user.id }, client, () => sessions.createBrowser({ userId: user.id }, client, { amr: passkeyAmr(userVerified) }));
      await passkeySignedIn(user, userVerified, client, "browser");
      return { session, device: devices.issue(user.id) };
    },

    /**
     * The passkey step-up (pages/passkey-step.tsx): the signed-in browser's user confirmed with one of their own
     * passkeys (the caller verified it for `principal.userId`). A new browser session replaces the old one (never
     * the same id made stronger: a cookie taken before the step-up must not gain from it), with the amr of both
     * and the time of this authentication; the old one ends, and handoffs to other sign-in hosts follow anew.
     */
    async stepUpBrowser(principal: BrowserSessionPrincipal, userVerified: boolean, passkeyId: string, client: ClientInfo) {
      const account = { userId: principal.userId };
      const amr = stepUpAmr(principal.amr, userVerified);
      const session = await forVerifiedAccount(account, client, () => sessions.createBrowser(account, client, { amr }));
      await sessions.revoke(principal.sessionId);
      await audit.record({ event: "passkey_step_up", userId: principal.userId, ...client, detail: { passkey_id: passkeyId, user_verified: userVerified, amr } });
      return session;
    },

    /** A refused passkey step-up, in the audit trail with its reason (the error code). */
    recordStepUpFailure: (userId: string, client: ClientInfo, reason: string) => audit.record({ event: "passkey_step_up_failed", userId, ...client, detail: { reason } }),

    /**
     * Signs in a browser from the sign-in page: the same checks, limits and audit events as `login`, and a
     * browser session (the session cookie's value is returned once; only its hash is stored), or the challenge of
     * a second step, which the page asks for next.
     */
    async signInBrowser(login: string, password: string, client: ClientInfo) {
      const user = await verifyLogin(login, password, client);
      const verified = { userId: user.id, passwordHash: user.passwordHash };
      const challenge = await challengeAfterPassword(user, client);
      if (challenge) return { challenge };
      const session = await forVerifiedAccount(verified, client, () => sessions.createBrowser(verified, client, { amr: PASSWORD_AMR }));
      await completeSignIn(user, client);
      await audit.record({ event: "login_succeeded", userId: user.id, ...client, detail: { via: "browser" } });
      return { session, device: devices.issue(user.id) };
    },

    /**
     * Ends a browser session; one opened by a cross-domain handoff ends with the one it came from, and all its
     * family. The clients the user signed in to from it are told (back-channel logout), unless `tellClients` is
     * false: a sign-in asked for again (prompt=login), or an RP-initiated logout, which tells them itself.
     */
    async signOutBrowser(principal: BrowserSessionPrincipal, client: ClientInfo, tellClients = true): Promise<void> {
      const revoke = () => sessions.revoke(principal.rootSessionId);
      await (tellClients ? notices.around([principal.userId], revoke) : revoke());
      await audit.record({ event: "logout", userId: principal.userId, ...client, detail: { scope: "current", via: "browser" } });
    },

    /**
     * Answers a challenge with a code (emailed, TOTP, or the first TOTP code of an enrolment) or a recovery code.
     * A wrong answer counts against the challenge (it dies at 5) and the account's limits.
     */
    async verifyChallenge(challengeId: string, answer: SecondStepAnswer, client: ClientInfo) {
      const { user, method, recoveryCodes, firstFactor } = await secondStep.answer(challengeId, answer, client);
      const tokens = await startSession({ userId: user.id }, toPublicUser(user), client, secondStepAmr(firstFactor, method));
      await completeSignIn(user, client);
      await audit.record({ event: "login_succeeded", userId: user.id, ...client, detail: { second_factor: method } });
      return { tokens: { ...tokens, device: devices.issue(user.id) }, recoveryCodes };
    },

    /** The sign-in page's second step: the same answer checks as verifyChallenge, then a browser session. */
    async verifyBrowserChallenge(challengeId: string, answer: SecondStepAnswer, client: ClientInfo) {
      const { user, method, recoveryCodes, firstFactor } = await secondStep.answer(challengeId, answer, client);
      const amr = secondStepAmr(firstFactor, method);
      const session = await forVerifiedAccount({ userId: user.id }, client, () => sessions.createBrowser({ userId: user.id }, client, { amr }));
      await completeSignIn(user, client);
      await audit.record({ event: "login_succeeded", userId: user.id, ...client, detail: { second_factor: method, via: "browser" } });
      return { session, recoveryCodes, device: devices.issue(user.id) };
    },

    /** MFA_REQUIRED_ROLES: the authenticator secret for a challenge that asks for enrolment. */
    startChallengeEnrollment: (challengeId: string) => secondStep.startEnrollment(challengeId),

    /** WebAuthn options for a challenge that takes a passkey. */
    challengePasskeyOptions: (challengeId: string) => secondStep.passkeyOptions(challengeId),

    async refresh(refreshToken: string, client: ClientInfo): Promise<IssuedTokens> {
      let rotated;
      try {
        rotated = await sessions.rotate(refreshToken);
      } catch (error) {
        if (error instanceof RefreshTokenReused)
          await audit.record({ event: "refresh_reuse_detected", userId: error.userId, ...client, detail: { session_id: error.sessionId } });
        throw error;
      }
      const { principal, refreshToken: child } = rotated;
      const access = await accessTokens.issue(principal.userId, principal.sessionId, principal.sessionExpiresAt);
      return { access, refreshToken: child, refreshExpiresIn: settings.refreshTokenTtl, user: principalUser(principal) };
    },

    /** Ends this session, every other one, or all of them. Returns how many sessions ended. */
    async logout(principal: SessionPrincipal, scope: LogoutScope, client: ClientInfo): Promise<number> {
      let ended = 1;
      if (scope === "current") await sessions.revoke(principal.sessionId);
      // Every other session includes the grants of OpenID Connect clients: those that take notices are told.
      else if (scope === "others") ended = await notices.around([principal.userId], () => sessions.revokeOthers(principal.userId, principal.sessionId));
      else ended = await notices.around([principal.userId], () => sessions.revokeAllForUser(principal.userId));
      // A logout that ended nothing (scope=others, alone) changed nothing: no row, or any session could flood the trail.
      if (ended > 0) await audit.record({ event: "logout", userId: principal.userId, ...client, detail: { scope, sessions_ended: ended } });
      return ended;
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
