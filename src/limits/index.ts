import { eq, lt, sql } from "drizzle-orm";
import type { RateLimitConfig } from "../config";
import type { Db } from "../db/client";
import { loginThrottles } from "../db/schema";
import { ApiError } from "../errors";
import { sha256Hex } from "../lib/crypto";
import { createTokenBuckets } from "./token-bucket";

export const rateLimited = (retryAfter: number) =>
  new ApiError(429, "rate_limited", "Too many attempts. Try again later.", undefined, { "Retry-After": String(retryAfter) });

/**
 * The one limiter in front of every check of a secret (passwords now; emailed codes and the sign-in form
 * later). All of it runs before any hash is computed.
 *  - a token bucket per client IP (in memory: a flood control, not a lockout);
 *  - consecutive failures per (account, IP): after `accountIpFailures`, delays double from 1 s;
 *  - consecutive failures per account from every IP: a backstop after `accountFailures`
 *    (NIST SP 800-63B §5.2.2 allows at most 100).
 * Keying the lockout on (account, IP) first means an attacker at one address slows only themselves and the
 * owner keeps signing in from their own address (unlike username-only lockout, authelia/authelia#4730).
 * "account" is the login as typed, normalised, so an unknown name is counted exactly like a known one.
 */
export function createSecretCheckLimiter(db: Db, settings: RateLimitConfig | undefined) {
  if (!settings) return disabledLimiter;
  const ipBuckets = createTokenBuckets(settings.ipBurst, (settings.ipPeriodSeconds * 1000 * settings.ipBurst) / settings.ipRequests);

  const keysFor = (account: string, ip: string | null) => {
    const normalised = account.normalize("NFKC").toLowerCase();
    return [
      { key: sha256Hex(`account-ip|${normalised}|${ip ?? "-"}`), threshold: settings.accountIpFailures },
      { key: sha256Hex(`account|${normalised}`), threshold: settings.accountFailures },
    ];
  };

  const delayMs = (failures: number, threshold: number) =>
    failures < threshold ? 0 : Math.min(1000 * 2 ** Math.min(failures - threshold, 30), settings.maxDelaySeconds * 1000);

  return {
    enabled: true,

    /** One request from this client IP to a route that checks a secret. */
    hitIp(ip: string | null): void {
      const decision = ipBuckets.take(ip ?? "unknown");
      if (!decision.allowed) throw rateLimited(decision.retryAfter);
    },

    /** Refuses, before any hashing, while the account is in a delay from this IP or from everywhere. */
    assertAccountOpen(account: string, ip: string | null): void {
      const now = Date.now();
      let until = 0;
      for (const { key } of keysFor(account, ip)) {
        const row = db.select({ blockedUntil: loginThrottles.blockedUntil }).from(loginThrottles).where(eq(loginThrottles.key, key)).get();
        if (row?.blockedUntil && row.blockedUntil.getTime() > now) until = Math.max(until, row.blockedUntil.getTime());
      }
      if (until > now) throw rateLimited(Math.ceil((until - now) / 1000));
    },

    recordFailure(account: string, ip: string | null): void {
      const now = Date.now();
      db.transaction((tx) => {
        for (const { key, threshold } of keysFor(account, ip)) {
          const row = tx
            .insert(loginThrottles)
            .values({ key, failures: 1, updatedAt: new Date(now) })
            .onConflictDoUpdate({
              target: loginThrottles.key,
              set: { failures: sql`${loginThrottles.failures} + 1`, updatedAt: new Date(now) },
            })
            .returning({ failures: loginThrottles.failures })
            .get();
          const delay = delayMs(row.failures, threshold);
          if (delay > 0)
            tx.update(loginThrottles).set({ blockedUntil: new Date(now + delay) }).where(eq(loginThrottles.key, key)).run();
        }
      });
    },

    /** A correct secret ends the run of failures, from this address and overall. */
    recordSuccess(account: string, ip: string | null): void {
      for (const { key } of keysFor(account, ip)) db.delete(loginThrottles).where(eq(loginThrottles.key, key)).run();
    },
  };
}

const disabledLimiter = {
  enabled: false,
  hitIp(_ip: string | null): void {},
  assertAccountOpen(_account: string, _ip: string | null): void {},
  recordFailure(_account: string, _ip: string | null): void {},
  recordSuccess(_account: string, _ip: string | null): void {},
};

export type SecretCheckLimiter = ReturnType<typeof createSecretCheckLimiter>;

/** Forgets failure runs that ended long ago (their delay is over and a day has passed). */
export function pruneLoginThrottles(db: Db): void {
  db.delete(loginThrottles).where(lt(loginThrottles.updatedAt, new Date(Date.now() - 86_400_000))).run();
}
