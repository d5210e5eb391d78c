import { apiErrors, OAuthError, rateLimited, validationFailed } from "../../errors";
import { NO_NOTICES, type LogoutNotices } from "../oidc/backchannel";
import type { User } from "../../db/schema";
import type { Atomic } from "../../db/atomic";
import type { Db } from "../../db/client";
import { mfaNotEnrolled, type MfaService } from "../mfa/service";
import { challengeExpired, type ChallengeMethod, type ChallengeStore } from "./challenges";
import type { IssuedTokens as DeliveredTokens } from "../../delivery";
import type { ClientInfo } from "../../http/client-ip";
import { throttleAccount, type SecretCheckLimiter } from "../../limits";
import type { RateLimitAudit } from "../../limits/audit";
import type { DeviceCookies } from "../../limits/device";
import { PASSWORD_MAX_BYTES, passwordTooLong, type PasswordHasher } from "../../lib/passwords";
import type { AccessTokens } from "../../tokens/access";
import type { AuditLog } from "../audit/service";
import type { EmailFlows } from "../email/service";
import { AccountChanged, assertSessionLive, RefreshTokenReused, type BrowserSessionPrincipal, type VerifiedAccount, type SessionPrincipal, type SessionService } from "../sessions/service";
import { toPublicUser, type PublicUser, type UserIdentity, type UserService } from "../users/service";
import type { ChallengeResponse } from "./model";

/** What a sign-in or refresh hands to the configured transport: tokens for a user as the API shows users. */
type IssuedTokens = DeliveredTokens<PublicUser>;

export interface AuthSettings {
  allowRegistration: boolean;
  /** LOGIN_EMAIL_CODE: a correct password is followed by a code mailed to the account's address. */
  loginEmailCode: boolean;
  /** MFA_REQUIRED_ROLES: users with one of these roles enrol TOTP before their first session. */
  mfaRequiredRoles: readonly string[];
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
  /** The mails that follow a registration and a password change, and the sign-in code. */
  emailFlows: Pick<EmailFlows, "registered" | "passwordChanged" | "sendLoginCode" | "claimLoginCode">;
  mfa: MfaService;
  challenges: ChallengeStore;
  devices: DeviceCookies;
  settings: AuthSettings;
  /** Back-channel logout: the OpenID Connect clients a sign-out ends are told. */
  notices?: LogoutNotices;
}

/** What a person registering types. */
interface NewAccount {
  username: string;
  password: string;
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

/** POST /login's 202: the password was right, a second step is due. */
export type { ChallengeMethod };

export type LoginChallenge = typeof ChallengeResponse.static;


export const invalidMfaCode = () => apiErrors.invalid_mfa_code("The code is wrong or was already used.");

export const mfaRequired = () =>
  new OAuthError("mfa_required", "This account signs in with a second step, which the password grant cannot carry: use POST /api/v1/auth/login, then POST /api/v1/auth/login/verify.", 403);

export const userNotVerified = () =>
  apiErrors.user_not_verified("The email address of this account is not verified yet: follow the link in the mail, or ask for a new one.");

export type LogoutScope = "current" | "others" | "global";

export const accountDisabled = () => apiErrors.account_disabled("This account has been disabled.");

export const invalidCredentials = () =>
  apiErrors.invalid_credentials("The username or password is incorrect.");

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

function assertPasswordSize(password: string, field: string): void {
  // Before any hashing or normalising: the cost an attacker can ask for stays bounded.
  if (passwordTooLong(password)) throw validationFailed([{ field, message: `Must be at most ${PASSWORD_MAX_BYTES} bytes.` }]);
}

/** Account rules with no knowledge of HTTP: what goes in, which tokens or which ApiError come out. */
export function createAuthService({ users, sessions, accessTokens, hasher, limiter, audit, auditRateLimit, emailFlows, mfa, challenges, devices, settings, notices = NO_NOTICES }: AuthDeps) {
  /**
   * A client that recently signed in to this account (its browser holds the device cookie, or it succeeded from
   * this address) is exempt from the account-wide backstop: strangers filling it from many addresses must not
   * lock the owner out (OWASP device cookies). It keeps its own per-(account, address) counter.
   */
  const knownClient = async (account: string, user: { id: string } | undefined, client: ClientInfo) =>
    user !== undefined && (devices.vouchesFor(client.device, user.id) || (await limiter.signedInFrom(account, client.ip)));

  /** The second steps this account owes after its password, in the order a client would offer them. */
  async function secondStep(user: User): Promise<ChallengeMethod[]> {
    const methods: ChallengeMethod[] = [];
    if (await mfa.hasTotp(user.id)) methods.push("totp", "recovery_code");
    else if (user.roles.some((role) => settings.mfaRequiredRoles.includes(role))) return ["totp_enrollment"];
    if (settings.loginEmailCode && user.email !== null) methods.push("email_code");
    return methods;
  }

  /** Limiter first (a wrong second-step code counts like a wrong password), audited when it refuses. */
  async function beginSecretCheck(user: User, client: ClientInfo): Promise<string> {
    const account = throttleAccount(user.username, user);
    try {
      await limiter.beginAttempt(account, client.ip, await knownClient(account, user, client));
    } catch (error) {
      await auditRateLimit({ scope: "account", account, userId: user.id, client });
      throw error;
    }
    return account;
  }

  /** A challenge for `user`, with the emailed code sent when email_code is among the methods. */
  async function openChallenge(user: User, methods: ChallengeMethod[]): Promise<LoginChallenge> {
    if (methods.includes("email_code")) {
      const claim = emailFlows.claimLoginCode(user.email!);
      if (!claim.allowed) throw rateLimited(claim.retryAfter);
    }
    const { id, code } = await challenges.create(user.id, methods);
    if (code !== undefined) await emailFlows.sendLoginCode(user, code, challenges.ttlSeconds);
    return { challenge_id: id, methods, expires_in: challenges.ttlSeconds };
  }

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

  async function startSession(account: VerifiedAccount, user: PublicUser, client: ClientInfo): Promise<IssuedTokens> {
    const session = await forVerifiedAccount(account, client, () => sessions.create(account, client));
    const access = await accessTokens.issue(account.userId, session.sessionId, session.expiresAt);
    return { access, refreshToken: session.refreshToken, refreshExpiresIn: settings.refreshTokenTtl, user };
  }

  /**
   * Checks a password behind the limiter: refused while throttled, counted as a failure until it proves right.
   * `login` is what the client typed: an unknown name is throttled exactly like a known account.
   */
  async function checkPassword(
    login: string,
    password: string,
    user: { id: string; passwordHash: string } | undefined,
    client: ClientInfo,
  ): Promise<boolean> {
    const account = throttleAccount(login, user);
    try {
      await limiter.beginAttempt(account, client.ip, await knownClient(account, user, client));
    } catch (error) {
      await auditRateLimit({ scope: "account", account, userId: user?.id, client });
      throw error;
    }
    const valid = user === undefined ? (await hasher.burn(password), false) : await hasher.verify(password, user.passwordHash);
    if (valid) await limiter.recordSuccess(account, client.ip);
    return valid;
  }

  /**
   * Unknown name and wrong password fail identically, and an unknown name still costs one hash verification.
   * A disabled account is only revealed to someone who knows its password. The one password check of every
   * sign-in (API, OAuth2 token endpoint, sign-in page).
   */
  async function verifyLogin(login: string, password: string, client: ClientInfo): Promise<User> {
    assertPasswordSize(password, "password");
    const user = await users.findByLogin(login);
    if (!(await checkPassword(login, password, user, client))) {
      await audit.record({ event: "login_failed", userId: user?.id ?? null, ...client, detail: { reason: "invalid_credentials" } });
      throw invalidCredentials();
    }
    if (user!.disabled) {
      await audit.record({ event: "login_failed", userId: user!.id, ...client, detail: { reason: "account_disabled" } });
      throw accountDisabled();
    }
    // Accounts without an address (made from the CLI or by an admin) have nothing to verify.
    if (settings.requireEmailVerification && user!.email !== null && !user!.emailVerified) {
      await audit.record({ event: "login_failed", userId: user!.id, ...client, detail: { reason: "user_not_verified" } });
      throw userNotVerified();
    }
    // The hash now stored for this password: what the session insert checks is still there.
    return { ...user!, passwordHash: await users.upgradeHashIfNeeded(user!, password) };
  }

  /** Checks an answer to a challenge (see verifyChallenge) and spends the challenge: who signed in, and how. */
  async function answerChallenge(challengeId: string, answer: { code?: string; recovery_code?: string }, client: ClientInfo) {
    const challenge = await challenges.live(challengeId);
    const user = await users.findById(challenge.userId);
    if (!user || user.disabled) {
      await challenges.spend(challenge);
      throw challengeExpired();
    }
    const account = await beginSecretCheck(user, client);
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
      throw invalidMfaCode();
    }
    if (!(await challenges.spend(challenge))) throw challengeExpired();
    await limiter.recordSuccess(account, client.ip);
    if (method === "recovery_code")
      await audit.record({ event: "recovery_code_used", userId: user.id, ...client, detail: { left: (await mfa.factors(user.id)).recovery_codes_left } });
    if (method === "totp_enrollment") await audit.record({ event: "totp_enabled", userId: user.id, ...client, detail: { via: "sign-in" } });
    return { user, method, recoveryCodes };
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
    async register(input: NewAccount, client: ClientInfo, invitation?: InvitedAccount): Promise<IssuedTokens | PendingVerification> {
      const user = await createAccount(input, client, invitation);
      if (settings.requireEmailVerification && !user.emailVerified) return { pending: toPublicUser(user) };
      return startSession({ userId: user.id, passwordHash: user.passwordHash }, toPublicUser(user), client);
    },

    createAccount,

    /**
     * Signs in an API client: a refresh-token session and an access token, or the challenge of a second step.
     * `allowChallenge` false (the password grant of /token, which has no second step): an account that owes one
     * gets mfa_required, and no challenge is opened or mailed.
     */
    async login(login: string, password: string, client: ClientInfo, allowChallenge = true): Promise<IssuedTokens | LoginChallenge> {
      const user = await verifyLogin(login, password, client);
      const verified = { userId: user.id, passwordHash: user.passwordHash };
      const methods = await secondStep(user);
      if (methods.length > 0) {
        if (!allowChallenge) throw mfaRequired();
        return forVerifiedAccount(verified, client, async () => (await sessions.assertAccountUnchanged(verified), openChallenge(user, methods)));
      }
      const tokens = await startSession(verified, toPublicUser(user), client);
      await audit.record({ event: "login_succeeded", userId: user.id, ...client });
      return { ...tokens, device: devices.issue(user.id) };
    },

    /**
     * Signs in a browser from the sign-in page: the same checks, limits and audit events as `login`, and a
     * browser session (the session cookie's value is returned once; only its hash is stored), or the challenge of
     * a second step, which the page asks for next.
     */
    async signInBrowser(login: string, password: string, client: ClientInfo) {
      const user = await verifyLogin(login, password, client);
      const verified = { userId: user.id, passwordHash: user.passwordHash };
      const methods = await secondStep(user);
      if (methods.length > 0)
        return { challenge: await forVerifiedAccount(verified, client, async () => (await sessions.assertAccountUnchanged(verified), openChallenge(user, methods))) };
      const session = await forVerifiedAccount(verified, client, () => sessions.createBrowser(verified, client));
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
    async verifyChallenge(challengeId: string, answer: { code?: string; recovery_code?: string }, client: ClientInfo) {
      const { user, method, recoveryCodes } = await answerChallenge(challengeId, answer, client);
      const tokens = await startSession({ userId: user.id }, toPublicUser(user), client);
      await audit.record({ event: "login_succeeded", userId: user.id, ...client, detail: { second_factor: method } });
      return { tokens: { ...tokens, device: devices.issue(user.id) }, recoveryCodes };
    },

    /** The sign-in page's second step: the same answer checks as verifyChallenge, then a browser session. */
    async verifyBrowserChallenge(challengeId: string, answer: { code?: string; recovery_code?: string }, client: ClientInfo) {
      const { user, method, recoveryCodes } = await answerChallenge(challengeId, answer, client);
      const session = await forVerifiedAccount({ userId: user.id }, client, () => sessions.createBrowser({ userId: user.id }, client));
      await audit.record({ event: "login_succeeded", userId: user.id, ...client, detail: { second_factor: method, via: "browser" } });
      return { session, recoveryCodes, device: devices.issue(user.id) };
    },

    /** MFA_REQUIRED_ROLES: the authenticator secret for a challenge that asks for enrolment. */
    async startChallengeEnrollment(challengeId: string) {
      const challenge = await challenges.live(challengeId);
      const user = await users.findById(challenge.userId);
      if (!user || user.disabled || !(challenge.methods as ChallengeMethod[]).includes("totp_enrollment")) throw challengeExpired();
      return mfa.startTotp(user.id, user.username);
    },

    /** A password check for a signed-in user's sensitive change (behind the limiter, like a login). */
    async confirmPassword(principal: SessionPrincipal, password: string, client: ClientInfo): Promise<boolean> {
      assertPasswordSize(password, "password");
      const user = await users.findById(principal.userId);
      return user !== undefined && (await checkPassword(principal.username, password, user, client));
    },

    /**
     * Switches TOTP on with the app's first code (behind the limiter, like a password); answers the 10 recovery
     * codes. A wrong code is 400 invalid_code.
     */
    async enableTotp(principal: SessionPrincipal, code: string, client: ClientInfo): Promise<string[]> {
      const user = await users.findById(principal.userId);
      if (!user) throw invalidMfaCode();
      const account = await beginSecretCheck(user, client);
      const codes = await mfa.confirmTotp(user.id, code, principal.sessionId);
      if (!codes) throw apiErrors.invalid_code("The code is wrong or was already used.");
      await limiter.recordSuccess(account, client.ip);
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
        const account = await beginSecretCheck(user, client);
        proven = await mfa.verifyTotp(user.id, proof.code!);
        if (proven) await limiter.recordSuccess(account, client.ip);
      }
      if (!proven) throw apiErrors.invalid_password_or_code("The password or code is incorrect.");
      await mfa.removeAll(principal.userId, principal.sessionId);
      await audit.record({ event: "totp_removed", userId: principal.userId, ...client });
    },

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

    /** Needs the current password (throttled like a login); keeps this session and ends every other one. */
    async changePassword(principal: SessionPrincipal, currentPassword: string, newPassword: string, client: ClientInfo) {
      assertPasswordSize(currentPassword, "current_password");
      assertPasswordSize(newPassword, "new_password");
      const user = await users.findById(principal.userId);
      if (!user || !(await checkPassword(principal.username, currentPassword, user, client))) {
        await audit.record({ event: "password_change_failed", userId: principal.userId, ...client, detail: { reason: "invalid_current_password" } });
        throw apiErrors.invalid_current_password("The current password is incorrect.");
      }
      await users.setPassword(user, newPassword, "new_password", (tx) => assertSessionLive(tx, principal.sessionId));
      const ended = await sessions.revokeOthers(user.id, principal.sessionId);
      await audit.record({ event: "password_changed", userId: user.id, ...client, detail: { sessions_ended: ended } });
      await emailFlows.passwordChanged(user);
      return ended;
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
