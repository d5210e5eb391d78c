import { beforeEach, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { migrate, openDatabase, type Db } from "../../src/db/client";
import { sessions as sessionsTable, users as usersTable } from "../../src/db/schema";
import { ApiError } from "../../src/errors";
import { createPasswordHasher, type PasswordHasher } from "../../src/lib/passwords";
import { createSecretCheckLimiter } from "../../src/limits";
import { createRateLimitAudit } from "../../src/limits/audit";
import { deviceCookies } from "../../src/limits/device";
import { createAdminService } from "../../src/modules/admin/service";
import { createAuditLog } from "../../src/modules/audit/service";
import { createAuthService } from "../../src/modules/auth/service";
import { quietSecondStep } from "../support/second-step";
import { createApiKeyService } from "../../src/modules/keys/service";
import { createMfaService } from "../../src/modules/mfa/service";
import { createSessionService } from "../../src/modules/sessions/service";
import { createUserService } from "../../src/modules/users/service";
import { deriveSecrets } from "../../src/secrets";
import { createAccessTokens } from "../../src/tokens/access";
import { createKeyRing } from "../../src/tokens/keys";

/**
 * Races between a sign-in and a change to the account (issue 16), made deterministic: the hasher holds its next
 * verification or hash until the test has changed the account, as a slow argon2id would in production.
 */
const P1 = "first long passphrase";
const P2 = "second long passphrase";
const client = { ip: "203.0.113.5", userAgent: null };

function gatedHasher(real: PasswordHasher) {
  let held: { op: "verify" | "hash"; reached: () => void; release: Promise<void> } | undefined;
  const wait = async (op: "verify" | "hash") => {
    if (held?.op !== op) return;
    const gate = held;
    held = undefined;
    gate.reached();
    await gate.release;
  };
  return {
    hasher: {
      ...real,
      verify: async (password: string, hash: string) => {
        const valid = await real.verify(password, hash);
        await wait("verify");
        return valid;
      },
      hash: async (password: string) => {
        const hash = await real.hash(password);
        await wait("hash");
        return hash;
      },
    },
    /** Holds the next `op`; resolves `reached` when it is held; `release()` lets it finish. */
    hold(op: "verify" | "hash") {
      let release!: () => void;
      let reached!: () => void;
      const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
      held = { op, reached, release: new Promise<void>((resolve) => (release = resolve)) };
      return { reached: reachedPromise, release };
    },
  };
}

let db: Db;
let gate: ReturnType<typeof gatedHasher>;
let setup: ReturnType<typeof build>;

function build(weakHashes = false) {
  const secrets = deriveSecrets("x".repeat(32));
  // weakHashes: accounts were hashed with less time than configured now, so the next sign-in re-hashes.
  const configured = createPasswordHasher({ memoryCost: 19456, timeCost: 2 });
  gate = gatedHasher(configured);
  const users = createUserService(db, gate.hasher, 8);
  const creator = weakHashes ? createUserService(db, createPasswordHasher({ memoryCost: 19456, timeCost: 1 }), 8) : users;
  const sessions = createSessionService(db, { refreshTokenTtl: 3600, refreshReuseInterval: 10, refreshRotationKey: secrets.refreshRotationKey });
  const audit = createAuditLog(db, () => {});
  const mfa = createMfaService(db, secrets.dataKey, "Latchkey");
  const auth = createAuthService({
    users,
    sessions,
    accessTokens: createAccessTokens(createKeyRing(db, { hs256Secret: secrets.jwtKey, algs: ["HS256"], maxTokenTtl: 3600 }), "HS256", "http://localhost", 3600),
    hasher: gate.hasher,
    limiter: createSecretCheckLimiter(db, undefined),
    audit,
    auditRateLimit: createRateLimitAudit((event) => audit.record(event)),
    emailFlows: { async registered() {}, async passwordChanged() {}, async requestEmailChange() {} },
    mfa,
    secondStep: quietSecondStep(db, { users, mfa: mfa, audit, codeKey: secrets.codeKey }),
    devices: deviceCookies(secrets.deviceKey),
    settings: { allowRegistration: true, requireEmailVerification: false, refreshTokenTtl: 3600 },
    passkeys: { list: async () => [] },
  });
  const apiKeys = createApiKeyService(db, { maxPerUser: 50, rateLimit: undefined } as never);
  const admin = createAdminService({ db, users, sessions, apiKeys, audit, mfa });
  return { users, creator, sessions, auth, apiKeys, mfa, admin, real: configured };
}

beforeEach(async () => {
  db = openDatabase(":memory:");
  migrate(db);
  setup = build();
});

const sessionCount = (userId: string) => db.select().from(sessionsTable).where(eq(sessionsTable.userId, userId)).all().length;
const storedHash = (userId: string) => db.select({ h: usersTable.passwordHash }).from(usersTable).where(eq(usersTable.id, userId)).get()?.h;
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected the sign-in to fail");
    },
    (error: unknown) => {
      expect(error).toBeInstanceOf(ApiError);
      return { status: (error as ApiError).status, code: (error as ApiError).code };
    },
  );

test("a login's re-hash does not undo a password change that committed while it hashed (compare-and-set)", async () => {
  setup = build(true);
  const alice = await setup.creator.create({ username: "alice", password: P1 });
  const held = gate.hold("hash");
  const login = failure(setup.auth.login("alice", P1, client));
  await held.reached; // P1 verified; its stronger re-hash is being computed
  await setup.users.setPassword(alice, P2);
  held.release();
  expect(await login).toEqual({ status: 401, code: "invalid_credentials" });
  expect(await setup.real.verify(P2, storedHash(alice.id)!)).toBe(true);
  expect(await setup.real.verify(P1, storedHash(alice.id)!)).toBe(false);
  expect(sessionCount(alice.id)).toBe(0);
});

test("a login re-hash with nothing racing it still stores the stronger hash and signs in", async () => {
  setup = build(true);
  const alice = await setup.creator.create({ username: "alice", password: P1 });
  const tokens = await setup.auth.login("alice", P1, client);
  expect("refreshToken" in tokens).toBe(true);
  expect(storedHash(alice.id)).toContain("t=2");
  expect(sessionCount(alice.id)).toBe(1);
});

test("a login still verifying the old password when the password changes gets no session (401 invalid_credentials)", async () => {
  const alice = await setup.users.create({ username: "alice", password: P1 });
  const held = gate.hold("verify");
  const login = failure(setup.auth.login("alice", P1, client));
  await held.reached;
  await setup.users.setPassword(alice, P2);
  held.release();
  expect(await login).toEqual({ status: 401, code: "invalid_credentials" });
  expect(sessionCount(alice.id)).toBe(0);
});

test("a login racing an admin disable answers 403 account_disabled and leaves no session to come back on re-enable", async () => {
  const alice = await setup.users.create({ username: "alice", password: P1 });
  const held = gate.hold("verify");
  const login = failure(setup.auth.login("alice", P1, client));
  await held.reached;
  db.update(usersTable).set({ disabled: true }).where(eq(usersTable.id, alice.id)).run();
  held.release();
  expect(await login).toEqual({ status: 403, code: "account_disabled" });
  expect(sessionCount(alice.id)).toBe(0);
});

test("a login racing a user delete answers 401 invalid_credentials, not a foreign-key 500", async () => {
  const alice = await setup.users.create({ username: "alice", password: P1 });
  const held = gate.hold("verify");
  const login = failure(setup.auth.login("alice", P1, client));
  await held.reached;
  db.delete(usersTable).where(eq(usersTable.id, alice.id)).run();
  held.release();
  expect(await login).toEqual({ status: 401, code: "invalid_credentials" });
});

test("a browser sign-in racing a disable opens no browser session", async () => {
  const alice = await setup.users.create({ username: "alice", password: P1 });
  const held = gate.hold("verify");
  const signIn = failure(setup.auth.signInBrowser("alice", P1, client));
  await held.reached;
  db.update(usersTable).set({ disabled: true }).where(eq(usersTable.id, alice.id)).run();
  held.release();
  expect(await signIn).toEqual({ status: 403, code: "account_disabled" });
  expect(sessionCount(alice.id)).toBe(0);
});

/** What `latchkey user disable` does from another process: the server's 1-second cache has not seen it. */
function disableFromAnotherProcess(userId: string) {
  db.update(usersTable).set({ disabled: true }).where(eq(usersTable.id, userId)).run();
  db.delete(sessionsTable).where(eq(sessionsTable.userId, userId)).run();
}

test("a disabled user cannot mint an API key while the session cache still vouches for the session", async () => {
  const alice = await setup.users.create({ username: "alice", password: P1 });
  const { sessionId } = await setup.sessions.create({ userId: alice.id }, client, ["pwd"]);
  expect((await setup.sessions.principal(sessionId))?.userId).toBe(alice.id);
  disableFromAnotherProcess(alice.id);
  expect((await setup.sessions.principal(sessionId))?.userId).toBe(alice.id); // still cached
  const error = await (async () => {
    try {
      await setup.apiKeys.create({ userId: alice.id, sessionId }, { name: "ci" });
    } catch (caught) {
      return caught as ApiError;
    }
  })();
  expect(error?.status).toBe(401);
  expect(error?.code).toBe("invalid_token");
  expect(await setup.apiKeys.list(alice.id)).toEqual([]);
});

test("a password change authorised by a session that was ended meanwhile is refused and changes nothing", async () => {
  const alice = await setup.users.create({ username: "alice", password: P1 });
  const { sessionId } = await setup.sessions.create({ userId: alice.id }, client, ["pwd"]);
  const principal = (await setup.sessions.principal(sessionId))!;
  disableFromAnotherProcess(alice.id);
  const before = storedHash(alice.id);
  expect(await failure(setup.auth.changePassword(principal, P1, P2, client))).toEqual({ status: 401, code: "invalid_token" });
  expect(storedHash(alice.id)).toBe(before!);
});

test("second factors are not changed on the word of a session another process ended (enrol, recovery codes, removal)", async () => {
  const alice = await setup.users.create({ username: "alice", password: P1 });
  const { sessionId } = await setup.sessions.create({ userId: alice.id }, client, ["pwd"]);
  expect((await setup.sessions.principal(sessionId))?.userId).toBe(alice.id);
  disableFromAnotherProcess(alice.id);
  for (const write of [
    () => setup.mfa.startTotp(alice.id, "alice", sessionId),
    () => setup.mfa.replaceRecoveryCodes(alice.id, sessionId),
    () => setup.mfa.removeAll(alice.id, sessionId),
  ])
    await expect(write()).rejects.toThrow(expect.objectContaining({ status: 401, code: "invalid_token" }));
  expect(await setup.mfa.factors(alice.id)).toEqual({ totp: false, recovery_codes_left: 0 });
  expect(db.$client.query("SELECT count(*) AS n FROM totp_factors").get()).toEqual({ n: 0 });
});

test("an admin demoted or disabled from another process cannot change users within the cache's second", async () => {
  const root = await setup.users.create({ username: "root", password: P1, roles: ["admin"] });
  const spare = await setup.users.create({ username: "spare", password: P1, roles: ["admin"] });
  const member = await setup.users.create({ username: "member", password: P1 });
  const { sessionId } = await setup.sessions.create({ userId: root.id }, client, ["pwd"]);
  const actor = { userId: root.id, username: "root", sessionId, ip: null, userAgent: null };
  expect((await setup.sessions.principal(sessionId))?.roles).toEqual(["admin"]);
  // `latchkey user roles root ""`: the cached principal still says admin.
  db.update(usersTable).set({ roles: [] }).where(eq(usersTable.id, root.id)).run();
  const refused = await (async () => {
    try {
      await setup.admin.update(member.id, { disabled: true }, actor);
    } catch (caught) {
      return caught as ApiError;
    }
  })();
  expect({ status: refused?.status, code: refused?.code }).toEqual({ status: 403, code: "forbidden" });
  await expect(setup.admin.delete(member.id, actor)).rejects.toThrow(expect.objectContaining({ code: "forbidden" }));
  expect((await setup.users.findById(member.id))?.disabled).toBe(false);
  // Disabled (its sessions ended) from another process: 401, and still nothing changes.
  disableFromAnotherProcess(root.id);
  await expect(setup.admin.update(member.id, { disabled: true }, actor)).rejects.toThrow(expect.objectContaining({ code: "invalid_token" }));
  expect(await failure(setup.admin.resetPassword(member.id, P2, actor))).toEqual({ status: 401, code: "invalid_token" });
  expect((await setup.users.findById(member.id))?.disabled).toBe(false);
  expect(spare.roles).toEqual(["admin"]);
});
