import type { UserIdentity } from "../users/service";

/*
 * The sessions module's types: what a session lookup answers, and the settings the service runs with.
 */

/** Who a live session belongs to: everything a protected route needs, from one indexed lookup. */
export interface SessionPrincipal extends UserIdentity {
  sessionId: string;
  sessionExpiresAt: number;
  /** The OpenID Connect client the session is a grant of: its tokens are that client's, never Latchkey's own. */
  clientId: string | null;
  /** How the session's user last authenticated (RFC 8176 amr): forward auth's `require = "passkey"` reads `hwk`. */
  amr: string[];
}

/** The last real authentication behind a session: when (unix ms) and how (RFC 8176 amr). */
export interface Authentication {
  authTime: number;
  amr: string[];
}

export interface SessionSettings {
  refreshTokenTtl: number;
  refreshReuseInterval: number;
  refreshRotationKey: Uint8Array;
  /**
   * Header mode: clients never call /refresh, they copy the sliding `Token`; so activity itself must move the
   * session's end (to now + refreshTokenTtl), or an active client would be signed out after refreshTokenTtl.
   */
  slideOnActivity?: boolean;
  /** Browser sessions (the session cookie) end after this long without activity (SESSION_IDLE_TTL, seconds). */
  browserIdleTtl?: number;
  /** Told how many sessions each revocation ended (/metrics). */
  onRevoked?: (sessions: number) => void;
}

/** A browser session found by its cookie: the principal, plus the session a handoff opened it from. */
export interface BrowserSessionPrincipal extends SessionPrincipal {
  /** This session, or for one opened by a cross-domain handoff the session it came from: logout ends that one. */
  rootSessionId: string;
}
