import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type RegistrationResponseJSON,
} from "@simplewebauthn/server";
import { isoBase64URL } from "@simplewebauthn/server/helpers";
import { and, asc, count, eq, gt, isNull, lt } from "drizzle-orm";
import { changedRows, changes, row, transaction, type Atomic } from "../../db/atomic";
import type { Db } from "../../db/client";
import type { User } from "../../db/schema";
import { passkeyChallenges, passkeys, users as userTable } from "../../db/tables";
import { leavesNoWayIn, type WaysIn } from "../../lib/ways-in";
import type { PasskeyConfig } from "../../config";
import { apiErrors } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { randomToken, sha256Hex } from "../../lib/crypto";
import type { AuditLog } from "../audit/service";
import { assertSessionLive, type SessionPrincipal } from "../sessions/service";
import type { UserService } from "../users/service";
import { authenticatorName } from "./authenticators";
import { counterRegressed, readCeremony } from "./ceremony";

/** Options are answered within 5 minutes, once (W3C WebAuthn Level 3 §13.4.3: a challenge is used once). */
const OPTIONS_TTL_MS = 5 * 60 * 1000;

/**
 * What options are for: a registration, a usernameless sign-in, the passkey step of a 202 challenge, or the
 * passkey step-up of a signed-in session that a rule or a client requires a passkey of (pages/passkey-step.tsx).
 */
type Purpose = "register" | "login" | "second_step" | "step_up";
/** The purposes whose options name one account, whose passkeys alone may answer. */
type AccountPurpose = "second_step" | "step_up";

export type PasskeyRow = typeof passkeys.$inferSelect;

const challengeExpired = () =>
  apiErrors.passkey_challenge_expired("These passkey options have expired or were already used: ask for new options and try again.");
const REFUSALS = {
  passkey_wrong_origin: () => apiErrors.passkey_wrong_origin("This passkey request came from a site that is not a sign-in address of this server."),
  passkey_wrong_rp_id: () => apiErrors.passkey_wrong_rp_id("This passkey belongs to another website, not to this server."),
  passkey_verification_failed: () => apiErrors.passkey_verification_failed("The passkey's answer could not be verified: try again."),
} as const;
const unknownCredential = () => apiErrors.passkey_unknown_credential("This passkey is not registered here: it may have been deleted. Sign in another way.");
const passkeyNotFound = () => apiErrors.passkey_not_found("No passkey with this id belongs to you.");
const lastPasskey = () =>
  apiErrors.last_sign_in_method("This is your only passkey and your account has no password: add another passkey or set a password before deleting it.");

/** What the account signs in with, read in the caller's transaction (the rule "not the last way in", lib/ways-in.ts). */
export function* waysIn(tx: Db, userId: string): Atomic<WaysIn> {
  const account = yield* row(tx.select({ passwordHash: userTable.passwordHash }).from(userTable).where(eq(userTable.id, userId)));
  const held = yield* row(tx.select({ n: count() }).from(passkeys).where(eq(passkeys.userId, userId)));
  return { hasPassword: account?.passwordHash != null, passkeys: Number(held?.n) };
}

/** A passkey as the API shows it: never the key itself. */
export function publicPasskey(row: PasskeyRow) {
  return {
    id: row.id,
    name: row.name,
    aaguid: row.aaguid,
    backup_eligible: row.backupEligible,
    backed_up: row.backupState,
    transports: row.transports,
    created_at: row.createdAt.toISOString(),
    last_used_at: row.lastUsedAt === null ? null : row.lastUsedAt.toISOString(),
  };
}

/**
 * WebAuthn registration and authentication (@simplewebauthn/server) and the passkeys an account holds. Options
 * are remembered by the SHA-256 of their challenge and spent by one conditional DELETE before the answer is
 * checked, so each works once (a failed answer spends them too). Only public keys are stored.
 */
export function createPasskeyService(deps: { db: Db; users: UserService; audit: AuditLog; settings: PasskeyConfig; appName: string }) {
  const { db, users, audit, settings } = deps;
  const expected = { origins: settings.origins, rpId: settings.rpId };

  async function remember(challenge: string, purpose: Purpose, userId: string | null) {
    // Expired options are swept as new ones are handed out: the table holds at most 5 minutes of them.
    await db.delete(passkeyChallenges).where(lt(passkeyChallenges.expiresAt, new Date()));
    await db.insert(passkeyChallenges).values({ challengeHash: sha256Hex(challenge), purpose, userId, expiresAt: new Date(Date.now() + OPTIONS_TTL_MS) });
  }

  /**
   * Spends the options a response answers: challenge_expired unless they are live, were handed out for `purpose`,
   * and to the same account (a registration's options are bound to the signed-in account that asked).
   */
  async function spend(challenge: string, purpose: Purpose, userId: string | null) {
    const owner = userId === null ? isNull(passkeyChallenges.userId) : eq(passkeyChallenges.userId, userId);
    const live = and(eq(passkeyChallenges.challengeHash, sha256Hex(challenge)), eq(passkeyChallenges.purpose, purpose), owner, gt(passkeyChallenges.expiresAt, new Date()));
    if (changedRows(await db.delete(passkeyChallenges).where(live)) !== 1) throw challengeExpired();
  }

  /** Reads, spends and pre-checks a response; each refusal goes to the audit trail through `audited`. */
  async function admit(kind: "webauthn.create" | "webauthn.get", response: RegistrationResponseJSON["response"] | AuthenticationResponseJSON["response"], purpose: Purpose, userId: string | null, audited: (reason: string) => Promise<void>) {
    const claims = readCeremony(kind, response, expected);
    if (claims === undefined) {
      await audited("passkey_verification_failed");
      throw REFUSALS.passkey_verification_failed();
    }
    try {
      await spend(claims.challenge, purpose, userId);
    } catch (error) {
      await audited("passkey_challenge_expired");
      throw error;
    }
    if (claims.refusal !== undefined) {
      await audited(claims.refusal);
      throw REFUSALS[claims.refusal]();
    }
    return claims.challenge;
  }

  const listRows = (userId: string) => db.select().from(passkeys).where(eq(passkeys.userId, userId)).orderBy(asc(passkeys.createdAt));

  return {
    /** The account's passkeys, oldest first. */
    list: listRows,

    /** Options for navigator.credentials.create: a discoverable credential, user verification preferred. */
    async registrationOptions(principal: SessionPrincipal) {
      const existing = await listRows(principal.userId);
      const options = await generateRegistrationOptions({
        rpName: deps.appName,
        rpID: settings.rpId,
        userName: principal.username,
        userID: new TextEncoder().encode(principal.userId),
        attestationType: "none",
        // excludeCredentials: an authenticator that already holds one of this account's passkeys refuses to make another.
        excludeCredentials: existing.map((row) => ({ id: row.credentialId, transports: row.transports as AuthenticatorTransportFuture[] })),
        authenticatorSelection: { residentKey: "required", userVerification: "preferred" },
        timeout: OPTIONS_TTL_MS,
      });
      await remember(options.challenge, "register", principal.userId);
      return options;
    },

    /** Checks a registration and stores its public key; synced passkeys (backup eligible) are welcome. */
    async register(principal: SessionPrincipal, credential: RegistrationResponseJSON, name: string | undefined, client: ClientInfo) {
      const audited = (reason: string) => audit.record({ event: "passkey_registration_failed", userId: principal.userId, ...client, detail: { reason } });
      const challenge = await admit("webauthn.create", credential.response, "register", principal.userId, audited);
      let info;
      try {
        const verified = await verifyRegistrationResponse({
          response: credential,
          expectedChallenge: challenge,
          expectedOrigin: [...settings.origins],
          expectedRPID: settings.rpId,
          requireUserVerification: false,
        });
        if (!verified.verified) throw new Error("not verified");
        info = verified.registrationInfo;
      } catch {
        await audited("passkey_verification_failed");
        throw REFUSALS.passkey_verification_failed();
      }
      const credentialId = info.credential.id;
      const alreadyRegistered = async () => {
        await audited("passkey_already_registered");
        return apiErrors.passkey_already_registered("This authenticator already holds a passkey for an account here.");
      };
      const row = {
        id: randomToken(16),
        userId: principal.userId,
        credentialId,
        publicKey: isoBase64URL.fromBuffer(info.credential.publicKey),
        signCount: info.credential.counter,
        transports: info.credential.transports ?? [],
        backupEligible: info.credentialDeviceType === "multiDevice",
        backupState: info.credentialBackedUp,
        aaguid: info.aaguid,
        name: name?.trim() || authenticatorName(info.aaguid),
      };
      try {
        await transaction(db, function* (tx) {
          yield* assertSessionLive(tx, principal.sessionId);
          yield* changes(tx.insert(passkeys).values(row));
        });
      } catch (error) {
        // The credential id is unique: this authenticator's passkey is already registered (excludeCredentials
        // stops a browser from making it; an API client, or a race, ends here).
        const [raced] = await db.select({ id: passkeys.id }).from(passkeys).where(eq(passkeys.credentialId, credentialId));
        if (raced) throw await alreadyRegistered();
        throw error;
      }
      await audit.record({ event: "passkey_registered", userId: principal.userId, ...client, detail: { passkey_id: row.id, name: row.name, aaguid: row.aaguid, backup_eligible: row.backupEligible } });
      const [stored] = await db.select().from(passkeys).where(eq(passkeys.id, row.id));
      return stored!;
    },

    /** Options for navigator.credentials.get, usernameless: any passkey of this server's RP ID may answer. */
    async loginOptions() {
      const options = await generateAuthenticationOptions({ rpID: settings.rpId, userVerification: "preferred", timeout: OPTIONS_TTL_MS });
      await remember(options.challenge, "login", null);
      return options;
    },

    /** Whether the account holds a passkey (then `passkey` is a second step it may take). */
    async has(userId: string): Promise<boolean> {
      const [found] = await db.select({ id: passkeys.id }).from(passkeys).where(eq(passkeys.userId, userId)).limit(1);
      return found !== undefined;
    },

    /** Options for the passkey step of a sign-in challenge (or a step-up): only this account's passkeys may answer. */
    async secondStepOptions(userId: string, purpose: AccountPurpose = "second_step") {
      const allowed = await listRows(userId);
      const options = await generateAuthenticationOptions({
        rpID: settings.rpId,
        userVerification: "preferred",
        timeout: OPTIONS_TTL_MS,
        allowCredentials: allowed.map((row) => ({ id: row.credentialId, transports: row.transports as AuthenticatorTransportFuture[] })),
      });
      await remember(options.challenge, purpose, userId);
      return options;
    },

    /**
     * Checks an assertion: the account it signs in, and whether the authenticator verified its user (UV). A
     * counter that went back (a cloned authenticator) is refused and audited; the counter, backup state and last
     * use are updated only by an assertion whose counter still moves forward from the value read. `forUser`: the
     * passkey step of a challenge (or a step-up: `purpose`), whose options and passkey must be that account's (the
     * caller audits failures).
     */
    async authenticate(credential: AuthenticationResponseJSON, client: ClientInfo, forUser?: string, purpose: AccountPurpose = "second_step"): Promise<{ user: User; userVerified: boolean; passkeyId: string }> {
      const failed = async (reason: string, userId: string | null = null) => {
        if (forUser === undefined) await audit.record({ event: "login_failed", userId, ...client, detail: { reason, via: "passkey" } });
      };
      const challenge = await admit("webauthn.get", credential.response, forUser === undefined ? "login" : purpose, forUser ?? null, (reason) => failed(reason));
      const [stored] = await db.select().from(passkeys).where(eq(passkeys.credentialId, credential.id));
      if (!stored || (forUser !== undefined && stored.userId !== forUser)) {
        await failed("passkey_unknown_credential");
        throw unknownCredential();
      }
      // A discoverable credential names its account: it must be the one the credential was registered to.
      const handle = credential.response.userHandle;
      let info;
      try {
        if (handle !== undefined && new TextDecoder().decode(isoBase64URL.toBuffer(handle)) !== stored.userId) throw new Error("user handle");
        const verified = await verifyAuthenticationResponse({
          response: credential,
          expectedChallenge: challenge,
          expectedOrigin: [...settings.origins],
          expectedRPID: settings.rpId,
          // The counter is compared below, where a regression is told apart from a bad signature.
          credential: { id: stored.credentialId, publicKey: isoBase64URL.toBuffer(stored.publicKey), counter: 0, transports: stored.transports as AuthenticatorTransportFuture[] },
          requireUserVerification: false,
        });
        if (!verified.verified) throw new Error("not verified");
        info = verified.authenticationInfo;
      } catch {
        await failed("passkey_verification_failed", stored.userId);
        throw REFUSALS.passkey_verification_failed();
      }
      const regression = async () => {
        await audit.record({
          event: "passkey_counter_regression",
          userId: stored.userId,
          ...client,
          detail: { passkey_id: stored.id, stored: stored.signCount, received: info.newCounter },
        });
        return apiErrors.passkey_counter_regression("This passkey's authenticator may have been copied, so it was refused. Sign in another way and check your passkeys.");
      };
      if (counterRegressed(stored.signCount, info.newCounter)) throw await regression();
      const moved = changedRows(
        await db
          .update(passkeys)
          .set({ signCount: info.newCounter, backupState: info.credentialBackedUp, lastUsedAt: new Date() })
          .where(and(eq(passkeys.id, stored.id), eq(passkeys.signCount, stored.signCount))),
      );
      // Another assertion moved the counter meanwhile: this one's count was not beyond it (or both are 0, then fine).
      if (moved !== 1 && info.newCounter !== 0) throw await regression();
      const user = await users.findById(stored.userId);
      if (!user) {
        await failed("passkey_unknown_credential");
        throw unknownCredential();
      }
      return { user, userVerified: info.userVerified, passkeyId: stored.id };
    },

    async rename(principal: SessionPrincipal, id: string, name: string, client: ClientInfo) {
      const renamed = await transaction(db, function* (tx) {
        yield* assertSessionLive(tx, principal.sessionId);
        return yield* changes(tx.update(passkeys).set({ name }).where(and(eq(passkeys.id, id), eq(passkeys.userId, principal.userId))));
      });
      if (renamed !== 1) throw passkeyNotFound();
      await audit.record({ event: "passkey_renamed", userId: principal.userId, ...client, detail: { passkey_id: id, name } });
      const [row] = await db.select().from(passkeys).where(eq(passkeys.id, id));
      return row!;
    },

    /**
     * Deletes every passkey of the account (an admin's reset of a lost device); how many there were. `precondition`
     * runs in the delete's transaction (the admin's session and role, re-checked).
     */
    async removeAllOf(userId: string, precondition: (tx: Db) => Atomic<void>): Promise<number> {
      return transaction(db, function* (tx) {
        yield* precondition(tx);
        return yield* changes(tx.delete(passkeys).where(eq(passkeys.userId, userId)));
      });
    },

    /**
     * Deletes a passkey, unless it is the last way in (the last passkey of an account without a password): 409
     * last_sign_in_method. Decided in the delete's transaction, in serial order with a password removed meanwhile.
     */
    async remove(principal: SessionPrincipal, id: string, client: ClientInfo) {
      const removed = await transaction(db, function* (tx) {
        yield* assertSessionLive(tx, principal.sessionId);
        const ways = yield* waysIn(tx, principal.userId);
        const deleted = yield* changes(tx.delete(passkeys).where(and(eq(passkeys.id, id), eq(passkeys.userId, principal.userId))));
        if (deleted === 1 && leavesNoWayIn(ways, "passkey")) throw lastPasskey();
        return deleted;
      });
      if (removed !== 1) throw passkeyNotFound();
      await audit.record({ event: "passkey_deleted", userId: principal.userId, ...client, detail: { passkey_id: id } });
    },
  };
}

export type PasskeyService = ReturnType<typeof createPasskeyService>;
