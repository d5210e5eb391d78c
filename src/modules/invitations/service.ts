import { desc, eq } from "drizzle-orm";
import { changes, row, transaction, type Atomic } from "../../db/atomic";
import type { Db } from "../../db/client";
import { invitations } from "../../db/tables";
import { apiErrors, validationFailed, type FieldError } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { randomToken, sha256Hex } from "../../lib/crypto";
import { MAX_DURATION_SECONDS } from "../../lib/duration";
import { ADMIN_ROLE, validateRoles } from "../admin/accounts";
import type { AuditLog } from "../audit/service";
import type { InvitedAccount } from "../auth/service";
import { assertSessionLive } from "../sessions/service";
import { emailError, normalizeEmail, type UserService } from "../users/service";

export type Invitation = typeof invitations.$inferSelect;

/** Why a link can no longer open a sign-up, or "usable". */
export type InvitationVerdict = "usable" | "revoked" | "spent" | "expired";

/**
 * Whether an invitation may make one more account now. Revoked first (the admin's word), then spent, then
 * expired: the page says the most final reason. Pure, so the decision is tested apart from its transaction.
 */
export function invitationVerdict(invitation: Pick<Invitation, "revokedAt" | "uses" | "maxUses" | "expiresAt">, now: Date): InvitationVerdict {
  if (invitation.revokedAt !== null) return "revoked";
  // Written as "not below" and "not after": a value that cannot be compared (NaN, an invalid date) refuses.
  if (!(invitation.uses < invitation.maxUses)) return "spent";
  if (!(invitation.expiresAt.getTime() > now.getTime())) return "expired";
  return "usable";
}

/** A link token is `randomToken(32)`: 43 base64url characters. Anything else is refused before any lookup. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The stored hash of a presented link token, or undefined when it cannot be one of ours. */
export function invitationTokenHash(token: string): string | undefined {
  return TOKEN_PATTERN.test(token) ? sha256Hex(`invitation|${token}`) : undefined;
}

const unusable = {
  revoked: () => apiErrors.invitation_revoked("This invitation link was revoked."),
  spent: () => apiErrors.invitation_spent("This invitation link has already been used."),
  expired: () => apiErrors.invitation_expired("This invitation link has expired."),
};

const notFound = () => apiErrors.invitation_not_found("No invitation has this link or id.");

/** The state an admin reads in a list: pending, used n of m, expired or revoked. */
export function invitationState(invitation: Invitation, now: Date): string {
  const verdict = invitationVerdict(invitation, now);
  if (verdict === "revoked" || verdict === "expired") return verdict;
  return invitation.uses === 0 ? "pending" : `used ${invitation.uses} of ${invitation.maxUses}`;
}

export const DEFAULT_INVITATION_TTL = 7 * 86400;
export const MAX_INVITATION_USES = 1000;

export interface NewInvitation {
  email?: string | null;
  roles?: readonly unknown[];
  /** Seconds until the link stops working. */
  expiresIn?: number;
  maxUses?: number;
}

/** Who made or revoked an invitation, for the audit row: an admin (API or page), or the CLI. */
export type InvitationActor = (ClientInfo & { userId: string; username: string; sessionId: string }) | { via: "cli" };

/** The link of an invitation, under PUBLIC_URL. */
export const invitationLink = (publicUrl: string, token: string) => `${publicUrl}/invite/${token}`;

/** The invitation mail's variables (its expiry in UTC, like the pages' times). */
export const invitationMailVars = (link: string, expiresAt: Date) => ({ link, expires: `${expiresAt.toISOString().slice(0, 16).replace("T", " ")} UTC` });

/** Sends the link to the invitation's address (the mail outbox); given only when mail is on. */
export type SendInvitation = (to: string, link: string, expiresAt: Date) => Promise<void>;

/**
 * Invitations (issue 24): links that open a sign-up while ALLOW_REGISTRATION=false. Used by the admin API, the
 * admin page and the CLI (which has no auth service: `redeem` is the server's only).
 */
export function createInvitations(deps: { db: Db; audit: AuditLog; users: Pick<UserService, "assertNewEmail">; publicUrl: string; send?: SendInvitation }) {
  const { db, audit, users, publicUrl, send } = deps;

  function auditActor(actor: InvitationActor) {
    return "via" in actor
      ? { detail: { via: "cli" } }
      : { ip: actor.ip, userAgent: actor.userAgent, detail: { actor_id: actor.userId, actor: actor.username } };
  }

  /** An admin's write runs only while the admin's session is live and still an admin's, checked in its transaction. */
  function* stillAllowed(tx: Db, actor: InvitationActor): Atomic<void> {
    if (!("via" in actor)) yield* assertSessionLive(tx, actor.sessionId, ADMIN_ROLE);
  }

  async function byToken(token: string): Promise<Invitation> {
    const hash = invitationTokenHash(token);
    const found = hash && (await db.select().from(invitations).where(eq(invitations.tokenHash, hash)))[0];
    if (!found) throw notFound();
    return found;
  }

  /**
   * Counts one use, in the transaction that inserts the account: the row is read and written inside it, so two
   * sign-ups on the last use are ordered (SQLite's one writer; PostgreSQL's SERIALIZABLE runs the loser again,
   * which then reads the use taken) and exactly one gets it; a refused insert gives the use back.
   */
  function* claim(tx: Db, id: string): Atomic<void> {
    const current = yield* row(tx.select().from(invitations).where(eq(invitations.id, id)));
    if (!current) throw notFound();
    const verdict = invitationVerdict(current, new Date());
    if (verdict !== "usable") throw unusable[verdict]();
    yield* changes(tx.update(invitations).set({ uses: current.uses + 1 }).where(eq(invitations.id, id)));
  }

  /** The invitation of a link that may still make an account; 404 or 410 with the reason otherwise. */
  async function usable(token: string): Promise<Invitation> {
    const invitation = await byToken(token);
    const verdict = invitationVerdict(invitation, new Date());
    if (verdict !== "usable") throw unusable[verdict]();
    return invitation;
  }

  return {
    usable,

    /** Makes an invitation; its link (the token's only appearance) is returned once, and mailed when it names an address and mail is on. */
    async create(input: NewInvitation, actor: InvitationActor): Promise<{ invitation: Invitation; link: string }> {
      const details: FieldError[] = [];
      const email = input.email ? normalizeEmail(input.email.trim()) : null;
      const emailProblem = email === null ? undefined : emailError(email);
      if (emailProblem) details.push({ field: "email", message: emailProblem });
      const expiresIn = input.expiresIn ?? DEFAULT_INVITATION_TTL;
      if (!Number.isInteger(expiresIn) || expiresIn < 60 || expiresIn > MAX_DURATION_SECONDS)
        details.push({ field: "expires_in", message: `Must be whole seconds from 60 to ${MAX_DURATION_SECONDS}.` });
      const maxUses = input.maxUses ?? 1;
      if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > MAX_INVITATION_USES)
        details.push({ field: "max_uses", message: `Must be a whole number from 1 to ${MAX_INVITATION_USES}.` });
      if (details.length) throw validationFailed(details);
      const roles = validateRoles(input.roles ?? []);
      // An address that already has an account could never be used: say so now, not to the invitee.
      if (email !== null) await users.assertNewEmail(email, "email");
      const token = randomToken(32);
      const link = invitationLink(publicUrl, token);
      const expiresAt = new Date(Date.now() + expiresIn * 1000);
      const values = {
        id: Bun.randomUUIDv7(),
        tokenHash: invitationTokenHash(token)!,
        email,
        mailed: email !== null && send !== undefined,
        roles,
        maxUses,
        expiresAt,
        createdBy: "via" in actor ? null : actor.userId,
      };
      const invitation = await transaction(db, function* (tx) {
        yield* stillAllowed(tx, actor);
        return yield* row(tx.insert(invitations).values(values).returning());
      });
      if (email !== null && send) await send(email, link, expiresAt);
      const { detail, ...context } = auditActor(actor);
      await audit.record({
        event: "invitation_created",
        ...context,
        // No address: the trail holds none (README, Audit log); whether one is pinned is enough.
        detail: { ...detail, invitation_id: invitation!.id, for_address: email !== null, roles, max_uses: maxUses, expires_at: expiresAt.toISOString(), mailed: invitation!.mailed },
      });
      return { invitation: invitation!, link };
    },

    /** The newest invitations first (at most 200: old ones are dead links). */
    async list(): Promise<Invitation[]> {
      return db.select().from(invitations).orderBy(desc(invitations.createdAt), desc(invitations.id)).limit(200);
    },

    async get(id: string): Promise<Invitation> {
      const found = (await db.select().from(invitations).where(eq(invitations.id, id)))[0];
      if (!found) throw notFound();
      return found;
    },

    /** Revokes an invitation (404 when unknown); revoking it again changes and records nothing. */
    async revoke(id: string, actor: InvitationActor): Promise<Invitation> {
      const found = (await db.select().from(invitations).where(eq(invitations.id, id)))[0];
      if (!found) throw notFound();
      if (found.revokedAt !== null) return found;
      const revoked = await transaction(db, function* (tx) {
        yield* stillAllowed(tx, actor);
        return yield* row(tx.update(invitations).set({ revokedAt: new Date() }).where(eq(invitations.id, id)).returning());
      });
      const { detail, ...context } = auditActor(actor);
      await audit.record({ event: "invitation_revoked", ...context, detail: { ...detail, invitation_id: id, uses: found.uses } });
      return revoked!;
    },

    /**
     * An invitation's part in the one registration (auth.createAccount: the API's password rules, audit and
     * mail, open while registration is closed). Its roles are set; its address, when it names one, is the
     * account's (what the form sends is ignored) and verified only when the link was mailed to it: the invitee
     * then proved they read that inbox (the out-of-band proof of NIST SP 800-63B §5.1.3 / OWASP ASVS V2.5, in
     * effect). A link the admin copied proves nothing about the address, so that one stays unverified.
     */
    invited(invitation: Invitation): InvitedAccount {
      return {
        id: invitation.id,
        email: invitation.email,
        roles: invitation.roles,
        emailVerified: invitation.mailed && invitation.email !== null,
        claim: (tx) => claim(tx, invitation.id),
      };
    },
  };
}

export type Invitations = ReturnType<typeof createInvitations>;
