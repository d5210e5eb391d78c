import { beforeAll, describe, expect, test } from "bun:test";
import * as oidcClient from "openid-client";
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase, type Db } from "../../src/db/client";
import type { BrowserSessionPort, BrowserUser } from "../../src/modules/oidc";
import { deriveSecrets } from "../../src/secrets";
import { unseal } from "../../src/lib/crypto";

/**
 * The OpenID Connect provider in process, driven by openid-client (the certified relying-party library) through
 * app.handle. The browser session of the sign-in pages is a stand-in here (a `browser` cookie naming a session
 * made by a real password login); test/e2e/oidc.test.ts drives the real pages through the binary.
 */
const ISSUER = "http://op.test";
const PASSWORD = "a long passphrase";
const CALLBACK = "https://rp.example/callback";

let db: Db;
let app: ReturnType<typeof createApp>;
const browsers = new Map<string, BrowserUser>();
const port: BrowserSessionPort = {
  current: (request) => browsers.get(/(?:^|; )browser=([^;]+)/.exec(request.headers.get("cookie") ?? "")?.[1] ?? "") ?? null,
  signOut: (request) => void browsers.delete(/(?:^|; )browser=([^;]+)/.exec(request.headers.get("cookie") ?? "")?.[1] ?? ""),
};

const handle = (input: string | URL | Request, init?: RequestInit) => app.handle(input instanceof Request ? input : new Request(String(input), init));
const json = async (method: string, path: string, body?: unknown, token?: string) => {
  const response = await handle(`${ISSUER}${path}`, {
    method,
    headers: { ...(body ? { "content-type": "application/json" } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
};

/** Signs `username` in with the password API and makes a browser whose session that is; returns its cookie value. */
async function browserOf(username: string): Promise<string> {
  const login = await json("POST", "/api/v1/auth/login", { username, password: PASSWORD });
  expect(login.status).toBe(200);
  const claims = decodeJwt(login.body.access_token);
  const me = await json("GET", "/api/v1/auth/me", undefined, login.body.access_token);
  const user = me.body.user;
  const cookie = crypto.randomUUID();
  browsers.set(cookie, {
    sessionId: claims.sid as string,
    userId: user.id,
    username: user.username,
    email: user.email,
    emailVerified: user.email_verified,
    roles: user.roles,
    metadata: {},
    createdAt: new Date(user.created_at),
  });
  return cookie;
}

/** A browser request to the provider: status, Location and page, without following redirects. */
async function visit(url: string, cookie?: string, init: RequestInit = {}) {
  const response = await handle(url, { ...init, headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie: `browser=${cookie}` } : {}) }, redirect: "manual" });
  return { status: response.status, location: response.headers.get("location"), text: await response.text(), headers: response.headers };
}

let adminToken: string;
let portainerSecret: string;
async function registerClient(body: Record<string, unknown>) {
  const response = await json("POST", "/api/v1/admin/oidc/clients", body, adminToken);
  expect(response.status).toBe(201);
  return response.body as { client_id: string; client_secret: string | null };
}

const relyingParty = (clientId: string, secret?: string, auth = secret ? oidcClient.ClientSecretBasic(secret) : oidcClient.None()) =>
  oidcClient.discovery(new URL(ISSUER), clientId, secret ? { client_secret: secret } : {}, auth, {
    [oidcClient.customFetch]: (url, options) => handle(url, options as RequestInit),
    execute: [oidcClient.allowInsecureRequests],
  });

/** Runs the authorization request in `cookie`'s browser, consenting when asked; returns the callback URL. */
async function authorizeIn(cookie: string, url: URL): Promise<URL> {
  let answer = await visit(url.href, cookie);
  if (answer.status === 200 && answer.text.includes('action="/oidc/authorize/consent"')) {
    const request = /name="request" value="([^"]*)"/.exec(answer.text)![1]!.replaceAll("&amp;", "&");
    const csrf = /name="csrf" value="([^"]*)"/.exec(answer.text)![1]!;
    answer = await visit(`${ISSUER}/oidc/authorize/consent`, cookie, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: ISSUER },
      body: new URLSearchParams({ request, csrf, decision: "allow" }).toString(),
    });
    expect(answer.status).toBe(303);
  } else expect(answer.status).toBe(302);
  return new URL(answer.location!);
}

beforeAll(async () => {
  db = openDatabase(":memory:");
  migrate(db);
  app = createApp(loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", PUBLIC_URL: ISSUER, ALLOW_REGISTRATION: "true" }), db, deriveSecrets("k".repeat(32)), undefined, { browser: port });
  for (const username of ["root", "alice", "bob"]) expect((await json("POST", "/api/v1/auth/register", { username, password: PASSWORD, ...(username === "alice" ? { email: "alice@example.com" } : {}) })).status).toBe(201);
  db.$client.run(`update users set roles = '["admin"]' where username = 'root'`);
  db.$client.run(`update users set roles = '["family"]' where username = 'alice'`);
  adminToken = (await json("POST", "/api/v1/auth/login", { username: "root", password: PASSWORD })).body.access_token;
  // The clients more than one describe uses are registered here, so that each describe runs alone (bun test -t).
  // Registered to always get a refresh token (it never asks for offline_access).
  portainerSecret = (await registerClient({ client_id: "portainer", redirect_uris: [CALLBACK], trusted: true, refresh: true })).client_secret!;
  await registerClient({ client_id: "immich-mobile", redirect_uris: ["app.immich:///oauth-callback"], public: true, trusted: true });
  await registerClient({ client_id: "gitea", redirect_uris: [CALLBACK], trusted: true });
});

describe("discovery", () => {
  test("the issuer is exactly PUBLIC_URL, the iss of every token; the endpoints are listed", async () => {
    const response = await json("GET", "/.well-known/openid-configuration");
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      issuer: ISSUER,
      authorization_endpoint: `${ISSUER}/oidc/authorize`,
      token_endpoint: `${ISSUER}/oidc/token`,
      userinfo_endpoint: `${ISSUER}/oidc/userinfo`,
      end_session_endpoint: `${ISSUER}/oidc/logout`,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      revocation_endpoint: `${ISSUER}/oidc/revoke`,
      introspection_endpoint: `${ISSUER}/oidc/introspect`,
      id_token_signing_alg_values_supported: ["RS256", "ES256", "EdDSA"],
      grant_types_supported: ["authorization_code", "refresh_token", "client_credentials"],
      code_challenge_methods_supported: ["S256"],
      response_types_supported: ["code"],
    });
  });
});

describe("code flow with openid-client", () => {
  test("confidential client (client_secret_basic), PKCE, nonce and state: ID token and userinfo carry the same claims; refresh; logout", async () => {
    const { client_id, client_secret } = await registerClient({ client_id: "grafana", redirect_uris: [CALLBACK], post_logout_redirect_uris: ["https://rp.example/bye"] });
    expect(client_secret).toMatch(/^lkcs_/);
    const config = await relyingParty(client_id, client_secret!);
    const verifier = oidcClient.randomPKCECodeVerifier();
    const state = oidcClient.randomState();
    const nonce = oidcClient.randomNonce();
    const url = oidcClient.buildAuthorizationUrl(config, {
      redirect_uri: CALLBACK,
      scope: "openid profile email groups offline_access",
      code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    const cookie = await browserOf("alice");
    const callback = await authorizeIn(cookie, url);
    expect(callback.searchParams.get("state")).toBe(state);
    expect(callback.searchParams.get("iss")).toBe(ISSUER);
    const tokens = await oidcClient.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    const claims = tokens.claims()!;
    const userId = claims.sub;
    expect(claims).toMatchObject({ iss: ISSUER, aud: client_id, nonce, preferred_username: "alice", name: "alice", email: "alice@example.com", email_verified: false, groups: ["family"] });
    expect(claims.auth_time).toBeNumber();
    // openid-client trusts TLS for the token response's ID token; its signature is checked here, against the JWKS.
    const keySet = createLocalJWKSet((await json("GET", "/.well-known/jwks.json")).body);
    const verified = await jwtVerify(tokens.id_token!, keySet, { issuer: ISSUER, audience: client_id, algorithms: ["RS256"] });
    expect(verified.protectedHeader.kid).toStartWith("rs256-");
    const info = await oidcClient.fetchUserInfo(config, tokens.access_token, userId);
    expect({ ...info } as Record<string, unknown>).toEqual({ sub: userId, preferred_username: "alice", name: "alice", email: "alice@example.com", email_verified: false, groups: ["family"] });

    const refreshed = await oidcClient.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.claims()).toMatchObject({ sub: userId, aud: client_id, groups: ["family"] });
    expect((await oidcClient.fetchUserInfo(config, refreshed.access_token, userId)).preferred_username).toBe("alice");

    const logoutUrl = oidcClient.buildEndSessionUrl(config, { id_token_hint: refreshed.id_token!, post_logout_redirect_uri: "https://rp.example/bye", state: "s1" });
    const logout = await visit(logoutUrl.href, cookie);
    expect(logout.status).toBe(303);
    expect(logout.location).toBe("https://rp.example/bye?state=s1");
    expect(browsers.has(cookie)).toBe(false);
    // The grant's session has ended: its access and refresh tokens stop working.
    expect((await json("GET", "/oidc/userinfo", undefined, refreshed.access_token)).status).toBe(401);
    await expect(oidcClient.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });

    // Consent, the code exchange and the logout are in the audit log, for alice, naming the client.
    const audited = async (event: string) => (await json("GET", `/api/v1/admin/audit?event=${event}`, undefined, adminToken)).body.events[0];
    for (const event of ["oidc_consent_granted", "oidc_code_exchanged", "oidc_logout"])
      expect({ event, ...(await audited(event)) }).toMatchObject({ event, user_id: userId, detail: { client_id } });
  });

  test("public client: none + PKCE, with client_secret_post for a confidential one", async () => {
    const config = await relyingParty("immich-mobile");
    const verifier = oidcClient.randomPKCECodeVerifier();
    const url = oidcClient.buildAuthorizationUrl(config, {
      redirect_uri: "app.immich:///oauth-callback",
      scope: "openid",
      code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state: "st",
    });
    const callback = await authorizeIn(await browserOf("bob"), url);
    expect(callback.href.startsWith("app.immich:///oauth-callback?code=")).toBe(true);
    const tokens = await oidcClient.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: "st" });
    // scope=openid alone: sub and the protocol claims, nothing about the person (OpenID Connect Core §5.4). amr:
    // the session here is an API sign-in's, which records its password (pwd) like a browser's.
    expect(Object.keys(tokens.claims()!).sort()).toEqual(["amr", "aud", "auth_time", "exp", "iat", "iss", "sid", "sub"]);
    expect(tokens.claims()!.amr).toEqual(["pwd"]);

    // gitea is registered for every describe (its secret is rotated elsewhere): a new secret of its own here.
    const gitea = (await json("POST", "/api/v1/admin/oidc/clients/gitea/secret", undefined, adminToken)).body.client_secret as string;
    const post = await relyingParty("gitea", gitea, oidcClient.ClientSecretPost(gitea));
    const v2 = oidcClient.randomPKCECodeVerifier();
    const cb2 = await authorizeIn(await browserOf("bob"), oidcClient.buildAuthorizationUrl(post, { redirect_uri: CALLBACK, scope: "openid profile", code_challenge: await oidcClient.calculatePKCECodeChallenge(v2), code_challenge_method: "S256", state: "x" }));
    expect((await oidcClient.authorizationCodeGrant(post, cb2, { pkceCodeVerifier: v2, expectedState: "x" })).claims()!.preferred_username).toBe("bob");
  });
});

describe("negative cases", () => {
  let secret: string;
  let cookie: string;
  beforeAll(async () => {
    secret = portainerSecret;
    await registerClient({ client_id: "family-only", redirect_uris: [CALLBACK], trusted: true, allowed_roles: ["family"] });
    cookie = await browserOf("bob");
  });

  const authorizeUrl = (params: Record<string, string>) =>
    `${ISSUER}/oidc/authorize?${new URLSearchParams({ client_id: "portainer", redirect_uri: CALLBACK, response_type: "code", scope: "openid", state: "st-1", ...params })}`;
  const challengeOf = (verifier: string) => oidcClient.calculatePKCECodeChallenge(verifier);
  const token = (params: Record<string, string>, auth = `Basic ${btoa(`portainer:${secret}`)}`) =>
    handle(`${ISSUER}/oidc/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...(auth ? { authorization: auth } : {}) },
      body: new URLSearchParams(params).toString(),
    }).then(async (response) => ({ status: response.status, body: (await response.json()) as any, headers: response.headers }));
  async function codeFor(params: Record<string, string> = {}) {
    const answer = await visit(authorizeUrl(params), cookie);
    expect(answer.status).toBe(302);
    return new URL(answer.location!).searchParams.get("code")!;
  }

  test("an unregistered redirect URI (or unknown client) is an error page, never a redirect", async () => {
    for (const url of [authorizeUrl({ redirect_uri: "https://evil.example/callback" }), authorizeUrl({ redirect_uri: `${CALLBACK}/` }), authorizeUrl({ client_id: "nobody" })]) {
      const answer = await visit(url, cookie);
      expect(answer.status).toBe(400);
      expect(answer.location).toBeNull();
      expect(answer.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(answer.text).toContain("<h1>");
    }
  });

  test("state is preserved and nonce echoed in the ID token", async () => {
    const verifier = oidcClient.randomPKCECodeVerifier();
    const answer = await visit(authorizeUrl({ state: "keep me", nonce: "n-0S6_WzA2Mj", code_challenge: await challengeOf(verifier), code_challenge_method: "S256" }), cookie);
    const callback = new URL(answer.location!);
    expect(callback.searchParams.get("state")).toBe("keep me");
    const tokens = await token({ grant_type: "authorization_code", code: callback.searchParams.get("code")!, redirect_uri: CALLBACK, code_verifier: verifier });
    expect(tokens.status).toBe(200);
    expect(tokens.headers.get("cache-control")).toBe("no-store");
    expect(decodeJwt(tokens.body.id_token).nonce).toBe("n-0S6_WzA2Mj");
  });

  test("code replay: refused, and the tokens issued from the code are revoked", async () => {
    const code = await codeFor();
    const first = await token({ grant_type: "authorization_code", code, redirect_uri: CALLBACK });
    expect(first.status).toBe(200);
    expect((await json("GET", "/oidc/userinfo", undefined, first.body.access_token)).status).toBe(200);
    const again = await token({ grant_type: "authorization_code", code, redirect_uri: CALLBACK });
    expect(again.status).toBe(400);
    expect(again.body.error).toBe("invalid_grant");
    expect((await json("GET", "/oidc/userinfo", undefined, first.body.access_token)).status).toBe(401);
    expect((await token({ grant_type: "refresh_token", refresh_token: first.body.refresh_token })).body.error).toBe("invalid_grant");
  });

  test("PKCE: a wrong or missing verifier fails; plain is refused; a public client must use it", async () => {
    const verifier = oidcClient.randomPKCECodeVerifier();
    const challenge = await challengeOf(verifier);
    for (const given of [{ code_verifier: oidcClient.randomPKCECodeVerifier() }, {}] as Record<string, string>[]) {
      const code = await codeFor({ code_challenge: challenge, code_challenge_method: "S256" });
      const answer = await token({ grant_type: "authorization_code", code, redirect_uri: CALLBACK, ...given });
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe("invalid_grant");
    }
    const plain = new URL((await visit(authorizeUrl({ code_challenge: verifier, code_challenge_method: "plain" }), cookie)).location!);
    expect(plain.searchParams.get("error")).toBe("invalid_request");
    expect(plain.searchParams.get("state")).toBe("st-1");
    const publicWithout = new URL((await visit(authorizeUrl({ client_id: "immich-mobile", redirect_uri: "app.immich:///oauth-callback" }), cookie)).location!);
    expect(publicWithout.searchParams.get("error")).toBe("invalid_request");
  });

  test("a code is bound to its client and redirect URI, and expires after 60 s", async () => {
    const code = await codeFor();
    const other = await token({ grant_type: "authorization_code", code, redirect_uri: `${CALLBACK}?x=1` });
    expect(other.body.error).toBe("invalid_grant");
    const gitea = await json("POST", "/api/v1/admin/oidc/clients/gitea/secret", undefined, adminToken);
    const byAnother = await token({ grant_type: "authorization_code", code: await codeFor(), redirect_uri: CALLBACK }, `Basic ${btoa(`gitea:${gitea.body.client_secret}`)}`);
    expect(byAnother.status).toBe(400);
    expect(byAnother.body.error).toBe("invalid_grant");
    const expired = await codeFor();
    db.$client.run("update oidc_codes set expires_at = ? where used_at is null", [Date.now() - 1]);
    expect((await token({ grant_type: "authorization_code", code: expired, redirect_uri: CALLBACK })).body.error).toBe("invalid_grant");
  });

  test("redirect_uri is required at the token endpoint when the authorization request had one (RFC 6749 §4.1.3); the code is spent all the same", async () => {
    const code = await codeFor();
    const without = await token({ grant_type: "authorization_code", code });
    expect(without.status).toBe(400);
    expect(without.body.error).toBe("invalid_grant");
    expect((await token({ grant_type: "authorization_code", code, redirect_uri: CALLBACK })).body.error).toBe("invalid_grant");
  });

  test("RP-initiated logout with another user's id_token_hint asks this browser's user to confirm, and signs nobody out", async () => {
    const alice = await browserOf("alice");
    const aliceCode = new URL((await visit(authorizeUrl({}), alice)).location!).searchParams.get("code")!;
    const aliceTokens = await token({ grant_type: "authorization_code", code: aliceCode, redirect_uri: CALLBACK });
    expect(aliceTokens.status).toBe(200);
    const hint = aliceTokens.body.id_token as string;
    // Bob's browser, with Alice's ID token: a page of some relying party Bob visits cannot sign him out.
    const bobs = await browserOf("bob");
    const asked = await visit(`${ISSUER}/oidc/logout?id_token_hint=${hint}`, bobs);
    expect(asked.status).toBe(200);
    expect(asked.text).toContain('action="/oidc/logout"');
    expect(asked.text).toContain('name="confirm" value="yes"');
    expect(browsers.has(bobs)).toBe(true);
    // Alice's own ID token signs her browser out without asking (OpenID Connect RP-Initiated Logout §2).
    const own = await visit(`${ISSUER}/oidc/logout?id_token_hint=${hint}`, alice);
    expect(own.status).toBe(200);
    expect(own.text).not.toContain('name="confirm"');
    expect(browsers.has(alice)).toBe(false);
  });

  test("a wrong client secret is 401 invalid_client", async () => {
    const code = await codeFor();
    const wrong = await token({ grant_type: "authorization_code", code, redirect_uri: CALLBACK }, `Basic ${btoa("portainer:lkcs_wrong")}`);
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe("invalid_client");
    expect(wrong.headers.get("www-authenticate")).toBe('Basic realm="latchkey"');
    const none = await token({ grant_type: "authorization_code", code, redirect_uri: CALLBACK, client_id: "portainer" }, "");
    expect(none.status).toBe(401);
    expect(none.body.error).toBe("invalid_client");
  });

  test("prompt=none without a browser session sends login_required back to the client; with one and no consent, consent_required; with both, the code", async () => {
    const without = await visit(authorizeUrl({ prompt: "none" }));
    expect(without.status).toBe(302);
    const url = new URL(without.location!);
    expect(`${url.origin}${url.pathname}`).toBe(CALLBACK);
    expect(url.searchParams.get("error")).toBe("login_required");
    expect(url.searchParams.get("state")).toBe("st-1");
    const signIn = await visit(authorizeUrl({}));
    expect(signIn.status).toBe(302);
    expect(signIn.location!.startsWith("/login?rd=%2Foidc%2Fauthorize%3F")).toBe(true);
    await registerClient({ client_id: "nextcloud", redirect_uris: [CALLBACK] });
    const consent = new URL((await visit(authorizeUrl({ client_id: "nextcloud", prompt: "none" }), cookie)).location!);
    expect(consent.searchParams.get("error")).toBe("consent_required");
    // Signed in, and nothing to ask: prompt=none gets the code.
    const silent = new URL((await visit(authorizeUrl({ prompt: "none" }), cookie)).location!);
    expect(silent.searchParams.get("code")).toBeString();
    expect(silent.searchParams.get("error")).toBeNull();
  });

  test("prompt=consent asks even a trusted client's user; allowed_users admits a listed user without the role", async () => {
    const asked = await visit(authorizeUrl({ prompt: "consent" }), cookie);
    expect(asked.status).toBe(200);
    expect(asked.text).toContain('action="/oidc/authorize/consent"');
    const bobId = (await json("GET", "/api/v1/admin/users?query=bob", undefined, adminToken)).body.users[0].id;
    await registerClient({ client_id: "bob-only", redirect_uris: [CALLBACK], trusted: true, allowed_users: ["bob"] });
    expect((await json("GET", "/api/v1/admin/oidc/clients", undefined, adminToken)).body.clients.find((c: { client_id: string }) => c.client_id === "bob-only").allowed_users).toEqual([bobId]);
    expect(new URL((await visit(authorizeUrl({ client_id: "bob-only" }), cookie)).location!).searchParams.get("code")).toBeString();
    expect((await visit(authorizeUrl({ client_id: "bob-only" }), await browserOf("alice"))).status).toBe(403);
  });

  test("a client the user's roles do not allow: an access-denied page, never a code", async () => {
    const denied = await visit(authorizeUrl({ client_id: "family-only" }), cookie);
    expect(denied.status).toBe(403);
    expect(denied.location).toBeNull();
    expect(denied.text).toContain("Access denied");
    const allowed = await visit(authorizeUrl({ client_id: "family-only" }), await browserOf("alice"));
    expect(new URL(allowed.location!).searchParams.get("code")).toBeString();
  });

  test("consent is asked once, remembered, and revocable (which ends the client's sessions)", async () => {
    await registerClient({ client_id: "jellyfin", redirect_uris: [CALLBACK] });
    const alice = await browserOf("alice");
    const first = await visit(authorizeUrl({ client_id: "jellyfin" }), alice);
    expect(first.status).toBe(200);
    expect(first.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(first.text).toContain("<h1>Allow jellyfin to sign you in?</h1>");
    const forged = await visit(`${ISSUER}/oidc/authorize/consent`, alice, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ request: new URL(authorizeUrl({ client_id: "jellyfin" })).search.slice(1), csrf: "forged", decision: "allow" }).toString(),
    });
    expect(forged.status).toBe(403);
    await authorizeIn(alice, new URL(authorizeUrl({ client_id: "jellyfin" })));
    const second = await visit(authorizeUrl({ client_id: "jellyfin" }), alice);
    expect(second.status).toBe(302);
    const login = await json("POST", "/api/v1/auth/login", { username: "alice", password: PASSWORD });
    expect((await json("GET", "/api/v1/auth/oidc/consents", undefined, login.body.access_token)).body.consents.map((c: { client_id: string }) => c.client_id)).toContain("jellyfin");
    expect((await json("DELETE", "/api/v1/auth/oidc/consents/jellyfin", undefined, login.body.access_token)).status).toBe(204);
    expect((await json("DELETE", "/api/v1/auth/oidc/consents/jellyfin", undefined, login.body.access_token)).status).toBe(404);
    expect((await visit(authorizeUrl({ client_id: "jellyfin" }), alice)).status).toBe(200);
  });

  test("refresh-token reuse revokes the grant and is audited", async () => {
    const first = await token({ grant_type: "authorization_code", code: await codeFor(), redirect_uri: CALLBACK });
    const rotated = await token({ grant_type: "refresh_token", refresh_token: first.body.refresh_token });
    expect(rotated.status).toBe(200);
    db.$client.run("update refresh_tokens set spent_at = spent_at - 60000 where spent_at is not null");
    expect((await token({ grant_type: "refresh_token", refresh_token: first.body.refresh_token })).body.error).toBe("invalid_grant");
    expect((await token({ grant_type: "refresh_token", refresh_token: rotated.body.refresh_token })).body.error).toBe("invalid_grant");
    const events = await json("GET", "/api/v1/admin/audit?event=refresh_reuse_detected", undefined, adminToken);
    expect(events.body.events[0].detail.client_id).toBe("portainer");
  });

  test("another client cannot use a client's refresh token", async () => {
    const issued = await token({ grant_type: "authorization_code", code: await codeFor(), redirect_uri: CALLBACK });
    const gitea = await json("POST", "/api/v1/admin/oidc/clients/gitea/secret", undefined, adminToken);
    const stolen = await token({ grant_type: "refresh_token", refresh_token: issued.body.refresh_token }, `Basic ${btoa(`gitea:${gitea.body.client_secret}`)}`);
    expect(stolen.body.error).toBe("invalid_grant");
    expect((await token({ grant_type: "refresh_token", refresh_token: issued.body.refresh_token })).status).toBe(200);
  });

  test("unsupported response types, missing openid scope, and logout to an unregistered URI", async () => {
    expect(new URL((await visit(authorizeUrl({ response_type: "token" }), cookie)).location!).searchParams.get("error")).toBe("unsupported_response_type");
    expect(new URL((await visit(authorizeUrl({ scope: "profile" }), cookie)).location!).searchParams.get("error")).toBe("invalid_scope");
    const logout = await visit(`${ISSUER}/oidc/logout?client_id=portainer&post_logout_redirect_uri=${encodeURIComponent("https://evil.example/")}`, cookie);
    expect(logout.status).toBe(400);
    expect(logout.location).toBeNull();
    expect(browsers.has(cookie)).toBe(true);
  });
});

describe("authorization request details", () => {
  const base = { client_id: "portainer", redirect_uri: CALLBACK, response_type: "code", scope: "openid" };
  const url = (params: Record<string, string>) => `${ISSUER}/oidc/authorize?${new URLSearchParams({ ...base, ...params })}`;

  test("prompt=login and an exceeded max_age sign the browser out and ask again; a fresh sign-in then gets the code", async () => {
    for (const params of [{ prompt: "login" }, { max_age: "0" }] as Record<string, string>[]) {
      const old = await browserOf("bob");
      const answer = await visit(url({ ...params, state: "p" }), old);
      expect(answer.status).toBe(302);
      expect(answer.location!.startsWith("/login?rd=")).toBe(true);
      expect(browsers.has(old)).toBe(false);
      const rd = decodeURIComponent(answer.location!.slice("/login?rd=".length));
      expect(rd).toContain("lk_reauth=");
      // The stamp cannot be forged: with another one the old session would be asked again.
      const fresh = await browserOf("bob");
      const back = await visit(`${ISSUER}${rd}`, fresh);
      expect(back.status).toBe(302);
      const callback = new URL(back.location!);
      expect(callback.searchParams.get("code")).toBeString();
      expect(callback.searchParams.get("state")).toBe("p");
      // A sign-in a minute old: max_age=0 refuses it for sure (made in the same millisecond as the request, it was
      // 0 ms old, not over 0 s, and the code came back: 1 run in about 8), so only a valid stamp could let it through.
      const signedIn = await browserOf("bob");
      db.$client.run("update sessions set created_at = created_at - 60000");
      const forged = await visit(`${ISSUER}${rd.replace(/lk_reauth=[^&]+/, `lk_reauth=${Date.now() - 3_600_000}.forged`)}`, signedIn);
      expect(forged.location!.startsWith("/login?rd=")).toBe(true);
    }
  });

  test("max_age that the sign-in satisfies, POST to the authorization endpoint, unknown parameters and no nonce all succeed", async () => {
    const cookie = await browserOf("bob");
    expect(new URL((await visit(url({ max_age: "10000" }), cookie)).location!).searchParams.get("code")).toBeString();
    const posted = await visit(`${ISSUER}/oidc/authorize`, cookie, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ ...base, state: "post" }).toString(),
    });
    expect(new URL(posted.location!).searchParams.get("state")).toBe("post");
    const extra = await visit(url({ display: "page", login_hint: "bob", ui_locales: "de", claims_locales: "de", acr_values: "1", id_token_hint: "x.y.z", unknown_thing: "x", scope: "email openid profile" }), cookie);
    expect(new URL(extra.location!).searchParams.get("code")).toBeString();
  });

  test("a missing redirect_uri is an error page; request objects are refused as unsupported", async () => {
    const { redirect_uri: _dropped, ...withoutRedirect } = base;
    const missing = await visit(`${ISSUER}/oidc/authorize?${new URLSearchParams(withoutRedirect)}`, await browserOf("bob"));
    expect(missing.status).toBe(400);
    expect(missing.location).toBeNull();
    const requestObject = new URL((await visit(url({ request: "eyJhbGciOiJub25lIn0.e30." }), await browserOf("bob"))).location!);
    expect(requestObject.searchParams.get("error")).toBe("request_not_supported");
  });
});

describe("what real apps hit (issue 21)", () => {
  const APACHE_BACKCHANNEL = "https://apache.example/protected/redirect_uri?logout=backchannel";
  let secret: string;
  const base = { client_id: "apache", redirect_uri: CALLBACK, response_type: "code", scope: "openid" };
  const url = (params: Record<string, string>) => `${ISSUER}/oidc/authorize?${new URLSearchParams({ ...base, ...params })}`;
  beforeAll(async () => {
    secret = (await registerClient({ client_id: "apache", redirect_uris: [CALLBACK], trusted: true, backchannel_logout_uri: APACHE_BACKCHANNEL })).client_secret!;
  });

  /** A code for `cookie`'s browser, exchanged: the tokens, and the ID token's claims. */
  async function signInTo(cookie: string, params: Record<string, string> = {}) {
    const callback = await authorizeIn(cookie, new URL(url(params)));
    const response = await handle(`${ISSUER}/oidc/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${btoa(`apache:${secret}`)}` },
      body: new URLSearchParams({ grant_type: "authorization_code", code: callback.searchParams.get("code")!, redirect_uri: CALLBACK }).toString(),
    });
    expect(response.status).toBe(200);
    const tokens = (await response.json()) as { id_token: string; access_token: string };
    return { ...tokens, claims: decodeJwt(tokens.id_token) as { sub: string; sid: string } };
  }

  /** The back-channel logout notices queued in the outbox, opened (they are sealed like mail). */
  const notices = () =>
    (db.$client.query("select kind, payload from mail_outbox where kind = 'backchannel_logout'").all() as { payload: string }[]).map(
      (row) => JSON.parse(unseal(deriveSecrets("k".repeat(32)).dataKey, row.payload, "latchkey/mail-outbox/v1")!) as Record<string, string | null>,
    );

  test("discovery advertises back-channel logout (with sid) and prompt=select_account", async () => {
    const { body } = await json("GET", "/.well-known/openid-configuration");
    expect(body).toMatchObject({ backchannel_logout_supported: true, backchannel_logout_session_supported: true, prompt_values_supported: ["none", "login", "consent", "select_account"] });
  });

  test("repeated parameters are invalid_request (RFC 6749 §3.1): back to the client while client_id and redirect_uri are single, else a page", async () => {
    const cookie = await browserOf("bob");
    // The repeated parameter first: the rest of the request is still read (the error goes back to the client).
    const repeatedState = await visit(`${ISSUER}/oidc/authorize?state=a&state=b&${new URLSearchParams(base)}`, cookie);
    expect(repeatedState.status).toBe(302);
    const back = new URL(repeatedState.location!);
    expect(`${back.origin}${back.pathname}`).toBe(CALLBACK);
    expect(back.searchParams.get("error")).toBe("invalid_request");
    expect(back.searchParams.get("error_description")).toBe("state was given more than once.");
    expect(back.searchParams.has("state")).toBe(false);
    expect(back.searchParams.has("code")).toBe(false);
    // Another parameter repeated before it does not hide a repeated redirect_uri: still a page, never a redirect.
    const repeatedRedirect = await visit(`${ISSUER}/oidc/authorize?nonce=1&nonce=2&${new URLSearchParams(base)}&redirect_uri=${encodeURIComponent(CALLBACK)}`, cookie);
    expect(repeatedRedirect.status).toBe(400);
    expect(repeatedRedirect.location).toBeNull();
    expect(repeatedRedirect.text).toContain("invalid_request: redirect_uri was given more than once.");
    // A form POST with a repeated field, and a name in both the query and the form.
    const form = (query: string, body: string) => visit(`${ISSUER}/oidc/authorize${query}`, cookie, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
    for (const [query, body] of [["", `${new URLSearchParams(base)}&scope=openid+email`], ["?scope=openid", new URLSearchParams(base).toString()]] as const) {
      const posted = await form(query, body);
      expect(posted.status).toBe(302);
      expect(new URL(posted.location!).searchParams.get("error")).toBe("invalid_request");
      expect(new URL(posted.location!).searchParams.get("error_description")).toBe("scope was given more than once.");
    }
    const logout = await visit(`${ISSUER}/oidc/logout?client_id=apache&client_id=portainer`, cookie);
    expect(logout.status).toBe(400);
    expect(logout.text).toContain("invalid_request: client_id was given more than once.");
    expect(browsers.has(cookie)).toBe(true);
  });

  test("prompt=none with an id_token_hint of another user is login_required (OpenID Connect Core §3.1.2.1); the named user's browser gets the code", async () => {
    const { id_token: aliceIdToken, access_token: aliceAccessToken } = await signInTo(await browserOf("alice"));
    const bob = await browserOf("bob");
    const other = await visit(url({ prompt: "none", id_token_hint: aliceIdToken, state: "h" }), bob);
    expect(other.status).toBe(302);
    const refused = new URL(other.location!);
    expect(refused.searchParams.get("error")).toBe("login_required");
    expect(refused.searchParams.get("state")).toBe("h");
    expect(refused.searchParams.has("code")).toBe(false);
    const same = new URL((await visit(url({ prompt: "none", id_token_hint: aliceIdToken }), await browserOf("alice"))).location!);
    expect(same.searchParams.get("code")).toBeString();
    // With prompt=none a hint that does not verify decides nothing it could be trusted for: refused.
    const forged = new URL((await visit(url({ prompt: "none", id_token_hint: `${aliceIdToken.slice(0, -4)}AAAA` }), await browserOf("alice"))).location!);
    expect(forged.searchParams.get("error")).toBe("invalid_request");
    // A client's access token is signed with the same keys and names a sub and an aud, but is no ID token (typ at+jwt).
    const accessHint = new URL((await visit(url({ prompt: "none", id_token_hint: aliceAccessToken }), await browserOf("alice"))).location!);
    expect(accessHint.searchParams.get("error")).toBe("invalid_request");
    expect(accessHint.searchParams.has("code")).toBe(false);
  });

  test("prompt=select_account shows who is signed in with a way to continue and a 'not you?' that asks for a new sign-in", async () => {
    const cookie = await browserOf("bob");
    const page = await visit(url({ prompt: "select_account", state: "sa" }), cookie);
    expect(page.status).toBe(200);
    expect(page.text).toContain("You are signed in as <strong>bob</strong>");
    expect(page.text).toContain("Not you? Sign in as someone else");
    const links = [...page.text.matchAll(/href="(\/oidc\/authorize\?[^"]+)"/g)].map((match) => new URL(match[1]!.replaceAll("&amp;", "&"), ISSUER));
    expect(links.map((link) => link.searchParams.get("prompt"))).toEqual([null, "login"]);
    const continued = await visit(links[0]!.href, cookie);
    expect(continued.status).toBe(302);
    expect(new URL(continued.location!).searchParams.get("code")).toBeString();
    expect(new URL(continued.location!).searchParams.get("state")).toBe("sa");
    const other = await visit(links[1]!.href, cookie);
    expect(other.location!.startsWith("/login?rd=")).toBe(true);
    expect(browsers.has(cookie)).toBe(false);
    // Not signed in: the sign-in page, as for any request.
    expect((await visit(url({ prompt: "select_account" }))).location!.startsWith("/login?rd=")).toBe(true);
  });

  test("logout with only post_logout_redirect_uri (OmniAuth): a confirmation page, then signed out on Latchkey's page, never redirected", async () => {
    const cookie = await browserOf("bob");
    const target = "https://omniauth.example/signed-out";
    const asked = await visit(`${ISSUER}/oidc/logout?post_logout_redirect_uri=${encodeURIComponent(target)}`, cookie);
    expect(asked.status).toBe(200);
    expect(asked.text).toContain("Sign out?");
    const csrf = /name="csrf" value="([^"]*)"/.exec(asked.text)![1]!;
    const done = await visit(`${ISSUER}/oidc/logout`, cookie, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: ISSUER },
      body: new URLSearchParams({ post_logout_redirect_uri: target, csrf, confirm: "yes" }).toString(),
    });
    expect(done.status).toBe(200);
    expect(done.location).toBeNull();
    expect(done.text).toContain("You are signed out of Latchkey.");
    expect(browsers.has(cookie)).toBe(false);
  });

  test("after a key rotation the retired key stays published for REFRESH_TOKEN_TTL, so a live session's ID token still logs out", async () => {
    const alice = await browserOf("alice");
    const { id_token: before } = await signInTo(alice);
    expect((await json("POST", "/api/v1/admin/keys/rotate", undefined, adminToken)).status).toBe(200);
    const keys = (await json("GET", "/api/v1/admin/keys", undefined, adminToken)).body.keys as { kid: string; retired_at: string | null; live_until: string | null }[];
    const retired = keys.find((key) => key.kid === decodeProtectedHeader(before).kid)!;
    // REFRESH_TOKEN_TTL is 30 days by default; ACCESS_TOKEN_TTL one hour (what the key was kept for before).
    expect(Date.parse(retired.live_until!) - Date.parse(retired.retired_at!)).toBe(30 * 86_400_000);
    const logout = await visit(`${ISSUER}/oidc/logout?id_token_hint=${before}`, alice);
    expect(logout.status).toBe(200);
    expect(logout.text).toContain("You are signed out of Latchkey.");
  });

  test("back-channel logout notices are queued for consent withdrawn, sign out everywhere, a disabled and a deleted user; a bad URI is refused", async () => {
    const bad = await json("POST", "/api/v1/admin/oidc/clients", { client_id: "bad-bc", redirect_uris: [CALLBACK], backchannel_logout_uri: "ftp://apache.example/x" }, adminToken);
    expect(bad.status).toBe(422);
    expect(bad.body.details).toEqual([{ field: "backchannel_logout_uri", message: "Must be an http or https URI." }]);
    const listed = (await json("GET", "/api/v1/admin/oidc/clients", undefined, adminToken)).body.clients.find((client: { client_id: string }) => client.client_id === "apache");
    expect(listed.backchannel_logout_uri).toBe(APACHE_BACKCHANNEL);
    db.$client.run("delete from mail_outbox");
    for (const username of ["dave", "erin"]) expect((await json("POST", "/api/v1/auth/register", { username, password: PASSWORD })).status).toBe(201);
    const expectNotice = async (sub: string, sid: string) => {
      expect(notices()).toEqual([{ uri: APACHE_BACKCHANNEL, client_id: "apache", sub, sid, alg: null }]);
      db.$client.run("delete from mail_outbox");
    };
    // Consent withdrawn (the grant ends).
    let grant = (await signInTo(await browserOf("dave"), { prompt: "consent" })).claims;
    const daveToken = (await json("POST", "/api/v1/auth/login", { username: "dave", password: PASSWORD })).body.access_token;
    expect((await json("DELETE", "/api/v1/auth/oidc/consents/apache", undefined, daveToken)).status).toBe(204);
    await expectNotice(grant.sub, grant.sid);
    // Signed out everywhere.
    grant = (await signInTo(await browserOf("dave"))).claims;
    expect((await json("POST", "/api/v1/auth/logout?scope=global", undefined, (await json("POST", "/api/v1/auth/login", { username: "dave", password: PASSWORD })).body.access_token)).status).toBe(200);
    await expectNotice(grant.sub, grant.sid);
    // Disabled by an admin.
    grant = (await signInTo(await browserOf("erin"))).claims;
    expect((await json("PATCH", `/api/v1/admin/users/${grant.sub}`, { disabled: true }, adminToken)).status).toBe(200);
    await expectNotice(grant.sub, grant.sid);
    expect((await json("PATCH", `/api/v1/admin/users/${grant.sub}`, { disabled: false }, adminToken)).status).toBe(200);
    expect(notices()).toEqual([]);
    // Deleted by an admin.
    grant = (await signInTo(await browserOf("erin"))).claims;
    expect((await json("DELETE", `/api/v1/admin/users/${grant.sub}`, undefined, adminToken)).status).toBe(204);
    await expectNotice(grant.sub, grant.sid);
    // A client without a back-channel URI is told nothing.
    await json("POST", "/api/v1/auth/logout?scope=global", undefined, (await json("POST", "/api/v1/auth/login", { username: "bob", password: PASSWORD })).body.access_token);
    expect(notices()).toEqual([]);
  });
});
