import { randomToken, safeEqual, sha256Hex } from "../../lib/crypto";

/** A handoff code lives this long: one redirect between two sign-in hosts. */
export const HANDOFF_TTL_MS = 60_000;
const MAX_PENDING = 10_000;

interface Pending {
  sessionId: string;
  /** The sign-in origin the code may be redeemed on. */
  to: string;
  /** Binds the code to the browser that asked for it (an HMAC of that host's pre-session cookie). */
  state: string;
  expiresAt: number;
}

/**
 * One-time codes that carry a browser session from one sign-in host to another (example.com to example.net):
 * single use, one minute, only their SHA-256 kept, bound to the session they came from, to the sign-in origin
 * they were issued for and to the browser that started the handoff (so a code cannot sign someone else's
 * browser in: login CSRF). In memory: a restart only sends the browser through the sign-in page again.
 */
export function createHandoffCodes(now: () => number = Date.now) {
  const pending = new Map<string, Pending>();

  function sweep(at: number): void {
    for (const [hash, entry] of pending) if (entry.expiresAt <= at) pending.delete(hash);
  }

  return {
    issue(sessionId: string, to: string, state: string): string {
      const at = now();
      if (pending.size >= MAX_PENDING) sweep(at);
      if (pending.size >= MAX_PENDING) throw new Error("too many pending handoffs");
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
  };
}

export type HandoffCodes = ReturnType<typeof createHandoffCodes>;
