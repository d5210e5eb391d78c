/**
 * The token endpoint's authorization_code exchange and refresh (oidc/grants.ts, oidc/grant-checks.ts) without HTTP:
 * the pure checks of a presented code and of a failed refresh, then createOidcGrants on an in-memory database with
 * the real session service, codes stored as issueCode stores them, and the audit trail recorded. Fast enough for
 * mutation testing (the `oidc` group); test/unit/oidc.test.ts and test/e2e/oidc*.test.ts drive the same code
 * through openid-client and the binary.
 */
import { afterEach, beforeEach, describe, expect, setSystemTime, test } from "bun:test";
import { createHash } from "node:crypto";
import { decodeJwt } from "jose";
import { migrate, openDatabase, type Db } from "../../src/db/client";
import { oidcClients, oidcCodes, users } from "../../src/db/schema";
import { OAuthError } from "../../src/errors";
import { sha256Hex } from "../../src/lib/crypto";
import type { AuditLog } from "../../src/modules/audit/service";
import type { OidcClient } from "../../src/modules/oidc/clients";
import { codeRefusal, refreshFailure } from "../../src/modules/oidc/grant-checks";
import { createOidcGrants } from "../../src/modules/oidc/grants";
import { createSessionService, RefreshTokenReused } from "../../src/modules/sessions/service";
import { createClientAccessTokens } from "../../src/tokens/access";
import { createKeyRing } from "../../src/tokens/keys";

const T0 = Date.parse("2026-03-01T10:00:00Z");
const VERIFIER = "dBjftJeZ4CVP-mJ92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE = createHash("sha256").update(VERIFIER).digest("base64url");
const CALLBACK = "https://rp.example/callback";

describe("codeRefusal", () => {
  const code = { expiresAt: new Date(T0 + 60_000), clientId: "wiki", redirectUri: CALLBACK, codeChallenge: null as string | null };
  const presented = { clientId: "wiki", redirectUri: CALLBACK as string | undefined, codeVerifier: undefined as string | undefined };

  test("a code is good up to the millisecond before its expiry, and dead at it", () => {
    expect(codeRefusal(code, presented, T0 + 59_999)).toBeUndefined();
    expect(codeRefusal(code, presented, T0 + 60_000)).toBe("The code has expired.");
    expect(codeRefusal(code, presented, T0 + 60_001)).toBe("The code has expired.");
  });

  test("bound to the client it was issued to", () => {
    expect(codeRefusal(code, { ...presented, clientId: "gitea" }, T0)).toBe("The code was issued to another client.");
  });

  test("redirect_uri is required and must be the authorization request's, exactly", () => {
    for (const redirectUri of [undefined, "", `${CALLBACK}/`, `${CALLBACK}?x=1`, CALLBACK.toUpperCase()])
      expect(codeRefusal(code, { ...presented, redirectUri }, T0)).toBe("redirect_uri does not match the authorization request.");
  });

  test("PKCE: the matching verifier passes; a missing, empty or wrong one is refused", () => {
    const withPkce = { ...code, codeChallenge: CHALLENGE };
    expect(codeRefusal(withPkce, { ...presented, codeVerifier: VERIFIER }, T0)).toBeUndefined();
    expect(codeRefusal(withPkce, presented, T0)).toBe("code_verifier is required: the request used PKCE.");
    expect(codeRefusal(withPkce, { ...presented, codeVerifier: "" }, T0)).toBe("code_verifier is required: the request used PKCE.");
    expect(codeRefusal(withPkce, { ...presented, codeVerifier: `${VERIFIER}x` }, T0)).toBe("code_verifier does not match the code_challenge.");
    // The challenge itself is not the verifier (plain is not supported).
    expect(codeRefusal(withPkce, { ...presented, codeVerifier: CHALLENGE }, T0)).toBe("code_verifier does not match the code_challenge.");
  });

  test("a code_verifier for a code issued without PKCE is refused (a downgrade), an empty one is as none", () => {
    expect(codeRefusal(code, { ...presented, codeVerifier: VERIFIER }, T0)).toBe("code_verifier given, but the request had no code_challenge.");
    expect(codeRefusal(code, { ...presented, codeVerifier: "" }, T0)).toBeUndefined();
  });

  test("the checks run in order: expiry first, then client, then redirect_uri, then PKCE", () => {
    const everythingWrong = { clientId: "gitea", redirectUri: "https://evil.example/", codeVerifier: VERIFIER };
    expect(codeRefusal(code, everythingWrong, T0 + 60_000)).toBe("The code has expired.");
    expect(codeRefusal(code, everythingWrong, T0)).toBe("The code was issued to another client.");
    expect(codeRefusal(code, { ...everythingWrong, clientId: "wiki" }, T0)).toBe("redirect_uri does not match the authorization request.");
  });
});

describe("refreshFailure", () => {
  test("a reused token: invalid_grant saying the grant was revoked", () => {
    const answer = refreshFailure(new RefreshTokenReused("u1", "s1"));
    expect(answer).toBeInstanceOf(OAuthError);
    expect(answer.toBody()).toEqual({ error: "invalid_grant", error_description: "This refresh token was already used; the grant has been revoked.", message: "This refresh token was already used; the grant has been revoked." });
    expect(answer.status).toBe(400);
  });

  test("an OAuth error is answered as it is", () => {
    const scope = new OAuthError("invalid_scope", "narrower");
    expect(refreshFailure(scope)).toBe(scope);
  });

  test("anything else (the sessions' invalid_refresh_token, a thrown Error) is invalid_grant", () => {
    for (const error of [new Error("boom"), undefined, "text"]) {
      const answer = refreshFailure(error);
      expect(answer.code).toBe("invalid_grant");
      expect(answer.message).toBe("The refresh token is unknown, expired or revoked.");
    }
  });
});

// createOidcGrants in process: the storage around the checks.

const from = { ip: "192.0.2.7", userAgent: "rp-test" };
type Event = Parameters<AuditLog["record"]>[0];
let db: Db;
let events: Event[];
let grantDeps: Parameters<typeof createOidcGrants>[0];
let grants: ReturnType<typeof createOidcGrants>;
let sessions: ReturnType<typeof createSessionService>;

afterEach(() => setSystemTime());

beforeEach(() => {
  setSystemTime(new Date(T0));
  db = openDatabase(":memory:");
  migrate(db);
  db.insert(users).values([
    { id: "u1", username: "alice", passwordHash: "unused", roles: ["family"] },
    { id: "u2", username: "bob", passwordHash: "unused" },
  ]).run();
  db.insert(oidcClients).values([
    { clientId: "wiki", redirectUris: [CALLBACK] },
    { clientId: "gitea", redirectUris: [CALLBACK], refresh: true },
    { clientId: "family", redirectUris: [CALLBACK], refresh: true, allowedRoles: ["family"] },
  ]).run();
  sessions = createSessionService(db, { refreshTokenTtl: 3600, refreshReuseInterval: 0, refreshRotationKey: new Uint8Array(32).fill(3) });
  const keyRing = createKeyRing(db, { hs256Secret: new Uint8Array(32).fill(1), algs: ["HS256", "EdDSA"], maxTokenTtl: 3600 });
  events = [];
  const audit = { record: async (event: Event) => void events.push(event) } as AuditLog;
  grantDeps = {
    db,
    sessions,
    clientAccess: createClientAccessTokens(keyRing, "EdDSA", "http://op.test", 600),
    keyRing,
    audit,
    settings: { issuer: "http://op.test", idTokenAlg: "EdDSA", tokenTtl: 600 },
  };
  grants = createOidcGrants(grantDeps);
});

const client = (clientId: string) => db.select().from(oidcClients).all().find((found) => found.clientId === clientId) as OidcClient;

/** Stores a code as issueCode does (its SHA-256), issued now to `clientId` for u1, and returns it. */
function storeCode(values: Partial<typeof oidcCodes.$inferInsert> = {}): string {
  const code = crypto.randomUUID();
  db.insert(oidcCodes)
    .values({ codeHash: sha256Hex(code), clientId: "wiki", userId: "u1", browserSessionId: "browser-1", redirectUri: CALLBACK, scope: "openid profile", authTime: new Date(T0 - 5000), amr: ["pwd", "otp"], nonce: "n-1", expiresAt: new Date(T0 + 60_000), ...values })
    .run();
  return code;
}
const codeRow = (code: string) => db.select().from(oidcCodes).all().find((found) => found.codeHash === sha256Hex(code))!;
const exchange = (clientId: string, code: string, params: { redirectUri?: string; codeVerifier?: string; resource?: string } = {}) =>
  grants.exchangeCode(client(clientId), { code, redirectUri: "redirectUri" in params ? params.redirectUri : CALLBACK, codeVerifier: params.codeVerifier, resource: params.resource }, from);
/** The OAuth error a call throws: [code, description]. */
const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => ["issued"],
    (error: unknown) => (error instanceof OAuthError ? [error.code, error.message] : [String(error)]),
  );
const grantRows = () => db.$client.query("SELECT session_id, client_id, scope, auth_time, amr, browser_session_id FROM oidc_grants").all() as Record<string, unknown>[];

describe("exchangeCode", () => {
  test("a good code: tokens for the grant, the grant and its session recorded, the code spent and pointing at the session, audited", async () => {
    const code = storeCode({ codeChallenge: CHALLENGE });
    const tokens = await exchange("wiki", code, { codeVerifier: VERIFIER });
    expect(tokens.token_type).toBe("Bearer");
    expect(tokens.scope).toBe("openid profile");
    // wiki is not registered with refresh and did not ask for offline_access.
    expect(tokens.refresh_token).toBeUndefined();
    const access = decodeJwt(tokens.access_token);
    expect(access).toMatchObject({ sub: "u1", client_id: "wiki", aud: "wiki", scope: "openid profile", auth_time: (T0 - 5000) / 1000, amr: ["pwd", "otp"] });
    const id = decodeJwt(tokens.id_token!);
    expect(id).toMatchObject({ sub: "u1", aud: "wiki", nonce: "n-1", auth_time: (T0 - 5000) / 1000, amr: ["pwd", "otp"], sid: access.sid });
    const stored = codeRow(code);
    expect(stored.usedAt?.getTime()).toBe(T0);
    expect(stored.sessionId).toBe(access.sid as string);
    expect(grantRows()).toEqual([{ session_id: access.sid, client_id: "wiki", scope: "openid profile", auth_time: T0 - 5000, amr: '["pwd","otp"]', browser_session_id: "browser-1" }]);
    expect(await sessions.principal(access.sid as string)).toMatchObject({ userId: "u1", clientId: "wiki" });
    expect(events).toEqual([{ event: "oidc_code_exchanged", userId: "u1", ...from, detail: { client_id: "wiki", session_id: access.sid, scope: "openid profile" } }]);
  });

  test("a refresh token for a client registered with refresh, or for offline_access; a resource sets the audience", async () => {
    const forGitea = await exchange("gitea", storeCode({ clientId: "gitea" }));
    expect(forGitea.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const offline = await exchange("wiki", storeCode({ scope: "openid offline_access" }), { resource: "https://api.example/" });
    expect(offline.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(decodeJwt(offline.access_token).aud).toBe("https://api.example/");
  });

  test("an unknown code is refused, and nothing is opened", async () => {
    expect(await refusal(exchange("wiki", "no-such-code"))).toEqual(["invalid_grant", "The code is unknown or expired."]);
    expect(grantRows()).toEqual([]);
    expect(events).toEqual([]);
  });

  test("a code refused by a check is spent: presented again correctly it is a replay, with no session to revoke", async () => {
    const code = storeCode();
    expect(await refusal(exchange("wiki", code, { redirectUri: undefined }))).toEqual(["invalid_grant", "redirect_uri does not match the authorization request."]);
    expect(codeRow(code).usedAt?.getTime()).toBe(T0);
    expect(codeRow(code).sessionId).toBeNull();
    expect(grantRows()).toEqual([]);
    expect(await refusal(exchange("gitea", code))).toEqual(["invalid_grant", "The code was already used; the tokens issued from it are revoked."]);
    expect(events).toEqual([{ event: "oidc_code_replayed", userId: "u1", ...from, detail: { client_id: "wiki", presented_by: "gitea", session_revoked: false } }]);
  });

  test("the code's expiry is checked at the exchange's millisecond", async () => {
    const code = storeCode();
    setSystemTime(new Date(T0 + 60_000));
    expect(await refusal(exchange("wiki", code))).toEqual(["invalid_grant", "The code has expired."]);
    const fresh = storeCode({ expiresAt: new Date(T0 + 60_001) });
    expect(await refusal(exchange("wiki", fresh))).toEqual(["issued"]);
  });

  test("the client, PKCE and PKCE downgrade checks reach the endpoint's answer", async () => {
    expect(await refusal(exchange("gitea", storeCode()))).toEqual(["invalid_grant", "The code was issued to another client."]);
    expect(await refusal(exchange("wiki", storeCode({ codeChallenge: CHALLENGE })))).toEqual(["invalid_grant", "code_verifier is required: the request used PKCE."]);
    expect(await refusal(exchange("wiki", storeCode(), { codeVerifier: VERIFIER }))).toEqual(["invalid_grant", "code_verifier given, but the request had no code_challenge."]);
    expect(grantRows()).toEqual([]);
  });

  test("a replay of an exchanged code revokes the session it opened, and is audited", async () => {
    const code = storeCode();
    const tokens = await exchange("wiki", code);
    const sid = decodeJwt(tokens.access_token).sid as string;
    events.length = 0;
    expect(await refusal(exchange("wiki", code))).toEqual(["invalid_grant", "The code was already used; the tokens issued from it are revoked."]);
    expect(await sessions.principal(sid)).toBeUndefined();
    expect(events).toEqual([{ event: "oidc_code_replayed", userId: "u1", ...from, detail: { client_id: "wiki", presented_by: "wiki", session_revoked: true } }]);
  });

  test("an account disabled between the authorization and the exchange gets nothing, and the code is spent", async () => {
    const code = storeCode();
    db.$client.run("UPDATE users SET disabled = 1 WHERE id = 'u1'");
    expect(await refusal(exchange("wiki", code))).toEqual(["invalid_grant", "The account behind this code was disabled or deleted."]);
    expect(codeRow(code).usedAt?.getTime()).toBe(T0);
    expect(grantRows()).toEqual([]);
    expect(events).toEqual([]);
  });

  test("a storage failure while opening the session is no refusal: the transaction rolls back and the code stays good", async () => {
    const code = storeCode();
    const failing = createOidcGrants({ ...grantDeps, sessions: { ...sessions, opening: () => { throw new Error("disk I/O error"); } } as typeof sessions });
    expect(await refusal(failing.exchangeCode(client("wiki"), { code, redirectUri: CALLBACK, codeVerifier: undefined, resource: undefined }, from))).toEqual(["Error: disk I/O error"]);
    expect(codeRow(code).usedAt).toBeNull();
    expect(await refusal(exchange("wiki", code))).toEqual(["issued"]);
  });

  test("a code of a deleted account is gone with it (the row cascades)", async () => {
    const code = storeCode();
    db.$client.run("DELETE FROM users WHERE id = 'u1'");
    expect(await refusal(exchange("wiki", code))).toEqual(["invalid_grant", "The code is unknown or expired."]);
  });
});

describe("refresh", () => {
  /** A grant of `clientId` (exchanged from a code of u1 or `userId`) and its refresh token. */
  async function granted(clientId = "gitea", userId = "u1", scope = "openid profile email") {
    const tokens = await exchange(clientId, storeCode({ clientId, userId, scope }));
    events.length = 0;
    return { tokens, sid: decodeJwt(tokens.access_token).sid as string, refreshToken: tokens.refresh_token! };
  }
  const refresh = (clientId: string, refreshToken: string, params: { scope?: string; resource?: string } = {}) =>
    grants.refresh(client(clientId), { refreshToken, scope: params.scope, resource: params.resource }, from);

  test("rotates the token and answers the grant's tokens, narrowed to a requested scope", async () => {
    const { sid, refreshToken } = await granted();
    setSystemTime(new Date(T0 + 1000));
    const tokens = await refresh("gitea", refreshToken, { scope: "openid email" });
    expect(tokens.refresh_token).not.toBe(refreshToken);
    expect(tokens.scope).toBe("openid email");
    expect(decodeJwt(tokens.access_token)).toMatchObject({ sid, sub: "u1", scope: "openid email", auth_time: (T0 - 5000) / 1000, amr: ["pwd", "otp"] });
    expect(decodeJwt(tokens.id_token!)).toMatchObject({ sid, auth_time: (T0 - 5000) / 1000, amr: ["pwd", "otp"] });
    expect(events).toEqual([]);
  });

  test("an unknown token, or another client's, is refused before it is spent", async () => {
    const { refreshToken } = await granted();
    expect(await refusal(refresh("gitea", "no-such-token"))).toEqual(["invalid_grant", "The refresh token is unknown, expired, revoked or another client's."]);
    expect(await refusal(refresh("family", refreshToken))).toEqual(["invalid_grant", "The refresh token is unknown, expired, revoked or another client's."]);
    expect(await refusal(refresh("gitea", refreshToken))).toEqual(["issued"]);
  });

  test("a wider scope is invalid_scope, and the token is not spent", async () => {
    const { refreshToken } = await granted();
    expect(await refusal(refresh("gitea", refreshToken, { scope: "openid groups" }))).toEqual(["invalid_scope", "Not granted, so not available by refresh: groups."]);
    expect(await refusal(refresh("gitea", refreshToken))).toEqual(["issued"]);
  });

  test("a user no longer allowed to use the client ends the grant, audited", async () => {
    const { sid, refreshToken } = await granted("family");
    db.$client.run(`UPDATE users SET roles = '[]' WHERE id = 'u1'`);
    sessions.forgetUser("u1");
    expect(await refusal(refresh("family", refreshToken))).toEqual(["invalid_grant", "This account is no longer allowed to use this application; the grant has ended."]);
    expect(await sessions.principal(sid)).toBeUndefined();
    expect(events).toEqual([{ event: "oidc_grant_refused", userId: "u1", ...from, detail: { client_id: "family", session_id: sid, reason: "not_allowed" } }]);
  });

  test("a user the client allows keeps refreshing", async () => {
    const { refreshToken } = await granted("family");
    expect(await refusal(refresh("family", refreshToken))).toEqual(["issued"]);
  });

  test("a spent token presented again revokes the grant: invalid_grant, audited as refresh_reuse_detected", async () => {
    const { sid, refreshToken } = await granted();
    await refresh("gitea", refreshToken);
    setSystemTime(new Date(T0 + 1000));
    expect(await refusal(refresh("gitea", refreshToken))).toEqual(["invalid_grant", "This refresh token was already used; the grant has been revoked."]);
    expect(await sessions.principal(sid)).toBeUndefined();
    expect(events).toEqual([{ event: "refresh_reuse_detected", userId: "u1", ...from, detail: { session_id: sid, client_id: "gitea" } }]);
  });

  test("a spent token is a reuse even when the user has lost access since: the grant ends as a reuse, not a refusal", async () => {
    const { sid, refreshToken } = await granted("family");
    await refresh("family", refreshToken);
    db.$client.run(`UPDATE users SET roles = '[]' WHERE id = 'u1'`);
    sessions.forgetUser("u1");
    expect(await refusal(refresh("family", refreshToken))).toEqual(["invalid_grant", "This refresh token was already used; the grant has been revoked."]);
    expect(events).toEqual([{ event: "refresh_reuse_detected", userId: "u1", ...from, detail: { session_id: sid, client_id: "family" } }]);
  });

  test("a disabled account's token is refused as unknown (the sessions refuse the rotation)", async () => {
    const { refreshToken } = await granted();
    db.$client.run("UPDATE users SET disabled = 1 WHERE id = 'u1'");
    sessions.forgetUser("u1");
    expect(await refusal(refresh("gitea", refreshToken))).toEqual(["invalid_grant", "The refresh token is unknown, expired or revoked."]);
    expect(events).toEqual([]);
  });
});
