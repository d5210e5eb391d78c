import { randomToken, safeEqual, sha256Hex } from "../../lib/crypto";
import { addressGroup } from "../../lib/ip";
import { createTokenBuckets, type RateDecision } from "../../limits/token-bucket";

/** A handoff code lives this long: one redirect between two sign-in hosts. */
export const HANDOFF_TTL_MS = 60_000;
/** At most this many codes wait at once; past it, the oldest goes (a flood costs the flooder, not the others). */
const MAX_PENDING = 10_000;
/** GET /handoff/start: codes per browser session, and requests per address (IPv6 per /64), each per minute. */
export const HANDOFFS_PER_SESSION = 20;
export const HANDOFFS_PER_ADDRESS = 100;

interface Pending {
  sessionId: string;
  /** The sign-in origin the code may be redeemed on. */
  to: string;
  /** Binds the code to the browser that asked for it (an HMAC of that host's pre-session cookie). */
  state: string;
  expiresAt: number;
}

/** Drops a map's expired entries from its front: codes live HANDOFF_TTL_MS each, so insertion order is expiry order. */
function dropExpired<V>(map: Map<string, V>, expiresAt: (value: V) => number, at: number): void {
  for (const [hash, value] of map) {
    if (expiresAt(value) > at) return;
    map.delete(hash);
  }
}

/**
 * One-time codes that carry a browser session from one sign-in host to another (example.com to example.net):
 * single use, one minute, only their SHA-256 kept, bound to the session they came from, to the sign-in origin
 * they were issued for and to the browser that started the handoff (so a code cannot sign someone else's
 * browser in: login CSRF). In memory: a restart only sends the browser through the sign-in page again.
 *
 * Issuing never fails: at `maxPending` live codes the oldest is evicted, and remembered (its hash, until it would
 * have expired) so that its browser is told to try again rather than to type its password.
 */
export function createHandoffCodes(now: () => number = Date.now, maxPending = MAX_PENDING) {
  const pending = new Map<string, Pending>();
  /** Hashes of live codes evicted unspent, with the time each would have expired. */
  const evicted = new Map<string, number>();

  return {
    issue(sessionId: string, to: string, state: string): string {
      const at = now();
      dropExpired(pending, (entry) => entry.expiresAt, at);
      dropExpired(evicted, (expiresAt) => expiresAt, at);
      for (const [hash, entry] of pending) {
        if (pending.size < maxPending) break;
        pending.delete(hash);
        evicted.set(hash, entry.expiresAt);
      }
      for (const hash of evicted.keys()) {
        if (evicted.size <= maxPending) break;
        evicted.delete(hash);
      }
      const code = randomToken(32);
      pending.set(sha256Hex(code), { sessionId, to, state, expiresAt: at + HANDOFF_TTL_MS });
      return code;
    },

    /** Spends a code: the session it carries, if it is live, unspent, for `to` and for this browser's `state`. */
    redeem(code: string, to: string, state: string): string | undefined {
      const hash = sha256Hex(code);
      const entry = pending.get(hash);
      if (!entry) return undefined;
      pending.delete(hash);
      if (entry.expiresAt <= now() || entry.to !== to || !safeEqual(entry.state, state)) return undefined;
      return entry.sessionId;
    },

    /** Whether a code that did not redeem was evicted unspent by a full store (once: the retry asks for a new one). */
    evicted(code: string): boolean {
      return evicted.delete(sha256Hex(code));
    },
  };
}

export type HandoffCodes = ReturnType<typeof createHandoffCodes>;

/**
 * The limits of GET /handoff/start, so that no one fills the store with codes: per address before the session is
 * looked up, then per browser session (the session a handoff family started from). In memory, like the per-IP
 * bucket of limits/: flood control, always on (RATE_LIMIT=off switches off brute-force limits, not this).
 */
export function createHandoffLimits() {
  const perAddress = createTokenBuckets(HANDOFFS_PER_ADDRESS, 60_000);
  const perSession = createTokenBuckets(HANDOFFS_PER_SESSION, 60_000);
  return {
    // Requests without an address share one bucket. (Mutation testing: any key no address group can be will do, so
    // "unknown" → "" is an equivalent mutant.)
    address: (ip: string | null): RateDecision => perAddress.take(ip === null ? "unknown" : addressGroup(ip)),
    session: (rootSessionId: string): RateDecision => perSession.take(rootSessionId),
  };
}
