import { and, eq, gt, inArray, lt, sql } from "drizzle-orm";
import { normalizeUsername } from "../lib/names";
import type { RateLimitConfig } from "../config";
import { changes, row, rows, transaction } from "../db/atomic";
import type { Db } from "../db/client";
import { loginThrottles, trustedSignIns } from "../db/tables";
import { rateLimited } from "../errors";
import { addressGroup } from "../lib/ip";
import { sha256Hex } from "../lib/crypto";
import { DEVICE_TRUST_SECONDS } from "./device";
import { failureDelayMs } from "./second-factor";
import { createTokenBuckets } from "./token-bucket";

/**
 * Which account a secret check is about: the user's id when the login names an existing account (so its
 * username and its email share one counter), otherwise the login as typed, normalised, so an unknown name is
 * counted, delayed and answered exactly like a real one.
 */
export function throttleAccount(login: string, user: { id: string } | undefined): string {
  return user ? `user:${user.id}` : `login:${normalizeUsername(login)}`;
}

/**
 * The one limiter in front of every check of a secret (passwords now; emailed codes and the sign-in form
 * later). All of it runs before any hash is computed.
 *  - a token bucket per client address (in memory: a flood control, not a lockout; IPv6 per /64);
 *  - consecutive failures per (account, address): from the `accountIpFailures`-th on, delays double from 1 s;
 *  - consecutive failures per account from every address: a backstop from the `accountFailures`-th
 *    (NIST SP 800-63B §5.2.2 allows at most 100).
 * Keying the lockout on (account, address) first means an attacker at one address slows only themselves and
 * the owner keeps signing in from their own address (unlike username-only lockout, authelia/authelia#4730).
 *
 * An attempt counts as a failure from the moment it starts (`beginAttempt`) until it succeeds: requests sent in
 * parallel cannot all pass the check while the first ones are still hashing (OWASP ASVS V2.2.1).
 */
export function createSecretCheckLimiter(db: Db, settings: RateLimitConfig | undefined) {
  if (!settings) return disabledLimiter;
  const ipBuckets = createTokenBuckets(settings.ipBurst, (settings.ipPeriodSeconds * 1000 * settings.ipBurst) / settings.ipRequests);

  const group = (ip: string | null) => (ip === null ? "-" : addressGroup(ip));
  /** The counters an attempt meets; a `trusted` client (see isTrusted) skips the account-wide backstop. */
  const keysFor = (account: string, ip: string | null, trusted = false) => [
    { key: sha256Hex(`account-ip|${account}|${group(ip)}`), threshold: settings.accountIpFailures },
    ...(trusted ? [] : [{ key: sha256Hex(`account|${account}`), threshold: settings.accountFailures }]),
  ];
  const trustedKey = (account: string, ip: string | null) => sha256Hex(`trusted|${account}|${group(ip)}`);

  return {
    /** One request from this client address to a route that checks a secret. */
    hitIp(ip: string | null): void {
      const decision = ipBuckets.take(ip === null ? "unknown" : addressGroup(ip));
      if (!decision.allowed) throw rateLimited(decision.retryAfter);
    },

    /**
     * Before a secret is checked: refuses (429) while the account is delayed from this address or from
     * everywhere; otherwise counts this attempt as a failure, and starts the next delay if it reaches a
     * threshold. One transaction in serial order with every other attempt, even on other instances: concurrent
     * attempts cannot all read "not blocked" before any of them counts.
     */
    async beginAttempt(account: string, ip: string | null, trusted = false): Promise<void> {
      const now = Date.now();
      const keys = keysFor(account, ip, trusted);
      await transaction(db, function* (tx) {
        const counters = yield* rows(
          tx
            .select({ blockedUntil: loginThrottles.blockedUntil })
            .from(loginThrottles)
            .where(inArray(loginThrottles.key, keys.map(({ key }) => key))),
        );
        const until = Math.max(0, ...counters.map((counter) => counter.blockedUntil?.getTime() ?? 0));
        if (until > now) throw rateLimited(Math.ceil((until - now) / 1000));
        for (const { key, threshold } of keys) {
          const counted = yield* row(
            tx
              .insert(loginThrottles)
              .values({ key, failures: 1, updatedAt: new Date(now) })
              .onConflictDoUpdate({
                target: loginThrottles.key,
                set: { failures: sql`${loginThrottles.failures} + 1`, updatedAt: new Date(now) },
              })
              .returning({ failures: loginThrottles.failures }),
          );
          const delay = failureDelayMs(counted!.failures, threshold, settings.maxDelaySeconds * 1000);
          if (delay > 0) yield* changes(tx.update(loginThrottles).set({ blockedUntil: new Date(now + delay) }).where(eq(loginThrottles.key, key)));
        }
      });
    },

    /**
     * A correct secret ends this address's run of failures, and the account-wide run too unless the client is
     * `trusted` (a device cookie or a recent address): the owner's own success must not wipe out what strangers'
     * addresses built up, or a fresh address could guess again right after it (OWASP "device cookies": the lockout
     * of untrusted clients outlives a trusted sign-in). A trusted attempt never counted in the account-wide run.
     */
    async recordSuccess(account: string, ip: string | null, trusted = false): Promise<void> {
      await db.delete(loginThrottles).where(inArray(loginThrottles.key, keysFor(account, ip, trusted).map(({ key }) => key)));
    },

    /**
     * A completed sign-in (the password and any second step) makes this address one the account recently signed
     * in from, exempt from the account-wide backstop for DEVICE_TRUST_SECONDS: the owner's API client, which keeps
     * no cookie, is recognised by where it last succeeded. A right password alone earns nothing while a second
     * step is due: whoever has only the password must not be trusted.
     */
    async trustAddress(account: string, ip: string | null): Promise<void> {
      const expiresAt = new Date(Date.now() + DEVICE_TRUST_SECONDS * 1000);
      await db.insert(trustedSignIns).values({ key: trustedKey(account, ip), expiresAt }).onConflictDoUpdate({ target: trustedSignIns.key, set: { expiresAt } });
    },

    /** True when the account signed in successfully from this address group within DEVICE_TRUST_SECONDS. */
    async signedInFrom(account: string, ip: string | null): Promise<boolean> {
      const found = await db
        .select({ key: trustedSignIns.key })
        .from(trustedSignIns)
        .where(and(eq(trustedSignIns.key, trustedKey(account, ip)), gt(trustedSignIns.expiresAt, new Date())));
      return found.length > 0;
    },
  };
}

const disabledLimiter = {
  hitIp(_ip: string | null): void {},
  beginAttempt: async (_account: string, _ip: string | null, _trusted?: boolean): Promise<void> => {},
  recordSuccess: async (_account: string, _ip: string | null, _trusted?: boolean): Promise<void> => {},
  trustAddress: async (_account: string, _ip: string | null): Promise<void> => {},
  signedInFrom: async (_account: string, _ip: string | null): Promise<boolean> => false,
};

export type SecretCheckLimiter = ReturnType<typeof createSecretCheckLimiter>;

/** Forgets failure runs that ended long ago (their delay is over and a day has passed). */
export async function pruneLoginThrottles(db: Db): Promise<void> {
  await db.delete(loginThrottles).where(lt(loginThrottles.updatedAt, new Date(Date.now() - 86_400_000)));
  await db.delete(trustedSignIns).where(lt(trustedSignIns.expiresAt, new Date()));
}
