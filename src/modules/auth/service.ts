import { ApiError, validationFailed } from "../../errors";
import type { IssuedTokens } from "../../delivery";
import type { ClientInfo } from "../../http/client-ip";
import { throttleAccount, type SecretCheckLimiter } from "../../limits";
import type { RateLimitAudit } from "../../limits/audit";
import { PASSWORD_MAX_BYTES, passwordTooLong, type PasswordHasher } from "../../lib/passwords";
import type { AccessTokens } from "../../tokens/access";
import type { AuditLog } from "../audit/service";
import type { User } from "../../db/schema";
import type { EmailFlows } from "../email/service";
import { RefreshTokenReused, type BrowserSessionPrincipal, type SessionPrincipal, type SessionService } from "../sessions/service";
import { toPublicUser, type PublicUser, type UserIdentity, type UserService } from "../users/service";

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
  emailFlows: Pick<EmailFlows, "registered" | "passwordChanged">;
  settings: AuthSettings;
}

/** Registration that must verify its address first: the account exists, no session yet. */
export interface PendingVerification {
  pending: PublicUser;
}

export const userNotVerified = () =>
  new ApiError(403, "user_not_verified", "The email address of this account is not verified yet: follow the link in the mail, or ask for a new one.");

export type LogoutScope = "current" | "others" | "global";

export const invalidCredentials = () =>
  new ApiError(401, "invalid_credentials", "The username or password is incorrect.");

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
export function createAuthService({ users, sessions, accessTokens, hasher, limiter, audit, auditRateLimit, emailFlows, settings }: AuthDeps) {
  async function startSession(userId: string, user: PublicUser, client: ClientInfo): Promise<IssuedTokens> {
    const session = sessions.create(userId, client);
    const access = await accessTokens.issue(userId, session.sessionId, session.expiresAt);
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
      limiter.beginAttempt(account, client.ip);
    } catch (error) {
      auditRateLimit({ scope: "account", account, userId: user?.id, client });
      throw error;
    }
    const valid = user === undefined ? (await hasher.burn(password), false) : await hasher.verify(password, user.passwordHash);
    if (valid) limiter.recordSuccess(account, client.ip);
    return valid;
  }

  /**
   * Unknown name and wrong password fail identically, and an unknown name still costs one hash verification.
   * A disabled account is only revealed to someone who knows its password. The one password check of every
   * sign-in (API, OAuth2 token endpoint, sign-in page).
   */
  async function verifyLogin(login: string, password: string, client: ClientInfo): Promise<User> {
    assertPasswordSize(password, "password");
    const user = users.findByLogin(login);
    if (!(await checkPassword(login, password, user, client))) {
      audit.record({ event: "login_failed", userId: user?.id ?? null, ...client, detail: { reason: "invalid_credentials" } });
      throw invalidCredentials();
    }
    if (user!.disabled) {
      audit.record({ event: "login_failed", userId: user!.id, ...client, detail: { reason: "account_disabled" } });
      throw new ApiError(403, "account_disabled", "This account has been disabled.");
    }
    // Accounts without an address (made from the CLI or by an admin) have nothing to verify.
    if (settings.requireEmailVerification && user!.email !== null && !user!.emailVerified) {
      audit.record({ event: "login_failed", userId: user!.id, ...client, detail: { reason: "user_not_verified" } });
      throw userNotVerified();
    }
    await users.upgradeHashIfNeeded(user!, password);
    return user!;
  }

  return {
    async register(input: { username: string; password: string; email?: string }, client: ClientInfo): Promise<IssuedTokens | PendingVerification> {
      if (!settings.allowRegistration)
        throw new ApiError(403, "registration_disabled", "Registration is closed on this server.");
      if (settings.requireEmailVerification && !input.email)
        throw validationFailed([{ field: "email", message: "An email address is required (REQUIRE_EMAIL_VERIFICATION=true)." }]);
      const user = await users.create(input);
      audit.record({ event: "user_registered", userId: user.id, ...client });
      emailFlows.registered(user);
      if (settings.requireEmailVerification) return { pending: toPublicUser(user) };
      return startSession(user.id, toPublicUser(user), client);
    },

    /** Signs in an API client: a refresh-token session and an access token. */
    async login(login: string, password: string, client: ClientInfo): Promise<IssuedTokens> {
      const user = await verifyLogin(login, password, client);
      const tokens = await startSession(user.id, toPublicUser(user), client);
      audit.record({ event: "login_succeeded", userId: user.id, ...client });
      return tokens;
    },

    /**
     * Signs in a browser from the sign-in page: the same checks, limits and audit events as `login`, and a
     * browser session (the session cookie's value is returned once; only its hash is stored).
     */
    async signInBrowser(login: string, password: string, client: ClientInfo) {
      const user = await verifyLogin(login, password, client);
      const session = sessions.createBrowser(user.id, client);
      audit.record({ event: "login_succeeded", userId: user.id, ...client, detail: { via: "browser" } });
      return session;
    },

    /** Ends a browser session; one opened by a cross-domain handoff ends with the one it came from, and all its family. */
    signOutBrowser(principal: BrowserSessionPrincipal, client: ClientInfo): void {
      sessions.revoke(principal.rootSessionId);
      audit.record({ event: "logout", userId: principal.userId, ...client, detail: { scope: "current", via: "browser" } });
    },

    async refresh(refreshToken: string, client: ClientInfo): Promise<IssuedTokens> {
      let rotated;
      try {
        rotated = sessions.rotate(refreshToken);
      } catch (error) {
        if (error instanceof RefreshTokenReused)
          audit.record({ event: "refresh_reuse_detected", userId: error.userId, ...client, detail: { session_id: error.sessionId } });
        throw error;
      }
      const { principal, refreshToken: child } = rotated;
      const access = await accessTokens.issue(principal.userId, principal.sessionId, principal.sessionExpiresAt);
      return { access, refreshToken: child, refreshExpiresIn: settings.refreshTokenTtl, user: principalUser(principal) };
    },

    /** Ends this session, every other one, or all of them. Returns how many sessions ended. */
    logout(principal: SessionPrincipal, scope: LogoutScope, client: ClientInfo): number {
      let ended = 1;
      if (scope === "current") sessions.revoke(principal.sessionId);
      else if (scope === "others") ended = sessions.revokeOthers(principal.userId, principal.sessionId);
      else ended = sessions.revokeAllForUser(principal.userId);
      // A logout that ended nothing (scope=others, alone) changed nothing: no row, or any session could flood the trail.
      if (ended > 0) audit.record({ event: "logout", userId: principal.userId, ...client, detail: { scope, sessions_ended: ended } });
      return ended;
    },

    /** Needs the current password (throttled like a login); keeps this session and ends every other one. */
    async changePassword(principal: SessionPrincipal, currentPassword: string, newPassword: string, client: ClientInfo) {
      assertPasswordSize(currentPassword, "current_password");
      assertPasswordSize(newPassword, "new_password");
      const user = users.findById(principal.userId);
      if (!user || !(await checkPassword(principal.username, currentPassword, user, client))) {
        audit.record({ event: "password_change_failed", userId: principal.userId, ...client, detail: { reason: "invalid_current_password" } });
        throw new ApiError(403, "invalid_current_password", "The current password is incorrect.");
      }
      await users.setPassword(user, newPassword, "new_password");
      const ended = sessions.revokeOthers(user.id, principal.sessionId);
      audit.record({ event: "password_changed", userId: user.id, ...client, detail: { sessions_ended: ended } });
      emailFlows.passwordChanged(user);
      return ended;
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
