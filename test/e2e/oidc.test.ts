/**
 * The OpenID Connect provider through the compiled binary: clients from the CLI, discovery, JWKS and userinfo,
 * and the token endpoint's refusals. test/unit/oidc.test.ts covers the protocol in depth in process.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createRemoteJWKSet, jwtVerify } from "jose";
import * as oidcClient from "openid-client";
import { authorizeOverHttp as authorizeAs, serveIssuer } from "../support/oidc";
import { apiSignIn, browserSignIn, cookieJar, csrfOf, type CookieJar } from "../support/pages";
import { removeDataDir, runCli, tempDataDir, type SpawnedServer } from "../support/server";

const PASSWORD = "correct horse battery staple";

let url: string;
let dataDir: string;
let server: SpawnedServer;
let secret: string;

beforeAll(async () => {
  dataDir = tempDataDir();
  expect((await runCli(["user", "add", "alice", "--email", "alice@example.com"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  expect((await runCli(["user", "roles", "alice", "family"], { DATA_DIR: dataDir })).code).toBe(0);
  expect((await runCli(["user", "add", "root", "--admin"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  const added = await runCli(
    ["oidc", "client", "add", "grafana", "--redirect-uri", "http://127.0.0.1:1/login/generic_oauth", "--redirect-uri", "app.immich:///oauth-callback", "--roles", "family", "--json"],
    { DATA_DIR: dataDir },
  );
  expect(added.code).toBe(0);
  const printed = JSON.parse(added.stdout);
  expect(Object.keys(printed)).toEqual(["client_id", "client_secret"]);
  expect(printed.client_id).toBe("grafana");
  secret = printed.client_secret;
  ({ url, server } = await serveIssuer(dataDir));
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(dataDir);
});

const apiToken = async () => {
  const response = await fetch(`${url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: PASSWORD }) });
  expect(response.status).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
};

describe("clients from the CLI", () => {
  test("the secret is printed once and stored only as a hash; list shows no secret; a bad redirect URI is refused in one line", async () => {
    const stored = await runCli(["oidc", "client", "list"], { DATA_DIR: dataDir });
    expect(stored.code).toBe(0);
    expect(stored.stdout).toMatch(/^CLIENT_ID +TYPE +TRUSTED +REDIRECT URIS +ALLOWED\ngrafana +confidential +no +http:\/\/127\.0\.0\.1:1\/login\/generic_oauth app\.immich:\/\/\/oauth-callback +role:family\n$/);
    expect(stored.stdout).not.toContain(secret);
    const bad = await runCli(["oidc", "client", "add", "evil", "--redirect-uri", "javascript:alert(1)"], { DATA_DIR: dataDir });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("latchkey: The request is not valid. (redirect_uris.0: The javascript: scheme is not allowed.)\n");
    const missing = await runCli(["oidc", "client", "add", "empty"], { DATA_DIR: dataDir });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("redirect_uris: Must be a list of 1 to 20 URIs.");
  });
});

describe("discovery, keys and userinfo", () => {
  test("openid-client discovers the issuer (exactly PUBLIC_URL); the ID token key set is served from jwks_uri", async () => {
    const config = await oidcClient.discovery(new URL(url), "grafana", secret, undefined, { execute: [oidcClient.allowInsecureRequests] });
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(url);
    expect(metadata.id_token_signing_alg_values_supported).toEqual(["RS256", "ES256", "EdDSA"]);
    expect(metadata.jwks_uri).toBe(`${url}/.well-known/jwks.json`);
    // An access token from the password API verifies from the issuer's jwks_uri once JWT_ALG is asymmetric; with
    // HS256 (this server) the set holds no key for it, and jose refuses it.
    const keySet = createRemoteJWKSet(new URL(metadata.jwks_uri!));
    await expect(jwtVerify(await apiToken(), keySet, { issuer: url })).rejects.toThrow();
  });

  test("userinfo refuses Latchkey's own access token and anything that is not a client's token, by GET and POST", async () => {
    const token = await apiToken();
    for (const method of ["GET", "POST"]) {
      const response = await fetch(`${url}/oidc/userinfo`, { method, headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: string }).error).toBe("invalid_token");
    }
    const refused = await fetch(`${url}/oidc/userinfo`, { headers: { authorization: "Bearer not-a-token" } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toBe('Bearer realm="latchkey", error="invalid_token"');
  });
});

describe("token endpoint refusals", () => {
  const post = (body: Record<string, string>, authorization?: string) =>
    fetch(`${url}/oidc/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...(authorization ? { authorization } : {}) },
      body: new URLSearchParams(body),
    });

  test("wrong secret 401 invalid_client; unknown code 400 invalid_grant; unknown grant type; no-store", async () => {
    const wrong = await post({ grant_type: "authorization_code", code: "x", redirect_uri: "http://127.0.0.1:1/login/generic_oauth" }, `Basic ${btoa("grafana:nope")}`);
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: "invalid_client", error_description: "Unknown client or wrong client secret.", message: "Unknown client or wrong client secret." });
    const unknown = await post({ grant_type: "authorization_code", code: "x", redirect_uri: "http://127.0.0.1:1/login/generic_oauth", client_id: "grafana", client_secret: secret });
    expect(unknown.status).toBe(400);
    expect(unknown.headers.get("cache-control")).toBe("no-store");
    expect(((await unknown.json()) as { error: string }).error).toBe("invalid_grant");
    const grant = await post({ grant_type: "password", client_id: "grafana", client_secret: secret });
    expect(((await grant.json()) as { error: string }).error).toBe("unsupported_grant_type");
  });

  test("an unregistered redirect URI is an error page through the binary, never a redirect", async () => {
    const response = await fetch(`${url}/oidc/authorize?client_id=grafana&response_type=code&scope=openid&redirect_uri=${encodeURIComponent("https://evil.example/cb")}`, { redirect: "manual" });
    expect(response.status).toBe(400);
    expect(response.headers.get("location")).toBeNull();
    expect(response.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(await response.text()).toContain("Invalid redirect URI");
  });
});

/** The authorization request in `jar`'s browser, signing in as alice when asked (test/support/oidc.ts). */
const authorizeOverHttp = (authorizationUrl: URL, jar: CookieJar, base = url) => authorizeAs(authorizationUrl, jar, base, "alice", PASSWORD);

describe("a relying party through the real sign-in page (openid-client, over HTTP)", () => {
  const CALLBACK = "http://127.0.0.1:1/login/generic_oauth";

  test("confidential client: discovery, code + PKCE, ID token verified from the JWKS, userinfo, refresh, RP-initiated logout", async () => {
    expect((await runCli(["oidc", "client", "add", "wiki", "--redirect-uri", CALLBACK, "--post-logout-redirect-uri", "http://127.0.0.1:1/bye", "--json"], { DATA_DIR: dataDir })).code).toBe(0);
    const wiki = JSON.parse((await runCli(["oidc", "client", "rotate-secret", "wiki", "--json"], { DATA_DIR: dataDir })).stdout) as { client_secret: string };
    const config = await oidcClient.discovery(new URL(url), "wiki", wiki.client_secret, undefined, { execute: [oidcClient.allowInsecureRequests] });
    const verifier = oidcClient.randomPKCECodeVerifier();
    const state = oidcClient.randomState();
    const nonce = oidcClient.randomNonce();
    const jar = cookieJar();
    const callback = await authorizeOverHttp(
      oidcClient.buildAuthorizationUrl(config, { redirect_uri: CALLBACK, scope: "openid profile email groups offline_access", code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", state, nonce }),
      jar,
    );
    const tokens = await oidcClient.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    const keySet = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    const { payload } = await jwtVerify(tokens.id_token!, keySet, { issuer: url, audience: "wiki", algorithms: ["RS256"] });
    expect(payload).toMatchObject({ nonce, preferred_username: "alice", email: "alice@example.com", groups: ["family"] });
    const info = await oidcClient.fetchUserInfo(config, tokens.access_token, payload.sub!);
    expect(info.groups).toEqual(["family"]);
    const refreshed = await oidcClient.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.claims()!.sub).toBe(payload.sub!);

    const logout = await fetch(oidcClient.buildEndSessionUrl(config, { id_token_hint: refreshed.id_token!, post_logout_redirect_uri: "http://127.0.0.1:1/bye", state: "bye" }), {
      headers: { cookie: jar.header() },
      redirect: "manual",
    });
    expect(logout.status).toBe(303);
    expect(logout.headers.get("location")).toBe("http://127.0.0.1:1/bye?state=bye");
    jar.take(logout);
    // The Latchkey session ended too: the next authorization asks for the password again.
    const again = await fetch(oidcClient.buildAuthorizationUrl(config, { redirect_uri: CALLBACK, scope: "openid", code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" }), {
      headers: { cookie: jar.header() },
      redirect: "manual",
    });
    expect(again.headers.get("location")).toStartWith("/login?rd=");
    await expect(oidcClient.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
  });

  test("public client (Immich's mobile redirect URI): none + PKCE", async () => {
    expect((await runCli(["oidc", "client", "add", "immich-app", "--public", "--trusted", "--redirect-uri", "app.immich:///oauth-callback"], { DATA_DIR: dataDir })).code).toBe(0);
    const config = await oidcClient.discovery(new URL(url), "immich-app", undefined, oidcClient.None(), { execute: [oidcClient.allowInsecureRequests] });
    const verifier = oidcClient.randomPKCECodeVerifier();
    const callback = await authorizeOverHttp(
      oidcClient.buildAuthorizationUrl(config, { redirect_uri: "app.immich:///oauth-callback", scope: "openid profile", code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", state: "s" }),
      cookieJar(),
    );
    expect(callback.protocol).toBe("app.immich:");
    const tokens = await oidcClient.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: "s" });
    expect(tokens.claims()!.preferred_username).toBe("alice");
  });
});

describe("the admin page's applications", () => {
  /**
   * Posts the form at `action` from the page at `from` (its CSRF token taken from there), then follows the redirect
   * back (POST/redirect/GET) and answers the page that shows the form's message.
   */
  const form = async (jar: CookieJar, action: string, fields: Record<string, string>, from = "/admin/applications") => {
    const page = await fetch(`${url}${from}`, { headers: { cookie: jar.header() } });
    expect(page.status).toBe(200);
    const html = await page.text();
    const response = await fetch(`${url}${action}`, {
      method: "POST",
      headers: { cookie: jar.header(), origin: url, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: csrfOf(html, action), ...fields }),
      redirect: "manual",
    });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/admin/applications#clients");
    jar.take(response);
    const back = await fetch(`${url}/admin/applications`, { headers: { cookie: jar.header() } });
    expect(back.status).toBe(200);
    jar.take(back);
    return back.text();
  };

  test("an admin registers a client (secret shown once), replaces its secret and deletes it; others are refused", async () => {
    const jar = cookieJar();
    expect(await browserSignIn(`${url}/login?rd=%2Fadmin%2Fapplications`, "root", PASSWORD, jar)).toBe(`${url}/admin/applications`);
    const created = await form(jar, "/admin/applications", {
      client_id: "forgejo",
      redirect_uris: "https://git.example.com/user/oauth2/latchkey/callback",
      allowed_roles: "family",
      refresh: "true",
      id_token_alg: "ES256",
    });
    const secret = /<p class="secret" id="client-secret">(lkcs_[\w-]+)<\/p>/.exec(created)?.[1];
    expect(secret).toBeString();
    expect(created).toContain("Application forgejo registered.");
    const { accessToken: rootToken } = await apiSignIn(url, "root", PASSWORD);
    const registered = (await (await fetch(`${url}/api/v1/admin/oidc/clients`, { headers: { authorization: `Bearer ${rootToken}` } })).json()) as { clients: Record<string, unknown>[] };
    expect(registered.clients.find((client) => client.client_id === "forgejo")).toMatchObject({ refresh: true, machine: false, id_token_alg: "ES256", allowed_roles: ["family"] });
    // The secret works at the token endpoint (a wrong code, but the client is authenticated: invalid_grant, not invalid_client).
    const token = await fetch(`${url}/oidc/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${btoa(`forgejo:${secret}`)}` },
      body: new URLSearchParams({ grant_type: "authorization_code", code: "x", redirect_uri: "https://git.example.com/user/oauth2/latchkey/callback" }),
    });
    expect(((await token.json()) as { error: string }).error).toBe("invalid_grant");
    const listed = (await fetch(`${url}/admin/applications`, { headers: { cookie: jar.header() } }).then((r) => r.text()));
    expect(listed).toContain(`<span class="cut" title="forgejo">forgejo</span>`);
    expect(listed).not.toContain(secret!);
    const bad = await form(jar, "/admin/applications", { client_id: "x", redirect_uris: "javascript:alert(1)" });
    expect(bad).toContain("redirect_uris.0: The javascript: scheme is not allowed.");
    const badBackchannel = await form(jar, "/admin/applications", { client_id: "x", redirect_uris: "https://x.example/cb", backchannel_logout_uri: "https://x.example/logout#frag" });
    expect(badBackchannel).toContain("backchannel_logout_uri: Must not contain a fragment (#).");
    const rotated = await form(jar, "/admin/applications/secret", { client_id: "forgejo" });
    const rotatedSecret = /<p class="secret" id="client-secret">(lkcs_[\w-]+)<\/p>/.exec(rotated)?.[1];
    expect(rotatedSecret).toBeString();
    expect(rotatedSecret).not.toBe(secret);
    // Deleting asks first, on a page that names the application.
    const deleted = await form(jar, "/admin/applications/delete", { client_id: "forgejo" }, "/admin/applications/delete?client_id=forgejo");
    expect(deleted).toContain("Application forgejo deleted");
    expect(deleted).not.toContain(`<span class="cut" title="forgejo">forgejo</span>`);

    const member = cookieJar();
    await browserSignIn(`${url}/login`, "alice", PASSWORD, member);
    expect((await fetch(`${url}/admin/applications`, { headers: { cookie: member.header() } })).status).toBe(403);
  });
});

describe("OIDC_ID_TOKEN_ALG and JWT_ALG", () => {
  test("EdDSA ID tokens (RS256 for a client registered with --id-token-alg), ES256 first-party and EdDSA client access tokens, all verified from the issuer's JWKS", async () => {
    const otherDir = tempDataDir();
    expect((await runCli(["user", "add", "alice"], { DATA_DIR: otherDir }, PASSWORD)).code).toBe(0);
    const added = await runCli(["oidc", "client", "add", "app", "--trusted", "--redirect-uri", "http://127.0.0.1:1/cb", "--json"], { DATA_DIR: otherDir });
    const { client_secret: appSecret } = JSON.parse(added.stdout) as { client_secret: string };
    const legacy = await runCli(["oidc", "client", "add", "legacy", "--trusted", "--id-token-alg", "RS256", "--redirect-uri", "http://127.0.0.1:1/cb", "--json"], { DATA_DIR: otherDir });
    const { client_secret: legacySecret } = JSON.parse(legacy.stdout) as { client_secret: string };
    const badAlg = await runCli(["oidc", "client", "add", "bad", "--id-token-alg", "HS256", "--redirect-uri", "http://127.0.0.1:1/cb"], { DATA_DIR: otherDir });
    expect(badAlg.code).toBe(1);
    expect(badAlg.stderr).toContain("id_token_alg: Must be one of RS256, ES256, EdDSA.");
    const { url: base, server: other } = await serveIssuer(otherDir, { JWT_ALG: "ES256", OIDC_ID_TOKEN_ALG: "EdDSA" });
    try {
      /** A code flow at `clientId` (scope openid) in a new browser, signing in as alice. */
      const codeFlow = async (clientId: string, clientSecret: string) => {
        const config = await oidcClient.discovery(new URL(base), clientId, clientSecret, undefined, { execute: [oidcClient.allowInsecureRequests] });
        const verifier = oidcClient.randomPKCECodeVerifier();
        const callback = await authorizeOverHttp(
          oidcClient.buildAuthorizationUrl(config, { redirect_uri: "http://127.0.0.1:1/cb", scope: "openid", code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", state: "s" }),
          cookieJar(),
          base,
        );
        return { config, tokens: await oidcClient.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: "s" }) };
      };
      const { config, tokens } = await codeFlow("app", appSecret);
      expect(config.serverMetadata().id_token_signing_alg_values_supported).toEqual(["EdDSA", "RS256", "ES256"]);
      // A first-party sign-in makes the ES256 key (on first need) before the set is read.
      const own = await fetch(`${base}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: PASSWORD }) });
      const keySet = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
      expect((await jwtVerify(tokens.id_token!, keySet, { issuer: base, audience: "app", algorithms: ["EdDSA"] })).protectedHeader.alg).toBe("EdDSA");
      // The client's access token: RFC 9068, signed like the instance's ID tokens (OIDC_ID_TOKEN_ALG).
      const access = await jwtVerify(tokens.access_token, keySet, { issuer: base, audience: "app", algorithms: ["EdDSA"], typ: "at+jwt" });
      expect(access.payload).toMatchObject({ sub: tokens.claims()!.sub, client_id: "app", scope: "openid" });
      // Latchkey's own access token (JWT_ALG=ES256) verifies from the same set.
      expect((await jwtVerify(((await own.json()) as { access_token: string }).access_token, keySet, { issuer: base, algorithms: ["ES256"] })).protectedHeader.alg).toBe("ES256");

      // go-oidc, express-openid-connect and mod_auth_openidc verify only RS256: a client registered for it gets RS256.
      const { tokens: legacyTokens } = await codeFlow("legacy", legacySecret);
      // A fresh set: the RS256 key was made on first need, after the set above was fetched.
      const keysNow = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
      expect((await jwtVerify(legacyTokens.id_token!, keysNow, { issuer: base, audience: "legacy", algorithms: ["RS256"] })).protectedHeader.alg).toBe("RS256");
    } finally {
      await other.stop();
      removeDataDir(otherDir);
    }
  });
});
