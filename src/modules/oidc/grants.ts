/**
 * What a client's grant issues and how its tokens are looked up again: the authorization_code exchange, refresh,
 * client_credentials, and the lookups behind userinfo, revocation and introspection.
 */
import { and, eq, isNull } from "drizzle-orm";
import { SignJWT } from "jose";
import { changes, row, transaction } from "../../db/atomic";
import type { Db } from "../../db/client";
import { oidcCodes, oidcGrants, refreshTokens, sessions } from "../../db/tables";
import { OAuthError } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import { madeWithPasskey, PHISHING_RESISTANT_ACR } from "../../lib/amr";
import { sha256Hex } from "../../lib/crypto";
import type { ClientAccessTokens } from "../../tokens/access";
import type { KeyRing } from "../../tokens/keys";
import type { ClientAccessClaims } from "../../tokens/verifier";
import { ASYMMETRIC_ALGS } from "../../lib/jwt-algs";
import type { AuditLog } from "../audit/service";
import { AccountChanged } from "../sessions/account-check";
import { RefreshTokenReused, type SessionService } from "../sessions/service";
import { codeRefusal, invalidGrant, refreshFailure } from "./grant-checks";
import type { UserIdentity } from "../users/service";
import { claimsFor, SCOPES } from "./claims";
import { userMayUse, type OidcClient } from "./clients";
import type { OidcSettings } from "./service";

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token?: string;
  id_token?: string;
  scope: string;
}

/** What a grant was given, as its tokens say it. */
interface GrantTokens {
  client: OidcClient;
  sessionId: string;
  scope: string;
  authTime: number;
  amr: string[];
  /** The refresh token, when the grant gets one (offline_access, or a client registered with `refresh`). */
  refreshToken: string | undefined;
  audience: string[];
  nonce?: string | null;
}

/** Scopes a user grants: a client_credentials token (no user) cannot carry them. */
const USER_SCOPES: ReadonlySet<string> = new Set(SCOPES);
/** RFC 6749 §3.3 scope-token: printable ASCII without space, quote or backslash. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/;

/** Whether the grant gets a refresh token (OpenID Connect Core §11: offline_access, or the client always asks). */
const getsRefreshToken = (client: OidcClient, scope: string) => client.refresh || scope.split(" ").includes("offline_access");

/**
 * The scope of a refresh: the granted one, or a subset of it (RFC 6749 §6: never wider). Throws invalid_scope for
 * anything not granted.
 */
export function narrowedScope(granted: string, requested: string | undefined): string {
  if (requested === undefined) return granted;
  const grantedSet = new Set(granted.split(" "));
  const asked = requested.split(" ").filter(Boolean);
  const wider = asked.filter((item) => !grantedSet.has(item));
  if (wider.length) throw new OAuthError("invalid_scope", `Not granted, so not available by refresh: ${wider.join(" ")}.`);
  if (!asked.includes("openid")) throw new OAuthError("invalid_scope", "The scope must include openid.");
  return granted.split(" ").filter((item) => asked.includes(item)).join(" ");
}

/** The scope of a client_credentials token: scope-tokens of the client's own API, none of a user's. */
export function machineScope(requested: string | undefined): string {
  const asked = [...new Set((requested ?? "").split(" ").filter(Boolean))];
  const bad = asked.filter((item) => !SCOPE_TOKEN.test(item) || USER_SCOPES.has(item));
  if (bad.length || asked.length > 32) throw new OAuthError("invalid_scope", "A machine token carries no user scope (openid, profile, email, groups, offline_access), and at most 32 scope tokens.");
  return asked.join(" ");
}

/**
 * RFC 8707 resource indicator: the token's audience when given (an absolute URI without fragment), else the
 * client. Only one: a token for several resource servers would let each replay it at the others.
 */
export function audienceOf(clientId: string, resource: string | undefined): string[] {
  if (resource === undefined) return [clientId];
  let url: URL | undefined;
  try {
    url = new URL(resource);
  } catch {
    url = undefined;
  }
  if (!url || resource.includes("#") || resource.length > 2000) throw new OAuthError("invalid_target", "resource must be an absolute URI without a fragment.");
  return [resource];
}

/** The grants of the OpenID Connect clients: what each grant type issues, and what a presented token is. */
export function createOidcGrants(deps: {
  db: Db;
  sessions: SessionService;
  clientAccess: ClientAccessTokens;
  keyRing: KeyRing;
  audit: AuditLog;
  settings: OidcSettings;
}) {
  const { db, sessions: sessionService, clientAccess, keyRing, audit, settings } = deps;

  async function idToken(user: UserIdentity, client: OidcClient, grant: GrantTokens) {
    // Per client (--id-token-alg): an EdDSA or ES256 instance still serves apps that verify only RS256. A stored
    // value that is none of them (never the HS256 secret) refuses rather than signs with something else.
    const alg = client.idTokenAlg === null ? settings.idTokenAlg : ASYMMETRIC_ALGS.find((known) => known === client.idTokenAlg);
    if (!alg) throw new OAuthError("unauthorized_client", "This client's id_token_alg is not an algorithm Latchkey signs ID tokens with.");
    const key = await keyRing.signingKey(alg);
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      ...claimsFor(user, grant.scope),
      auth_time: Math.floor(grant.authTime / 1000),
      ...(grant.amr.length ? { amr: grant.amr } : {}),
      // OpenID EAP ACR values §2: a passkey sign-in is phishing-resistant.
      ...(madeWithPasskey(grant.amr) ? { acr: PHISHING_RESISTANT_ACR } : {}),
      ...(grant.nonce ? { nonce: grant.nonce } : {}),
      sid: grant.sessionId,
    })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
      .setIssuer(settings.issuer)
      .setSubject(user.userId)
      .setAudience(client.clientId)
      .setIssuedAt(now)
      .setExpirationTime(now + settings.tokenTtl)
      .sign(key.key);
  }

  async function tokensFor(grant: GrantTokens): Promise<TokenResponse> {
    const principal = await sessionService.principal(grant.sessionId);
    if (!principal) throw invalidGrant("The grant has ended.");
    const access = await clientAccess.issue({
      clientId: grant.client.clientId,
      audience: grant.audience,
      scope: grant.scope,
      user: { userId: principal.userId, sessionId: grant.sessionId, authTime: grant.authTime, amr: grant.amr },
      notAfter: principal.sessionExpiresAt,
    });
    return {
      access_token: access.token,
      token_type: "Bearer",
      expires_in: access.expiresIn,
      ...(grant.refreshToken === undefined ? {} : { refresh_token: grant.refreshToken }),
      id_token: await idToken(principal, grant.client, grant),
      scope: grant.scope,
    };
  }

  /**
   * A verified client access token with what it grants now: a machine token (no user), or a user's token whose
   * grant is live; undefined when the grant ended (revoked, consent withdrawn, user disabled, client deleted).
   */
  async function accessGrant(claims: ClientAccessClaims) {
    if (claims.sid === undefined) return { kind: "machine" as const, claims };
    const owner = await sessionService.principal(claims.sid);
    if (!owner || owner.clientId !== claims.client_id || owner.userId !== claims.sub) return undefined;
    return { kind: "access" as const, claims, owner };
  }

  /** The grant a refresh token belongs to (spent ones too: reuse detection is the rotation's), or undefined. */
  async function grantOfRefreshToken(refreshToken: string) {
    const [grant] = await db
      .select({ sessionId: oidcGrants.sessionId, clientId: oidcGrants.clientId, scope: oidcGrants.scope, authTime: oidcGrants.authTime, amr: oidcGrants.amr, spentAt: refreshTokens.spentAt, expiresAt: sessions.expiresAt, userId: sessions.userId })
      .from(refreshTokens)
      .innerJoin(oidcGrants, eq(oidcGrants.sessionId, refreshTokens.sessionId))
      .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
      .where(eq(refreshTokens.tokenHash, sha256Hex(refreshToken)));
    return grant;
  }

  return {
    /**
     * authorization_code grant. The code works once (marked used before anything is issued); presenting it again
     * revokes the session it started (RFC 6749 §4.1.2, RFC 9700 §4.5). A code that fails a check is spent too.
     * Marking the code, opening its session and recording that session on the code are one transaction: a replay
     * (on this instance or another) comes in serial order before it (and is the one exchange) or after it (and
     * finds the session to revoke).
     */
    async exchangeCode(client: OidcClient, params: { code: string; redirectUri: string | undefined; codeVerifier: string | undefined; resource: string | undefined }, from: ClientInfo) {
      const audience = audienceOf(client.clientId, params.resource);
      const now = Date.now();
      const hash = sha256Hex(params.code);
      const outcome = await transaction(db, function* (tx) {
        const code = yield* row(tx.select().from(oidcCodes).where(eq(oidcCodes.codeHash, hash)));
        if (!code) return { kind: "refused" as const, reason: "The code is unknown or expired." };
        if (code.usedAt !== null) return { kind: "replayed" as const, code };
        yield* changes(tx.update(oidcCodes).set({ usedAt: new Date(now) }).where(and(eq(oidcCodes.codeHash, hash), isNull(oidcCodes.usedAt))));
        const reason = codeRefusal(code, { clientId: client.clientId, redirectUri: params.redirectUri, codeVerifier: params.codeVerifier }, now);
        if (reason) return { kind: "refused" as const, reason };
        let session;
        try {
          session = yield* sessionService.opening(tx, { userId: code.userId }, from, { clientId: client.clientId, authTime: code.authTime.getTime(), amr: code.amr });
        } catch (error) {
          if (error instanceof AccountChanged) return { kind: "refused" as const, reason: "The account behind this code was disabled or deleted." };
          throw error;
        }
        yield* changes(tx.insert(oidcGrants).values({ sessionId: session.sessionId, clientId: client.clientId, scope: code.scope, authTime: code.authTime, amr: code.amr, browserSessionId: code.browserSessionId }));
        yield* changes(tx.update(oidcCodes).set({ sessionId: session.sessionId }).where(eq(oidcCodes.codeHash, hash)));
        return { kind: "issued" as const, code, session };
      });
      if (outcome.kind === "refused") throw invalidGrant(outcome.reason);
      const { code } = outcome;
      if (outcome.kind === "replayed") {
        // A code refused by a check opened no session. (Mutation testing: revoking a null session deletes no row, so
        // `if (true)` here is an equivalent mutant; the guard keeps the null out of revoke's string parameter.)
        if (code.sessionId) await sessionService.revoke(code.sessionId);
        await audit.record({ event: "oidc_code_replayed", userId: code.userId, ...from, detail: { client_id: code.clientId, presented_by: client.clientId, session_revoked: code.sessionId !== null } });
        throw invalidGrant("The code was already used; the tokens issued from it are revoked.");
      }
      const { session } = outcome;
      await audit.record({ event: "oidc_code_exchanged", userId: code.userId, ...from, detail: { client_id: client.clientId, session_id: session.sessionId, scope: code.scope } });
      return tokensFor({
        client,
        sessionId: session.sessionId,
        scope: code.scope,
        authTime: code.authTime.getTime(),
        amr: code.amr,
        refreshToken: getsRefreshToken(client, code.scope) ? session.refreshToken : undefined,
        audience,
        nonce: code.nonce,
      });
    },

    /**
     * refresh_token grant: only the client the grant belongs to may use the token (checked before it is spent);
     * rotation and reuse detection are the sessions' (a reused token ends the grant). Refresh re-checks what
     * authorize checked: a user disabled or no longer allowed to use the client ends the grant (invalid_grant).
     */
    async refresh(client: OidcClient, params: { refreshToken: string; scope: string | undefined; resource: string | undefined }, from: ClientInfo) {
      const grant = await grantOfRefreshToken(params.refreshToken);
      if (!grant || grant.clientId !== client.clientId) throw invalidGrant("The refresh token is unknown, expired, revoked or another client's.");
      const scope = narrowedScope(grant.scope, params.scope);
      const audience = audienceOf(client.clientId, params.resource);
      const owner = grant.spentAt === null ? await sessionService.principal(grant.sessionId) : undefined;
      if (owner && !userMayUse(client, owner)) {
        await sessionService.revoke(grant.sessionId);
        await audit.record({ event: "oidc_grant_refused", userId: owner.userId, ...from, detail: { client_id: client.clientId, session_id: grant.sessionId, reason: "not_allowed" } });
        throw invalidGrant("This account is no longer allowed to use this application; the grant has ended.");
      }
      try {
        const rotated = await sessionService.rotate(params.refreshToken, client.clientId);
        return await tokensFor({ client, sessionId: rotated.principal.sessionId, scope, authTime: grant.authTime.getTime(), amr: grant.amr, refreshToken: rotated.refreshToken, audience });
      } catch (error) {
        if (error instanceof RefreshTokenReused) await audit.record({ event: "refresh_reuse_detected", userId: error.userId, ...from, detail: { session_id: error.sessionId, client_id: client.clientId } });
        throw refreshFailure(error);
      }
    },

    /** client_credentials grant (RFC 6749 §4.4), for machine clients only: a token for the client itself, no user. */
    async clientCredentials(client: OidcClient, params: { scope: string | undefined; resource: string | undefined }): Promise<TokenResponse> {
      if (!client.machine) throw new OAuthError("unauthorized_client", "client_credentials is for machine clients (latchkey oidc client add --machine).");
      const scope = machineScope(params.scope);
      const access = await clientAccess.issue({ clientId: client.clientId, audience: audienceOf(client.clientId, params.resource), scope });
      return { access_token: access.token, token_type: "Bearer", expires_in: access.expiresIn, scope };
    },

    /**
     * What a token is, for revocation and introspection: an access token of ours (signature, type, expiry checked)
     * with the grant it belongs to, or a refresh token's grant; undefined for anything else.
     */
    async lookUp(token: string) {
      const access = clientAccess.verify(token);
      if (access) return accessGrant(access);
      const grant = await grantOfRefreshToken(token);
      if (!grant) return undefined;
      return { kind: "refresh" as const, grant, live: grant.spentAt === null && grant.expiresAt.getTime() > Date.now() };
    },

    /** Ends a grant (RFC 7009: revoking either of its tokens revokes both). */
    async revokeGrant(sessionId: string, userId: string, clientId: string, kind: "access" | "refresh", from: ClientInfo): Promise<void> {
      await sessionService.revoke(sessionId);
      await audit.record({ event: "oidc_token_revoked", userId, ...from, detail: { client_id: clientId, session_id: sessionId, token: kind } });
    },

    /** The user behind a client access token at userinfo: undefined unless the token is valid and its grant live. */
    async accessOwner(token: string) {
      const claims = clientAccess.verify(token);
      const found = claims && (await accessGrant(claims));
      return found?.kind === "access" ? found : undefined;
    },

  };
}

export type OidcGrants = ReturnType<typeof createOidcGrants>;
