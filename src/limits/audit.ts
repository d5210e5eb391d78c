import { type ClientInfo } from "../http/client-ip";
import { databaseUnavailable } from "../errors";
import { addressGroup } from "../lib/ip";

/** A `rate_limited` row per (scope, account, address) at most this often, so a flood cannot flood the audit table. */
const AUDIT_EVERY_MS = 60_000;
/** Past this many remembered keys the memory starts over (at worst a key is audited once more). */
const MAX_REMEMBERED = 10_000;

export interface RateLimitHit {
  /** `ip`: the per-address bucket; `account`: a delayed account; `second_factor`: an account's delayed second step. */
  scope: "ip" | "account" | "second_factor";
  /** The delayed account (its throttle key), for the account scope. */
  account?: string;
  client: ClientInfo;
  /** The account concerned when it exists, so its owner sees the attack in /auth/events. */
  userId?: string | null;
  detail?: Record<string, unknown>;
}

/** Where a hit is recorded: the audit log, passed in by app.ts (limits sit below the modules). */
export type RecordRateLimited = (event: ClientInfo & { event: "rate_limited"; userId: string | null; detail: Record<string, unknown> }) => Promise<void>;

/**
 * Records limit hits in the audit log, each (scope, account, address) at most once a minute. The address is
 * counted as the limiter counts it (an IPv6 /64), or a flood from one /64 would write a row per address.
 */
export function createRateLimitAudit(record: RecordRateLimited) {
  const lastAudited = new Map<string, number>();
  /** Never rejects: a refusal is answered whether or not its audit row could be written (a failure is logged). */
  return async (hit: RateLimitHit): Promise<void> => {
    const now = Date.now();
    const key = `${hit.scope}|${hit.account ?? ""}|${hit.client.ip === null ? "-" : addressGroup(hit.client.ip)}`;
    if (now - (lastAudited.get(key) ?? 0) < AUDIT_EVERY_MS) return;
    if (lastAudited.size >= MAX_REMEMBERED) lastAudited.clear();
    lastAudited.set(key, now);
    try {
      await record({ event: "rate_limited", userId: hit.userId ?? null, ...hit.client, detail: { scope: hit.scope, ...hit.detail } });
    } catch (error) {
      // The driver's reason only: drizzle's message lists the row's values.
      console.error(JSON.stringify({ level: "error", event: "audit_failed", audit_event: "rate_limited", error: databaseUnavailable(error) ?? (error as Error).name }));
    }
  };
}

export type RateLimitAudit = ReturnType<typeof createRateLimitAudit>;
