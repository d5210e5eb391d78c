import { expect, test } from "bun:test";
import { createMfaService } from "../../src/modules/mfa/service";
import { migrate, openDatabase } from "../../src/db/client";
import { createPasswordHasher } from "../../src/lib/passwords";
import { createSecretCheckLimiter } from "../../src/limits";
import { createRateLimitAudit } from "../../src/limits/audit";
import { deviceCookies } from "../../src/limits/device";
import { createAuditLog } from "../../src/modules/audit/service";
import { createAuthService } from "../../src/modules/auth/service";
import { quietSecondStep } from "../support/second-step";
import { createSessionService } from "../../src/modules/sessions/service";
import { createUserService } from "../../src/modules/users/service";
import { deriveSecrets } from "../../src/secrets";
import { createAccessTokens } from "../../src/tokens/access";
import { createKeyRing } from "../../src/tokens/keys";
import { ApiError } from "../../src/errors";

/**
 * No user enumeration by timing: an unknown name must cost the same argon2id work as a wrong password.
 * Asserted structurally (which hash operations run) rather than with a clock; `make bench` measures the times.
 */
test("an unknown user costs one dummy verification, a wrong password one real one, a passwordless account the dummy one, and all fail identically", async () => {
  const db = openDatabase(":memory:");
  migrate(db);
  const real = createPasswordHasher({ memoryCost: 19456, timeCost: 2 });
  const calls: string[] = [];
  const hasher = {
    ...real,
    verify: async (password: string, hash: string) => {
      calls.push(`verify ${/m=\d+,t=\d+/.exec(hash)?.[0]}`);
      return real.verify(password, hash);
    },
    burn: async (password: string) => {
      calls.push("burn");
      return real.burn(password);
    },
  };
  const users = createUserService(db, hasher, 8);
  const secrets = deriveSecrets("x".repeat(32));
  const audit = createAuditLog(db, () => {});
  const auth = createAuthService({
    users,
    sessions: createSessionService(db, { refreshTokenTtl: 3600, refreshReuseInterval: 10, refreshRotationKey: secrets.refreshRotationKey }),
    accessTokens: createAccessTokens(createKeyRing(db, { hs256Secret: secrets.jwtKey, algs: ["HS256"], maxTokenTtl: 3600 }), "HS256", "http://localhost", 3600),
    hasher,
    limiter: createSecretCheckLimiter(db, undefined),
    audit,
    auditRateLimit: createRateLimitAudit((event) => audit.record(event)),
    emailFlows: { async registered() {}, async passwordChanged() {}, async requestEmailChange() {} },
    mfa: createMfaService(db, secrets.dataKey, "Latchkey"),
    secondStep: quietSecondStep(db, { users, mfa: createMfaService(db, secrets.dataKey, "Latchkey"), audit, codeKey: secrets.codeKey }),
    devices: deviceCookies(secrets.deviceKey),
    settings: { allowRegistration: true, requireEmailVerification: false, refreshTokenTtl: 3600 },
    passkeys: { list: async () => [] },
  });
  await users.create({ username: "known", password: "a long passphrase" });
  await users.create({ username: "passkeys-only", password: null });
  const client = { ip: "203.0.113.5", userAgent: null };

  const failure = async (login: string) => {
    calls.length = 0;
    const error = await auth.login(login, "not the password", client).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    return { body: (error as ApiError).toBody(), status: (error as ApiError).status, calls: [...calls] };
  };
  const unknown = await failure("nobody-here");
  const wrong = await failure("known");
  expect(unknown.status).toBe(401);
  expect(unknown.body).toEqual(wrong.body);
  expect(unknown.calls).toEqual(["burn"]);
  expect(wrong.calls).toEqual(["verify m=19456,t=2"]);
  // No password at all: the same answer after the same work as an unknown name (never a cheaper refusal).
  const passwordless = await failure("passkeys-only");
  expect(passwordless.body).toEqual(unknown.body);
  expect(passwordless.status).toBe(401);
  expect(passwordless.calls).toEqual(["burn"]);
});
