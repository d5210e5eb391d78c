import { and, eq, inArray, isNotNull } from "drizzle-orm";
import { SignJWT } from "jose";
import type { Db } from "../../db/client";
import { oidcClients, oidcGrants, sessions } from "../../db/tables";
import { randomToken } from "../../lib/crypto";
import type { Mailer } from "../../mail";
import type { KeyRing } from "../../tokens/keys";
import { ASYMMETRIC_ALGS, type JwtAlg } from "../../lib/jwt-algs";

/** The outbox kind of a logout notice (its rows are retried and dropped like mail: MAIL_RETRY_INTERVAL, MAIL_MAX_ATTEMPTS). */
export const LOGOUT_NOTICE_KIND = "backchannel_logout";
/** OpenID Connect Back-Channel Logout 1.0 §2.4: the event a logout token carries. */
const LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout";
/** A logout token is signed at each attempt and lives this long (§2.4 asks for a short life: a delivery's time). */
const LOGOUT_TOKEN_TTL = 120;
/** A receiving app that neither answers nor refuses within this long counts as down: the notice is retried. */
const DELIVERY_TIMEOUT_MS = 10_000;

export interface LogoutNotice {
  uri: string;
  client_id: string;
  sub: string;
  sid: string;
  /** The client's own ID token algorithm (--id-token-alg), or null for the instance's (absent in older notices). */
  alg?: string | null;
}

/** Back-channel logout: the clients a sign-out ends are told, through the outbox. */
export interface LogoutNotices {
  /**
   * Runs `action`, which may end sessions of `userIds`, then queues a logout token for every grant of theirs to
   * a client with a back-channel logout URI that it ended: the grant's own session, or the browser session the
   * user signed in to the client with, was live before and is gone after. Comparing before and after covers
   * every way a session ends (sign-out, sign out everywhere, disable, delete, consent withdrawn) with one rule.
   */
  around<T>(userIds: readonly string[], action: () => Promise<T>): Promise<T>;
}

/** No client is told (services built without a server's outbox, in tests). */
export const NO_NOTICES: LogoutNotices = { around: (_userIds, action) => action() };

/**
 * Logout tokens for the notices queued by `createLogoutNotices`: registered with the server's outbox, which
 * signs one per attempt with the algorithm of the client's ID tokens (an app that verifies only RS256 gets RS256)
 * and POSTs it (§2.5).
 */
export function deliverLogoutNotices(outbox: Mailer["outbox"], deps: { keyRing: KeyRing; issuer: string; alg: JwtAlg }): void {
  const { keyRing, issuer, alg } = deps;
  outbox.handle(LOGOUT_NOTICE_KIND, async (payload) => {
    const notice = payload as LogoutNotice;
    // A stored algorithm that is none Latchkey signs with fails the attempt rather than signs with another.
    const clientAlg = notice.alg == null ? alg : ASYMMETRIC_ALGS.find((known) => known === notice.alg);
    if (!clientAlg) throw new Error(`${notice.client_id}'s id_token_alg ${notice.alg} is not one Latchkey signs with`);
    const key = await keyRing.signingKey(clientAlg);
    const now = Math.floor(Date.now() / 1000);
    // §2.4: iss, aud, iat, exp, jti, events, sub and sid; never a nonce; typ logout+jwt (§2.4 and RFC 8725 §3.11).
    const token = await new SignJWT({ sid: notice.sid, events: { [LOGOUT_EVENT]: {} } })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "logout+jwt" })
      .setIssuer(issuer)
      .setSubject(notice.sub)
      .setAudience(notice.client_id)
      .setIssuedAt(now)
      .setExpirationTime(now + LOGOUT_TOKEN_TTL)
      .setJti(randomToken(16))
      .sign(key.key);
    // §2.5: a form POST; the app answers 200 (or 204) once it has logged the session out. A redirect is not followed.
    const response = await fetch(notice.uri, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ logout_token: token }),
      redirect: "manual",
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await response.body?.cancel();
    if (response.status !== 200 && response.status !== 204) throw new Error(`${notice.uri} answered ${response.status}`);
  });
}

/** The logout notices of `db`'s clients, handed to `queue` (the server's outbox, or the CLI's insert into it). */
export function createLogoutNotices(db: Db, queue: (userId: string, notice: LogoutNotice) => Promise<void>): LogoutNotices {
  /** The grants of `userIds` to clients that take notices. */
  const grantsOf = (userIds: readonly string[]) =>
    db
      .select({ sid: oidcGrants.sessionId, sub: sessions.userId, clientId: oidcGrants.clientId, uri: oidcClients.backchannelLogoutUri, alg: oidcClients.idTokenAlg, browserSessionId: oidcGrants.browserSessionId })
      .from(oidcGrants)
      .innerJoin(sessions, eq(sessions.id, oidcGrants.sessionId))
      .innerJoin(oidcClients, eq(oidcClients.clientId, oidcGrants.clientId))
      .where(and(inArray(sessions.userId, [...userIds]), isNotNull(oidcClients.backchannelLogoutUri)));
  /** Which of `ids` are live sessions. */
  const liveOf = async (ids: string[]) => new Set((await db.select({ id: sessions.id }).from(sessions).where(inArray(sessions.id, ids))).map((row) => row.id));

  return {
    async around(userIds, action) {
      const before = userIds.length ? await grantsOf(userIds) : [];
      if (before.length === 0) return action();
      const ids = [...new Set(before.flatMap((grant) => [grant.sid, grant.browserSessionId ?? grant.sid]))];
      const liveBefore = await liveOf(ids);
      const result = await action();
      const liveAfter = await liveOf(ids);
      const ended = (id: string | null) => id !== null && liveBefore.has(id) && !liveAfter.has(id);
      for (const grant of before)
        if (ended(grant.sid) || ended(grant.browserSessionId))
          await queue(grant.sub, { uri: grant.uri!, client_id: grant.clientId, sub: grant.sub, sid: grant.sid, alg: grant.alg });
      return result;
    },
  };
}
