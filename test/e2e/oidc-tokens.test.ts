/**
 * Tokens know their audience (issue 21), through the compiled binary with openid-client 6 as the relying party:
 * which token opens which door, claims by scope (and the consent page that lists them), refresh rules,
 * revocation and introspection with wrong clients, and machine clients.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createRemoteJWKSet, decodeJwt, jwtVerify } from "jose";
import * as oidcClient from "openid-client";
import { authorizeOverHttp, serveIssuer } from "../support/oidc";
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateHOTP } from "@oslojs/otp";
import { apiSignIn, cookieJar, csrfOf } from "../support/pages";
import { removeDataDir, runCli, tempDataDir, type SpawnedServer } from "../support/server";

const PASSWORD = "correct horse battery staple";
const CALLBACK = "http://127.0.0.1:1/callback";

let url: string;
let dataDir: string;
let server: SpawnedServer;
const secrets: Record<string, string> = {};

async function addClient(clientId: string, ...flags: string[]) {
  const added = await runCli(["oidc", "client", "add", clientId, ...(flags.includes("--machine") ? [] : ["--redirect-uri", CALLBACK]), ...flags, "--json"], { DATA_DIR: dataDir });
  expect(added.code).toBe(0);
  secrets[clientId] = (JSON.parse(added.stdout) as { client_secret: string }).client_secret;
}

beforeAll(async () => {
  dataDir = tempDataDir();
  expect((await runCli(["user", "add", "root", "--admin"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  expect((await runCli(["user", "add", "alice", "--email", "alice@example.com"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  expect((await runCli(["user", "roles", "alice", "family"], { DATA_DIR: dataDir })).code).toBe(0);
  await addClient("wiki", "--trusted");
  await addClient("other", "--trusted");
  await addClient("photos");
  await addClient("files", "--trusted", "--roles", "family", "--refresh");
  await addClient("jobs", "--machine");
  await addClient("spa", "--public", "--trusted");
  // Many sign-ins from one loopback address: the per-address limits are another file's subject.
  ({ url, server } = await serveIssuer(dataDir, { RATE_LIMIT: "off" }));
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(dataDir);
});

const relyingParty = (clientId: string) => oidcClient.discovery(new URL(url), clientId, secrets[clientId], undefined, { execute: [oidcClient.allowInsecureRequests] });

/** One browser per user: signed in through the real sign-in page once, then reused (as a person's browser is). */
const browsers = new Map<string, ReturnType<typeof cookieJar>>();
const browserOf = (login: string) => browsers.get(login) ?? browsers.set(login, cookieJar()).get(login)!;

/** A code flow for `login` at `clientId` with `scope`, through the real sign-in page; the consent page goes to `onConsent`. */
async function signInTo(clientId: string, login: string, scope: string, onConsent?: (html: string) => void) {
  const config = await relyingParty(clientId);
  const verifier = oidcClient.randomPKCECodeVerifier();
  const callback = await authorizeOverHttp(
    oidcClient.buildAuthorizationUrl(config, { redirect_uri: CALLBACK, scope, code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", state: "s" }),
    browserOf(login),
    url,
    login,
    PASSWORD,
    onConsent,
  );
  const tokens = await oidcClient.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: "s" });
  return { config, tokens };
}

/** A form POST to an endpoint of the provider, authenticated as `clientId` (Basic). */
async function clientPost(path: string, clientId: string, fields: Record<string, string> | string) {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${btoa(`${clientId}:${secrets[clientId]}`)}` },
    body: typeof fields === "string" ? fields : new URLSearchParams(fields),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
}

/** "200", or "401 invalid_token": the status and, for a refusal, its error code. */
async function answerOf(response: Response): Promise<string> {
  if (response.status < 300) return String(response.status);
  const body = (await response.json()) as { error?: string };
  return `${response.status} ${body.error}`;
}

type Kind = "first-party access" | "OIDC access" | "OIDC refresh" | "API key" | "ID token";
type Door = "API" | "admin API" | "forward auth" | "/refresh" | "/oidc/userinfo" | "/oidc/token";

/**
 * The audience matrix: what each door answers each kind of token (all of an admin, so that a refusal is about the
 * token, never the role). README.md's OpenID Connect section carries this same table (checked below).
 */
const MATRIX: Record<Kind, Record<Door, string>> = {
  "first-party access": { API: "200", "admin API": "200", "forward auth": "200", "/refresh": "401 invalid_refresh_token", "/oidc/userinfo": "401 invalid_token", "/oidc/token": "400 invalid_grant" },
  "OIDC access": { API: "401 invalid_token", "admin API": "401 invalid_token", "forward auth": "401 invalid_token", "/refresh": "401 invalid_refresh_token", "/oidc/userinfo": "200", "/oidc/token": "400 invalid_grant" },
  "OIDC refresh": { API: "401 invalid_token", "admin API": "401 invalid_token", "forward auth": "401 invalid_token", "/refresh": "401 invalid_token", "/oidc/userinfo": "401 invalid_token", "/oidc/token": "200" },
  "API key": { API: "200", "admin API": "403 session_required", "forward auth": "200", "/refresh": "401 invalid_refresh_token", "/oidc/userinfo": "401 invalid_token", "/oidc/token": "400 invalid_grant" },
  "ID token": { API: "401 invalid_token", "admin API": "401 invalid_token", "forward auth": "401 invalid_token", "/refresh": "401 invalid_refresh_token", "/oidc/userinfo": "401 invalid_token", "/oidc/token": "400 invalid_grant" },
};
const DOORS: Door[] = ["API", "admin API", "forward auth", "/refresh", "/oidc/userinfo", "/oidc/token"];

/** The table as README.md shows it. */
function markdown(header: string, rows: [string, string[]][]): string {
  const columns = header.split(" | ");
  return [`| ${header} |`, `|${columns.map(() => "---").join("|")}|`, ...rows.map(([name, cells]) => `| ${[name, ...cells].join(" | ")} |`)].join("\n");
}
const readme = () => readFileSync(new URL("../../README.md", import.meta.url), "utf8");

describe("the audience matrix", () => {
  test("each kind of token at each door answers as the table says (and README.md shows the same table)", async () => {
    const { tokens } = await signInTo("wiki", "root", "openid profile offline_access");
    const { accessToken, apiKey } = await apiSignIn(url, "root", PASSWORD, { createKey: "matrix" });
    const presented: Record<Kind, string> = {
      "first-party access": accessToken,
      "OIDC access": tokens.access_token,
      "OIDC refresh": tokens.refresh_token!,
      "API key": apiKey!,
      "ID token": tokens.id_token!,
    };
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    const knock: Record<Door, (token: string) => Promise<Response>> = {
      API: (token) => fetch(`${url}/api/v1/auth/me`, { headers: bearer(token) }),
      "admin API": (token) => fetch(`${url}/api/v1/admin/users`, { headers: bearer(token) }),
      "forward auth": (token) => fetch(`${url}/api/v1/auth/forward`, { headers: bearer(token) }),
      "/refresh": (token) => fetch(`${url}/api/v1/auth/refresh`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ refresh_token: token }) }),
      "/oidc/userinfo": (token) => fetch(`${url}/oidc/userinfo`, { headers: bearer(token) }),
      "/oidc/token": (token) =>
        fetch(`${url}/oidc/token`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${btoa(`wiki:${secrets.wiki}`)}` },
          body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: token }),
        }),
    };
    const actual = {} as Record<Kind, Record<Door, string>>;
    // Door by door in the table's order: /oidc/token (which spends the refresh token) comes last.
    for (const kind of Object.keys(MATRIX) as Kind[]) actual[kind] = {} as Record<Door, string>;
    for (const door of DOORS) for (const kind of Object.keys(MATRIX) as Kind[]) actual[kind][door] = await answerOf(await knock[door](presented[kind]));
    expect(actual).toEqual(MATRIX);

    // An OIDC token cannot mint an API key (which would outlive the consent).
    const minted = await fetch(`${url}/api/v1/auth/keys`, { method: "POST", headers: { "content-type": "application/json", ...bearer(tokens.access_token) }, body: JSON.stringify({ name: "escape" }) });
    expect(await answerOf(minted)).toBe("401 invalid_token");

    expect(readme()).toContain(markdown(`token \\ door | ${DOORS.join(" | ")}`, (Object.keys(MATRIX) as Kind[]).map((kind) => [kind, DOORS.map((door) => MATRIX[kind][door])])));
  });

  test("the client's access token is an RFC 9068 JWT a resource server verifies offline from jwks_uri", async () => {
    const { config, tokens } = await signInTo("wiki", "alice", "openid email offline_access");
    const keySet = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, keySet, { issuer: url, audience: "wiki", typ: "at+jwt", algorithms: ["RS256"] });
    expect(protectedHeader.typ).toBe("at+jwt");
    expect(Object.keys(payload).sort()).toEqual(["amr", "aud", "auth_time", "client_id", "exp", "iat", "iss", "jti", "scope", "sid", "sub"]);
    expect(payload).toMatchObject({ aud: "wiki", client_id: "wiki", scope: "openid email offline_access", sub: tokens.claims()!.sub, amr: ["pwd"] });
    // auth_time is the password sign-in's, in the ID token and the access token alike.
    expect(payload.auth_time).toBe(tokens.claims()!.auth_time!);
    expect(tokens.claims()!.amr).toEqual(["pwd"]);
    // userinfo takes it by GET (openid-client) and by POST with the bearer header.
    const posted = await fetch(`${url}/oidc/userinfo`, { method: "POST", headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(posted.status).toBe(200);
    expect(posted.headers.get("cache-control")).toBe("no-store");
    expect(await posted.json()).toEqual({ sub: tokens.claims()!.sub, email: "alice@example.com", email_verified: false });
    // RFC 8707: a resource asked for becomes the audience, and such a token is no token at userinfo.
    const forApi = await oidcClient.refreshTokenGrant(config, tokens.refresh_token!, { resource: "https://api.example/" });
    expect((await jwtVerify(forApi.access_token, keySet, { issuer: url, audience: "https://api.example/", typ: "at+jwt" })).payload.client_id).toBe("wiki");
    expect(await answerOf(await fetch(`${url}/oidc/userinfo`, { headers: { authorization: `Bearer ${forApi.access_token}` } }))).toBe("401 invalid_token");
  });
});

describe("amr and auth_time", () => {
  test("a sign-in with a second step says so: amr pwd, otp, mfa (RFC 8176), and auth_time is that sign-in's", async () => {
    expect((await runCli(["user", "add", "carol"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
    const { accessToken } = await apiSignIn(url, "carol", PASSWORD);
    const api = (path: string, json: unknown) =>
      fetch(`${url}/api/v1/auth${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${accessToken}` }, body: JSON.stringify(json) }).then((r) => r.json() as Promise<Record<string, any>>);
    const { secret } = await api("/mfa/totp", {});
    const code = generateHOTP(decodeBase32IgnorePadding(secret), BigInt(Math.floor(Date.now() / 30_000)), 6);
    const { recovery_codes: recovery } = await api("/mfa/totp/confirm", { code });

    const config = await relyingParty("wiki");
    const verifier = oidcClient.randomPKCECodeVerifier();
    const jar = cookieJar();
    const authorization = oidcClient.buildAuthorizationUrl(config, { redirect_uri: CALLBACK, scope: "openid", code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", state: "s" });
    const toLogin = await fetch(authorization, { redirect: "manual" });
    const page = await fetch(`${url}${toLogin.headers.get("location")}`, { redirect: "manual" });
    jar.take(page);
    const form = await page.text();
    const rd = /name="rd" value="([^"]*)"/.exec(form)![1]!.replaceAll("&amp;", "&");
    const post = (path: string, fields: Record<string, string>) =>
      fetch(`${url}${path}`, { method: "POST", headers: { cookie: jar.header(), origin: url, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields), redirect: "manual" });
    const before = Math.floor(Date.now() / 1000);
    const step = await post("/login", { csrf: csrfOf(form), login: "carol", password: PASSWORD, rd });
    expect(step.status).toBe(200);
    const second = await step.text();
    const hidden = (name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(second)![1]!.replaceAll("&amp;", "&");
    const verified = await post("/login/verify", { csrf: csrfOf(second, "/login/verify"), challenge_id: hidden("challenge_id"), methods: hidden("methods"), rd: hidden("rd"), recovery_code: recovery[0] });
    expect(verified.status).toBe(303);
    jar.take(verified);
    const back = await fetch(new URL(verified.headers.get("location")!, url), { headers: { cookie: jar.header() }, redirect: "manual" });
    expect(back.status).toBe(302);
    const tokens = await oidcClient.authorizationCodeGrant(config, new URL(back.headers.get("location")!), { pkceCodeVerifier: verifier, expectedState: "s" });
    expect(tokens.claims()!.amr).toEqual(["pwd", "otp", "mfa"]);
    expect(tokens.claims()!.auth_time).toBeGreaterThanOrEqual(before);
    expect(decodeJwt(tokens.access_token).amr).toEqual(["pwd", "otp", "mfa"]);
  });
});

describe("a cross-domain handoff authenticates nobody", () => {
  test("prompt=login is not satisfied by a session handed off from another sign-in host: the password is asked", async () => {
    const otherDir = tempDataDir();
    expect((await runCli(["user", "add", "dana"], { DATA_DIR: otherDir }, PASSWORD)).code).toBe(0);
    const added = await runCli(["oidc", "client", "add", "wiki", "--trusted", "--redirect-uri", CALLBACK, "--json"], { DATA_DIR: otherDir });
    const wikiSecret = (JSON.parse(added.stdout) as { client_secret: string }).client_secret;
    // Two sign-in hosts of one server: 127.0.0.1 (PUBLIC_URL, the issuer) and localhost (another "root domain").
    const { url: issuer, server: other } = await serveIssuer(otherDir, (port) => ({ SIGN_IN_URLS: `http://localhost:${port}`, RATE_LIMIT: "off" }));
    const second = issuer.replace("127.0.0.1", "localhost");
    try {
      // A browser: one cookie jar per host, redirects followed until a page, or the client's callback.
      const jars = new Map<string, ReturnType<typeof cookieJar>>();
      const jarOf = (target: URL) => jars.get(target.host) ?? jars.set(target.host, cookieJar()).get(target.host)!;
      async function browse(start: string, init: RequestInit = {}) {
        let target = new URL(start);
        let response = await fetch(target, { ...init, headers: { ...(init.headers as Record<string, string>), cookie: jarOf(target).header() }, redirect: "manual" });
        jarOf(target).take(response);
        for (let hops = 0; response.status >= 300 && response.status < 400 && hops < 20; hops++) {
          target = new URL(response.headers.get("location")!, target);
          if (target.href.startsWith(CALLBACK)) break;
          response = await fetch(target, { headers: { cookie: jarOf(target).header() }, redirect: "manual" });
          jarOf(target).take(response);
        }
        return { target, response };
      }
      // Dana signs in with her password on each host (two sessions of her own, as on two root domains).
      for (const host of [issuer, second]) {
        const form = await browse(`${host}/login?handoff=none`);
        expect(form.target.origin).toBe(host);
        const signedIn = await browse(`${host}/login`, {
          method: "POST",
          headers: { origin: host, "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ csrf: csrfOf(await form.response.text()), login: "dana", password: PASSWORD }),
        });
        expect(signedIn.target.href).toBe(`${host}/account`);
      }

      const config = await oidcClient.discovery(new URL(issuer), "wiki", wikiSecret, undefined, { execute: [oidcClient.allowInsecureRequests] });
      const challenge = await oidcClient.calculatePKCECodeChallenge(oidcClient.randomPKCECodeVerifier());
      const authorize = (params: Record<string, string>) =>
        oidcClient.buildAuthorizationUrl(config, { redirect_uri: CALLBACK, scope: "openid", code_challenge: challenge, code_challenge_method: "S256", state: "s", ...params }).href;
      expect((await browse(authorize({}))).target.href).toStartWith(`${CALLBACK}?code=`);
      // prompt=login signs the issuer's host out and asks again; the sign-in page first asks the other host, whose
      // session hands off a new one here. That one carries the old sign-in, so it does not count: the password is asked.
      const again = await browse(authorize({ prompt: "login" }));
      expect(again.target.href).not.toStartWith(CALLBACK);
      expect(again.response.status).toBe(200);
      expect(await again.response.text()).toContain('name="password"');
    } finally {
      expect(await other.stop()).toBe(0);
      removeDataDir(otherDir);
    }
  });
});

describe("claims follow the scopes", () => {
  /** Scope → the claims of the ID token and userinfo (beyond the protocol's), as in README.md. */
  const CLAIMS: [string, string[]][] = [
    ["openid", ["sub"]],
    ["openid profile", ["name", "preferred_username", "sub"]],
    ["openid email", ["email", "email_verified", "sub"]],
    ["openid groups", ["groups", "sub"]],
    ["openid profile email groups", ["email", "email_verified", "groups", "name", "preferred_username", "sub"]],
  ];
  const PROTOCOL = new Set(["iss", "aud", "exp", "iat", "auth_time", "amr", "nonce", "sid"]);

  test("the ID token and userinfo carry exactly the claims of the scopes granted, and the consent page lists exactly those", async () => {
    for (const [scope, expected] of CLAIMS) {
      let listed: string[] = [];
      const { config, tokens } = await signInTo("photos", "alice", scope, (html) => {
        listed = [...html.slice(html.indexOf("<ul>"), html.indexOf("</ul>")).matchAll(/<li>([^<]*)<\/li>/g)].map((match) => match[1]!);
      });
      const idClaims = Object.keys(tokens.claims()!).filter((claim) => !PROTOCOL.has(claim)).sort();
      expect({ scope, idClaims }).toEqual({ scope, idClaims: expected });
      const info = await oidcClient.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
      expect({ scope, userinfo: Object.keys(info).sort() }).toEqual({ scope, userinfo: expected });
      // One line per thing received: the identifier, then one per scope beyond openid.
      const lines = ["an identifier for your account (not your username)"];
      if (scope.includes("profile")) lines.push("your name and username (alice, alice)");
      if (scope.includes("email")) lines.push("your email address (alice@example.com) and whether it is verified");
      if (scope.includes("groups")) lines.push("your groups (family)");
      expect({ scope, listed }).toEqual({ scope, listed: lines });
    }
    expect(readme()).toContain(markdown("scope | claims (ID token and userinfo)", CLAIMS.map(([scope, claims]) => [`\`${scope}\``, [claims.map((claim) => `\`${claim}\``).join(", ")]])));
  });
});

describe("refresh", () => {
  test("a refresh token only for offline_access, or for a client registered with --refresh", async () => {
    expect((await signInTo("wiki", "alice", "openid")).tokens.refresh_token).toBeUndefined();
    expect((await signInTo("wiki", "alice", "openid offline_access")).tokens.refresh_token).toBeString();
    expect((await signInTo("files", "alice", "openid")).tokens.refresh_token).toBeString();
  });

  test("a wider scope is invalid_scope; a narrower one is granted", async () => {
    const { config, tokens } = await signInTo("wiki", "alice", "openid profile offline_access");
    await expect(oidcClient.refreshTokenGrant(config, tokens.refresh_token!, { scope: "openid profile email" })).rejects.toMatchObject({ error: "invalid_scope" });
    const narrowed = await oidcClient.refreshTokenGrant(config, tokens.refresh_token!, { scope: "openid" });
    expect(narrowed.scope).toBe("openid");
    expect(decodeJwt(narrowed.access_token).scope).toBe("openid");
    expect(narrowed.claims()!.preferred_username).toBeUndefined();
  });

  test("refresh re-checks what authorize checked: a user who lost the client's role, or was disabled, gets invalid_grant, and the grant ends", async () => {
    const { config, tokens } = await signInTo("files", "alice", "openid");
    const refreshed = await oidcClient.refreshTokenGrant(config, tokens.refresh_token!);
    const admin = await apiSignIn(url, "root", PASSWORD);
    const aliceId = tokens.claims()!.sub;
    const demote = (roles: string[]) =>
      fetch(`${url}/api/v1/admin/users/${aliceId}`, { method: "PATCH", headers: { "content-type": "application/json", authorization: `Bearer ${admin.accessToken}` }, body: JSON.stringify({ roles }) });
    expect((await demote([])).status).toBe(200);
    try {
      await expect(oidcClient.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
      // The grant ended with it: its access token is refused at userinfo too.
      expect(await answerOf(await fetch(`${url}/oidc/userinfo`, { headers: { authorization: `Bearer ${refreshed.access_token}` } }))).toBe("401 invalid_token");
    } finally {
      expect((await demote(["family"])).status).toBe(200);
    }
    // A disabled user's grant refreshes no more either (and stays ended once the account is enabled again).
    const again = await signInTo("files", "alice", "openid");
    const disable = (disabled: boolean) =>
      fetch(`${url}/api/v1/admin/users/${aliceId}`, { method: "PATCH", headers: { "content-type": "application/json", authorization: `Bearer ${admin.accessToken}` }, body: JSON.stringify({ disabled }) });
    expect((await disable(true)).status).toBe(200);
    expect((await disable(false)).status).toBe(200);
    await expect(oidcClient.refreshTokenGrant(again.config, again.tokens.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
  });

  test("withdrawing consent ends the grant's access and refresh tokens", async () => {
    const { config, tokens } = await signInTo("photos", "alice", "openid offline_access");
    const { accessToken } = await apiSignIn(url, "alice", PASSWORD);
    const withdrawn = await fetch(`${url}/api/v1/auth/oidc/consents/photos`, { method: "DELETE", headers: { authorization: `Bearer ${accessToken}` } });
    expect(withdrawn.status).toBe(204);
    expect(await answerOf(await fetch(`${url}/oidc/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } }))).toBe("401 invalid_token");
    await expect(oidcClient.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
  });

  test("repeated parameters in a token request are invalid_request, whichever parameter", async () => {
    const { tokens } = await signInTo("wiki", "alice", "openid offline_access");
    for (const form of [
      `grant_type=refresh_token&grant_type=refresh_token&refresh_token=${tokens.refresh_token}`,
      `grant_type=refresh_token&refresh_token=${tokens.refresh_token}&refresh_token=x`,
      `grant_type=refresh_token&refresh_token=${tokens.refresh_token}&scope=openid&scope=openid%20offline_access`,
    ]) {
      const answer = await clientPost("/oidc/token", "wiki", form);
      expect({ form, status: answer.status, error: answer.body.error }).toEqual({ form, status: 400, error: "invalid_request" });
    }
    // Nothing was spent: the token still works once.
    expect((await clientPost("/oidc/token", "wiki", { grant_type: "refresh_token", refresh_token: tokens.refresh_token! })).status).toBe(200);
  });
});

describe("revocation and introspection", () => {
  test("introspection: the client's own tokens are active; another client, a wrong secret and a public client learn nothing", async () => {
    const { tokens } = await signInTo("wiki", "alice", "openid profile offline_access");
    const own = await clientPost("/oidc/introspect", "wiki", { token: tokens.access_token });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ active: true, client_id: "wiki", scope: "openid profile offline_access", username: "alice", token_type: "Bearer", sub: tokens.claims()!.sub, aud: ["wiki"], iss: url });
    expect((await clientPost("/oidc/introspect", "wiki", { token: tokens.refresh_token! })).body).toMatchObject({ active: true, client_id: "wiki", sub: tokens.claims()!.sub });
    for (const token of [tokens.access_token, tokens.refresh_token!, tokens.id_token!, "nonsense"])
      expect(await clientPost("/oidc/introspect", "other", { token })).toEqual({ status: 200, body: { active: false } });
    const wrongSecret = await fetch(`${url}/oidc/introspect`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${btoa("wiki:lkcs_wrong")}` },
      body: new URLSearchParams({ token: tokens.access_token }),
    });
    expect(await answerOf(wrongSecret)).toBe("401 invalid_client");
    const byPublic = await fetch(`${url}/oidc/introspect`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ client_id: "spa", token: tokens.access_token }) });
    expect(await answerOf(byPublic)).toBe("401 invalid_client");
  });

  test("revocation: another client is refused; the client's own revocation ends the whole grant; unknown tokens are 200", async () => {
    const { config, tokens } = await signInTo("wiki", "alice", "openid offline_access");
    expect(await clientPost("/oidc/revoke", "other", { token: tokens.refresh_token! })).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    expect(await clientPost("/oidc/revoke", "other", { token: tokens.access_token })).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    expect(await clientPost("/oidc/revoke", "wiki", { token: "nonsense", token_type_hint: "refresh_token" })).toEqual({ status: 200, body: {} });
    // Still live after the refused attempts.
    expect((await clientPost("/oidc/introspect", "wiki", { token: tokens.access_token })).body.active).toBe(true);
    expect(await clientPost("/oidc/revoke", "wiki", { token: tokens.refresh_token! })).toEqual({ status: 200, body: {} });
    expect((await clientPost("/oidc/introspect", "wiki", { token: tokens.access_token })).body).toEqual({ active: false });
    expect(await answerOf(await fetch(`${url}/oidc/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } }))).toBe("401 invalid_token");
    await expect(oidcClient.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
  });
});

describe("machine clients (client_credentials)", () => {
  test("a --machine client gets a token with aud and scope and no user; user doors refuse it; other clients cannot use the grant", async () => {
    const config = await relyingParty("jobs");
    const granted = await oidcClient.clientCredentialsGrant(config, { scope: "backup:read backup:write", resource: "https://backup.example/api" });
    expect(granted.scope).toBe("backup:read backup:write");
    expect(granted.refresh_token).toBeUndefined();
    expect(granted.id_token).toBeUndefined();
    const keySet = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    const { payload } = await jwtVerify(granted.access_token, keySet, { issuer: url, audience: "https://backup.example/api", typ: "at+jwt" });
    expect(Object.keys(payload).sort()).toEqual(["aud", "client_id", "exp", "iat", "iss", "jti", "scope", "sub"]);
    expect(payload).toMatchObject({ sub: "jobs", client_id: "jobs", scope: "backup:read backup:write" });
    for (const [path, expected] of [["/api/v1/auth/me", "401 invalid_token"], ["/oidc/userinfo", "401 invalid_token"], ["/api/v1/auth/forward", "401 invalid_token"]] as const)
      expect({ path, answer: await answerOf(await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${granted.access_token}` } })) }).toEqual({ path, answer: expected });
    // The resource server it was issued for may introspect it only if it is a client named in aud; jobs itself may.
    expect((await clientPost("/oidc/introspect", "jobs", { token: granted.access_token })).body).toMatchObject({ active: true, sub: "jobs", aud: ["https://backup.example/api"] });
    expect((await clientPost("/oidc/introspect", "wiki", { token: granted.access_token })).body).toEqual({ active: false });

    expect((await clientPost("/oidc/token", "jobs", { grant_type: "client_credentials", scope: "openid" })).body.error).toBe("invalid_scope");
    expect((await clientPost("/oidc/token", "jobs", { grant_type: "client_credentials", resource: "not a uri" })).body.error).toBe("invalid_target");
    expect((await clientPost("/oidc/token", "jobs", { grant_type: "authorization_code", code: "x", redirect_uri: CALLBACK })).body.error).toBe("unauthorized_client");
    expect((await clientPost("/oidc/token", "wiki", { grant_type: "client_credentials" })).body.error).toBe("unauthorized_client");
    const listed = await runCli(["oidc", "client", "list"], { DATA_DIR: dataDir });
    expect(listed.stdout).toMatch(/\njobs +machine +no +everyone\n/);
  });
});
