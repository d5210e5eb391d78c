import type { User } from "../../db/schema";
import { apiErrors, validationFailed } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { throttleAccount, type SecretCheckLimiter } from "../../limits";
import type { RateLimitAudit } from "../../limits/audit";
import type { DeviceCookies } from "../../limits/device";
import { PASSWORD_MAX_BYTES, passwordTooLong, type PasswordHasher } from "../../lib/passwords";
import type { AuditLog } from "../audit/service";
import type { UserService } from "../users/service";

export const userNotVerified = () =>
  apiErrors.user_not_verified("The email address of this account is not verified yet: follow the link in the mail, or ask for a new one.");

export const accountDisabled = () => apiErrors.account_disabled("This account has been disabled.");

export const invalidCredentials = () =>
  apiErrors.invalid_credentials("The username or password is incorrect.");

export function assertPasswordSize(password: string, field: string): void {
  // Before any hashing or normalising: the cost an attacker can ask for stays bounded.
  if (passwordTooLong(password)) throw validationFailed([{ field, message: `Must be at most ${PASSWORD_MAX_BYTES} bytes.` }]);
}

/**
 * The password side of every secret check: the limiter in front of it (per address, per account, with the
 * exemption of the owner's recent clients), the one password check of every sign-in, and the trust a completed
 * sign-in earns its address.
 */
export function createPasswordCheck(deps: {
  users: UserService;
  hasher: PasswordHasher;
  limiter: SecretCheckLimiter;
  devices: DeviceCookies;
  audit: AuditLog;
  auditRateLimit: RateLimitAudit;
  /** REQUIRE_EMAIL_VERIFICATION: sign-in waits until the address is verified. */
  requireEmailVerification: boolean;
}) {
  const { users, hasher, limiter, devices, audit, auditRateLimit } = deps;

  /**
   * A client that recently signed in to this account (its browser holds the device cookie, or it succeeded from
   * this address) is exempt from the account-wide backstop: strangers filling it from many addresses must not
   * lock the owner out (OWASP device cookies). It keeps its own per-(account, address) counter.
   */
  const knownClient = async (account: string, user: { id: string } | undefined, client: ClientInfo) =>
    user !== undefined && (devices.vouchesFor(client.device, user.id) || (await limiter.signedInFrom(account, client.ip)));

  /**
   * Limiter first, audited when it refuses: the attempt counts as a failure until `succeeded` ends the run.
   * `login` is what the client typed (an unknown name is throttled exactly like a known account).
   */
  async function beginSecretCheck(login: string, user: { id: string } | undefined, client: ClientInfo) {
    const account = throttleAccount(login, user);
    const trusted = await knownClient(account, user, client);
    try {
      await limiter.beginAttempt(account, client.ip, trusted);
    } catch (error) {
      await auditRateLimit({ scope: "account", account, userId: user?.id, client });
      throw error;
    }
    return { succeeded: () => limiter.recordSuccess(account, client.ip, trusted) };
  }

  /**
   * Checks a password behind the limiter: refused while throttled, counted as a failure until it proves right.
   * `login` is what the client typed: an unknown name is throttled exactly like a known account.
   */
  async function checkPassword(
    login: string,
    password: string,
    user: { id: string; passwordHash: string | null } | undefined,
    client: ClientInfo,
  ): Promise<boolean> {
    const check = await beginSecretCheck(login, user, client);
    // An account without a password (passkeys only) answers like a wrong password, after the same work: the
    // dummy hash, as for an unknown name (no enumeration of passwordless accounts, OWASP ASVS V2.2.x).
    const hash = user?.passwordHash ?? null;
    const valid = hash === null ? (await hasher.burn(password), false) : await hasher.verify(password, hash);
    if (valid) await check.succeeded();
    return valid;
  }

  /**
   * Unknown name and wrong password fail identically, and an unknown name still costs one hash verification.
   * A disabled account is only revealed to someone who knows its password. The one password check of every
   * sign-in (API, OAuth2 token endpoint, sign-in page).
   */
  /** After a right secret (a password or a passkey): a disabled or unverified account still gets no sign-in. */
  async function admitAccount(user: User, client: ClientInfo, via?: string): Promise<void> {
    const refuse = (reason: string) => audit.record({ event: "login_failed", userId: user.id, ...client, detail: via === undefined ? { reason } : { reason, via } });
    if (user.disabled) {
      await refuse("account_disabled");
      throw accountDisabled();
    }
    // Accounts without an address (made from the CLI or by an admin) have nothing to verify.
    if (deps.requireEmailVerification && user.email !== null && !user.emailVerified) {
      await refuse("user_not_verified");
      throw userNotVerified();
    }
  }

  async function verifyLogin(login: string, password: string, client: ClientInfo): Promise<User & { passwordHash: string }> {
    assertPasswordSize(password, "password");
    const user = await users.findByLogin(login);
    if (!(await checkPassword(login, password, user, client))) {
      await audit.record({ event: "login_failed", userId: user?.id ?? null, ...client, detail: { reason: "invalid_credentials" } });
      throw invalidCredentials();
    }
    // The password was right, so the account exists and has one.
    const withPassword = user as User & { passwordHash: string };
    await admitAccount(withPassword, client);
    // The hash now stored for this password: what the session insert checks is still there.
    return { ...withPassword, passwordHash: await users.upgradeHashIfNeeded(withPassword, password) };
  }

  /**
   * A sign-in is complete (the password and any second step): this address becomes one the account recently
   * signed in from. Not before: a right password alone, while a second step is due, earns no exemption.
   */
  const completeSignIn = (user: { id: string; username: string }, client: ClientInfo) =>
    limiter.trustAddress(throttleAccount(user.username, user), client.ip);

  return { beginSecretCheck, checkPassword, verifyLogin, admitAccount, completeSignIn };
}
