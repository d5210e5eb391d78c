import { ApiError, validationFailed } from "../../errors";
import type { IssuedTokens } from "../../delivery";
import { PASSWORD_MAX_BYTES, type PasswordHasher } from "../../lib/passwords";
import type { AccessTokens } from "../../tokens/access";
import type { ClientInfo, SessionPrincipal, SessionService } from "../sessions/service";
import { toPublicUser, type PublicUser, type UserService } from "../users/service";

export interface AuthSettings {
  allowRegistration: boolean;
  refreshTokenTtl: number;
}

export interface AuthDeps {
  users: UserService;
  sessions: SessionService;
  accessTokens: AccessTokens;
  hasher: PasswordHasher;
  settings: AuthSettings;
}

export const invalidCredentials = () =>
  new ApiError(401, "invalid_credentials", "The username or password is incorrect.");

/** The user fields every principal (session or API key) carries. */
type UserIdentity = Pick<SessionPrincipal, "userId" | "username" | "email" | "emailVerified" | "roles" | "createdAt">;

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
export function createAuthService({ users, sessions, accessTokens, hasher, settings }: AuthDeps) {
  async function startSession(userId: string, user: PublicUser, client: ClientInfo): Promise<IssuedTokens> {
    const session = sessions.create(userId, client);
    const access = await accessTokens.issue(userId, session.sessionId, session.expiresAt);
    return { access, refreshToken: session.refreshToken, refreshExpiresIn: settings.refreshTokenTtl, user };
  }

  return {
    async register(input: { username: string; password: string; email?: string }, client: ClientInfo) {
      if (!settings.allowRegistration)
        throw new ApiError(403, "registration_disabled", "Registration is closed on this server.");
      const user = await users.create(input);
      return startSession(user.id, toPublicUser(user), client);
    },

    /**
     * Unknown name and wrong password fail identically, and an unknown name still costs one hash verification.
     * A disabled account is only revealed to someone who knows its password.
     */
    async login(login: string, password: string, client: ClientInfo): Promise<IssuedTokens> {
      if (password.length > PASSWORD_MAX_BYTES || Buffer.byteLength(password) > PASSWORD_MAX_BYTES)
        throw validationFailed([{ field: "password", message: `Must be at most ${PASSWORD_MAX_BYTES} bytes.` }]);
      const user = users.findByLogin(login);
      if (!user) {
        await hasher.burn(password);
        throw invalidCredentials();
      }
      if (!(await hasher.verify(password, user.passwordHash))) throw invalidCredentials();
      if (user.disabled) throw new ApiError(403, "account_disabled", "This account has been disabled.");
      return startSession(user.id, toPublicUser(user), client);
    },

    async refresh(refreshToken: string): Promise<IssuedTokens> {
      const { principal, refreshToken: child } = sessions.rotate(refreshToken);
      const access = await accessTokens.issue(principal.userId, principal.sessionId, principal.sessionExpiresAt);
      return { access, refreshToken: child, refreshExpiresIn: settings.refreshTokenTtl, user: principalUser(principal) };
    },

    logout(sessionId: string): void {
      sessions.revoke(sessionId);
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
