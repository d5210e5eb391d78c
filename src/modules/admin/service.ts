import { NO_NOTICES, type LogoutNotices } from "../oidc/backchannel";
import type { Db } from "../../db/client";
import { validationFailed } from "../../errors";
import type { User } from "../../db/schema";
import type { ClientInfo } from "../../http/client-ip";
import { pageLimit } from "../../http/pagination";
import type { AuditLog } from "../audit/service";
import type { ApiKeyService } from "../keys/service";
import type { MfaService } from "../mfa/service";
import { assertSessionLive, type SessionService } from "../sessions/service";
import { toPublicUser, type UserService } from "../users/service";
import {
  deleteAccount,
  findUser,
  listAccounts,
  updateAccount,
  updateAuditDetail,
  userNotFound,
  validateRoles,
  type AccountPatch,
} from "./accounts";
import type { AdminUser } from "./model";

/** User ids are UUIDs (v7), and a users page's cursor is one. */
const USER_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;


export function toAdminUser(user: User): AdminUser {
  return { ...toPublicUser(user), disabled: user.disabled, metadata: user.metadata, updated_at: user.updatedAt.toISOString() };
}

/** The admin who acts, and from where: written to every audit row of an admin action. */
export interface Actor extends ClientInfo {
  userId: string;
  username: string;
  /** The admin's session: each change re-checks it, and the admin role, in its own transaction. */
  sessionId: string;
}

export interface NewUserByAdmin {
  username: string;
  /** Absent with `passkey_first`: a passwordless account, which sets up a passkey first (its setup link is the caller's to make). */
  password?: string;
  passkey_first?: boolean;
  email?: string;
  roles?: string[];
  email_verified?: boolean;
}

/**
 * User administration. The rules shared with the CLI (roles, metadata, last admin) live in accounts.ts;
 * this adds what only a running server can do: drop cached sessions at once, and audit who did it.
 * Audit rows name the account acted on as their user (so its owner sees them in /auth/events) and the
 * acting admin in `detail.actor_id` / `detail.actor`.
 */
export function createAdminService(deps: {
  db: Db;
  users: UserService;
  sessions: SessionService;
  apiKeys: ApiKeyService;
  audit: AuditLog;
  mfa: MfaService;
  /** Back-channel logout: disabling, deleting or resetting a user's password tells the clients it signed in to. */
  notices?: LogoutNotices;
}) {
  const { db, users, sessions, apiKeys, audit, mfa, notices = NO_NOTICES } = deps;
  /** The admin's session is still live and still an admin's (not the 1-second cache's word for it). */
  const stillAdmin = (actor: Actor) => (tx: Db) => assertSessionLive(tx, actor.sessionId, "admin");

  const record = (event: "admin_user_created" | "admin_user_updated" | "admin_user_deleted" | "mfa_reset", target: User, actor: Actor, detail: Record<string, unknown>) =>
    audit.record({
      event,
      userId: target.id,
      ip: actor.ip,
      userAgent: actor.userAgent,
      detail: { actor_id: actor.userId, actor: actor.username, username: target.username, ...detail },
    });

  return {
    async list(query: { query?: string; limit?: string; cursor?: string }) {
      if (query.cursor !== undefined && !USER_ID_PATTERN.test(query.cursor))
        throw validationFailed([{ field: "cursor", message: "Must be a next_cursor from a previous page." }]);
      const page = await listAccounts(db, { query: query.query, limit: pageLimit(query.limit), cursor: query.cursor });
      return { users: page.users.map(toAdminUser), next_cursor: page.nextCursor };
    },

    async get(id: string): Promise<AdminUser> {
      const user = await findUser(db, id);
      if (!user) throw userNotFound();
      return toAdminUser(user);
    },

    async create(input: NewUserByAdmin, actor: Actor): Promise<AdminUser> {
      // A forgotten password must not make a passwordless account: that takes asking for one (passkey_first).
      if ((input.password === undefined) !== (input.passkey_first === true))
        throw validationFailed([{ field: "password", message: input.password === undefined ? "Required, unless passkey_first is true." : "Give either password or passkey_first, not both." }]);
      const roles = validateRoles(input.roles ?? []);
      const user = await users.create({
        username: input.username,
        password: input.password ?? null,
        email: input.email ?? null,
        roles,
        emailVerified: input.email_verified ?? false,
      });
      await record("admin_user_created", user, actor, { roles: user.roles, email_verified: user.emailVerified, ...(input.password === undefined ? { passwordless: true } : {}) });
      return toAdminUser(user);
    },

    /** The user itself (the caller acts on it: an admin's reset of its passkeys); 404 user_not_found. */
    async findUser(id: string): Promise<User> {
      const user = await findUser(db, id);
      if (!user) throw userNotFound();
      return user;
    },

    /**
     * Disabling ends every session and deletes every API key at once; other changes (a demotion included)
     * apply from the next request.
     */
    async update(id: string, patch: AccountPatch, actor: Actor): Promise<AdminUser> {
      const update = await notices.around(patch.disabled ? [id] : [], () => updateAccount(db, id, patch, stillAdmin(actor)));
      if (update.changed.length === 0) return toAdminUser(update.after);
      // Every change reaches protected routes from the session and key caches: drop them (on every instance) so
      // that it applies at once.
      apiKeys.forgetUser(id);
      await sessions.forgetUser(id);
      await record("admin_user_updated", update.after, actor, updateAuditDetail(update));
      return toAdminUser(update.after);
    },

    /**
     * Sets a user's password for them (as `latchkey user passwd` does): the same strength rules as any password,
     * and every session of that user ends, so whoever knew the old one is out.
     */
    async resetPassword(id: string, password: string, actor: Actor): Promise<number> {
      const user = await findUser(db, id);
      if (!user) throw userNotFound();
      await users.setPassword(user, password, "new_password", stillAdmin(actor));
      const ended = await notices.around([id], () => sessions.revokeAllForUser(id));
      await record("admin_user_updated", user, actor, { changed: ["password"], sessions_ended: ended });
      return ended;
    },

    /** Removes the user's authenticator and recovery codes (a lost phone); the next sign-in needs the password only. */
    async resetSecondFactors(id: string, actor: Actor): Promise<void> {
      const user = await findUser(db, id);
      if (!user) throw userNotFound();
      const removed = await mfa.removeAll(id);
      await record("mfa_reset", user, actor, { removed });
    },

    /** Sessions and API keys are deleted with the user (ON DELETE CASCADE); cached sessions are dropped too. */
    async delete(id: string, actor: Actor): Promise<void> {
      const user = await notices.around([id], () => deleteAccount(db, id, stillAdmin(actor)));
      apiKeys.forgetUser(id);
      await sessions.forgetUser(id);
      await record("admin_user_deleted", user, actor, {});
    },
  };
}

export type AdminService = ReturnType<typeof createAdminService>;
