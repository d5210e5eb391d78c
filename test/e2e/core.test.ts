import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { bearer, call } from "../support/http";
import { BINARY, freePort, removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";

const PASSWORD = "a long passphrase";
const MODES = ["bearer", "header", "cookie"] as const;
type Mode = (typeof MODES)[number];

/** The Set-Cookie attributes of one cookie, by cookie name. */
function cookieAttributes(response: Response): Record<string, { value: string; attributes: string[] }> {
  const cookies: Record<string, { value: string; attributes: string[] }> = {};
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(";").map((part) => part.trim());
    const [name, value] = pair!.split(/=(.*)/s) as [string, string];
    cookies[name] = { value, attributes };
  }
  return cookies;
}

/** A browser-like client for one delivery mode: keeps cookies, copies the `Token` header, sends Origin. */
class Client {
  cookies = new Map<string, string>();
  token: string | undefined;
  constructor(
    readonly server: RunningServer,
    readonly mode: Mode,
    readonly origin: string,
  ) {}

  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const all: Record<string, string> = { origin: this.origin, ...headers };
    if (body !== undefined) all["content-type"] = "application/json";
    if (this.cookies.size) all.cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
    if (this.token && this.mode === "bearer") all.authorization = `Bearer ${this.token}`;
    if (this.token && this.mode === "header") all.token = this.token;
    const response = await fetch(`${this.server.url}${path}`, { method, headers: all, body: body === undefined ? undefined : JSON.stringify(body) });
    for (const [name, { value, attributes }] of Object.entries(cookieAttributes(response))) {
      if (attributes.includes("Max-Age=0")) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await response.text();
    const json = text ? JSON.parse(text) : undefined;
    if (this.mode === "header" && response.headers.get("token")) this.token = response.headers.get("token")!;
    else if (this.mode === "bearer" && json?.access_token) this.token = json.access_token;
    return { status: response.status, headers: response.headers, body: json, response };
  }
}

for (const mode of MODES) {
  describe(`TOKEN_DELIVERY=${mode}`, () => {
    let server: RunningServer;
    let origin: string;
    beforeAll(async () => {
      server = await startServer({ TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true", RATE_LIMIT: "off", ACCESS_TOKEN_TTL: "15m", REFRESH_TOKEN_TTL: "7d" });
      origin = `http://localhost:${server.port}`;
    });
    afterAll(async () => {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    });

    test("register, then /me and /validate with the delivered credential", async () => {
      const client = new Client(server, mode, origin);
      const registered = await client.request("POST", "/api/v1/auth/register", { username: `Reg-${mode}`, password: PASSWORD, email: `Reg-${mode}@Example.com` });
      expect(registered.status).toBe(201);
      expect(registered.headers.get("cache-control")).toBe("no-store");
      expect(registered.body.user).toMatchObject({ username: `reg-${mode}`, email: `reg-${mode}@example.com`, email_verified: false, roles: [] });
      expect(registered.body.expires_in).toBe(900);
      if (mode === "cookie") {
        expect(registered.body.access_token).toBeUndefined();
        expect(registered.body.refresh_token).toBeUndefined();
        expect(JSON.stringify(registered.body)).not.toContain(client.cookies.get("latchkey_access")!);
      } else {
        expect(registered.body.token_type).toBe("bearer");
        expect(registered.body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      }
      if (mode === "header") expect(registered.headers.get("token")).toBe(registered.body.access_token);

      const me = await client.request("GET", "/api/v1/auth/me");
      expect(me.status).toBe(200);
      expect(me.body.user.id).toBe(registered.body.user.id);
      const validate = await client.request("GET", "/api/v1/auth/validate");
      expect(validate.status).toBe(200);
      expect(Object.keys(validate.body).sort()).toEqual(["email", "expires_at", "metadata", "roles", "session_id", "user_id", "username"]);
      expect(validate.body.username).toBe(`reg-${mode}`);
    });

    test("login by username or email in any case; unknown user and wrong password answer byte-identically", async () => {
      await call(server.url, "POST", "/api/v1/auth/register", { username: `carla-${mode}`, password: PASSWORD, email: `carla-${mode}@example.com` }, { origin });
      for (const login of [`CARLA-${mode}`, `Carla-${mode}@EXAMPLE.com`]) {
        const byUsername = await call(server.url, "POST", "/api/v1/auth/login", { username: login, password: PASSWORD }, { origin });
        expect(byUsername.status).toBe(200);
        const byEmailField = await call(server.url, "POST", "/api/v1/auth/login", { email: login, password: PASSWORD }, { origin });
        expect(byEmailField.status).toBe(200);
      }
      const unknown = await fetch(`${server.url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json", origin }, body: JSON.stringify({ username: "nobody-at-all", password: PASSWORD }) });
      const wrong = await fetch(`${server.url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json", origin }, body: JSON.stringify({ username: `carla-${mode}`, password: "not the password" }) });
      expect(unknown.status).toBe(401);
      expect(wrong.status).toBe(401);
      const unknownBody = await unknown.text();
      expect(unknownBody).toBe(await wrong.text());
      expect(JSON.parse(unknownBody)).toEqual({ error: "invalid_credentials", message: "The username or password is incorrect." });
    });

    test("refresh rotates, the grace window returns the same child, logout kills the access token at once", async () => {
      const client = new Client(server, mode, origin);
      const registered = await client.request("POST", "/api/v1/auth/register", { username: `rot-${mode}`, password: PASSWORD });
      const firstRefresh = mode === "cookie" ? client.cookies.get("latchkey_refresh")! : registered.body.refresh_token;
      const refreshBody = mode === "cookie" ? {} : { refresh_token: firstRefresh };

      const rotated = await client.request("POST", "/api/v1/auth/refresh", refreshBody);
      expect(rotated.status).toBe(200);
      expect(rotated.headers.get("cache-control")).toBe("no-store");
      const child = mode === "cookie" ? client.cookies.get("latchkey_refresh")! : rotated.body.refresh_token;
      expect(child).not.toBe(firstRefresh);

      // A lost response: the parent again, within REFRESH_REUSE_INTERVAL, gets the very same child.
      if (mode === "cookie") client.cookies.set("latchkey_refresh", firstRefresh);
      const retried = await client.request("POST", "/api/v1/auth/refresh", refreshBody);
      expect(retried.status).toBe(200);
      expect(mode === "cookie" ? client.cookies.get("latchkey_refresh") : retried.body.refresh_token).toBe(child);

      expect((await client.request("GET", "/api/v1/auth/me")).status).toBe(200);
      const accessBeforeLogout = client.token ?? client.cookies.get("latchkey_access")!;
      const logout = await client.request("POST", "/api/v1/auth/logout");
      expect(logout.status).toBe(200);
      expect(logout.body).toEqual({ message: "Signed out." });
      if (mode === "header") expect(logout.headers.get("token")).toBeNull();

      const after = await call(server.url, "GET", "/api/v1/auth/me", undefined, bearer(accessBeforeLogout));
      expect(after.status).toBe(401);
      expect(after.body.error).toBe("invalid_token");
      expect(after.headers.get("www-authenticate")).toBe('Bearer realm="latchkey", error="invalid_token"');
      const refreshAfter = await call(server.url, "POST", "/api/v1/auth/refresh", { refresh_token: child });
      if (mode !== "cookie") {
        expect(refreshAfter.status).toBe(401);
        expect(refreshAfter.body.error).toBe("invalid_refresh_token");
      }
    });

    test("the OAuth2 /token endpoint: form and JSON, password and refresh_token grants, RFC 6749 errors", async () => {
      await call(server.url, "POST", "/api/v1/auth/register", { username: `oauth-${mode}`, password: PASSWORD }, { origin });
      const form = await fetch(`${server.url}/api/v1/auth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "password", username: `oauth-${mode}`, password: PASSWORD }),
      });
      expect(form.status).toBe(200);
      expect(form.headers.get("cache-control")).toBe("no-store");
      const granted = (await form.json()) as Record<string, unknown>;
      expect(Object.keys(granted).sort()).toEqual(["access_token", "expires_in", "refresh_token", "token_type"]);
      expect(granted.token_type).toBe("bearer");
      expect((await call(server.url, "GET", "/api/v1/auth/validate", undefined, bearer(granted.access_token as string))).status).toBe(200);

      const refreshed = await call(server.url, "POST", "/api/v1/auth/token", { grant_type: "refresh_token", refresh_token: granted.refresh_token });
      expect(refreshed.status).toBe(200);
      expect(refreshed.body.refresh_token).not.toBe(granted.refresh_token);

      const cases: [unknown, string][] = [
        [{ grant_type: "password", username: `oauth-${mode}`, password: "wrong password" }, "invalid_grant"],
        [{ grant_type: "refresh_token", refresh_token: "not-a-token" }, "invalid_grant"],
        [{ grant_type: "password", username: `oauth-${mode}` }, "invalid_request"],
        [{ username: "x", password: "y" }, "invalid_request"],
        [{ grant_type: "client_credentials" }, "unsupported_grant_type"],
      ];
      for (const [body, code] of cases) {
        const response = await call(server.url, "POST", "/api/v1/auth/token", body);
        expect(response.status).toBe(400);
        expect(response.body.error).toBe(code);
        expect(typeof response.body.error_description).toBe("string");
      }
    });
  });
}

describe("reuse detection (REFRESH_REUSE_INTERVAL=0)", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ ALLOW_REGISTRATION: "true", RATE_LIMIT: "off", REFRESH_REUSE_INTERVAL: "0" });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("a spent refresh token revokes the whole session", async () => {
    const session = await call(server.url, "POST", "/api/v1/auth/register", { username: "reuser", password: PASSWORD });
    const rotated = await call(server.url, "POST", "/api/v1/auth/refresh", { refresh_token: session.body.refresh_token });
    expect(rotated.status).toBe(200);
    const reused = await call(server.url, "POST", "/api/v1/auth/refresh", { refresh_token: session.body.refresh_token });
    expect(reused.status).toBe(401);
    expect(reused.body).toEqual({ error: "refresh_token_reused", message: "This refresh token was already used; the session has been revoked." });
    const child = await call(server.url, "POST", "/api/v1/auth/refresh", { refresh_token: rotated.body.refresh_token });
    expect(child.status).toBe(401);
    expect(child.body.error).toBe("invalid_refresh_token");
    expect((await call(server.url, "GET", "/api/v1/auth/me", undefined, bearer(rotated.body.access_token))).status).toBe(401);
  });

  test("two concurrent refreshes with one token leave exactly one live branch", async () => {
    const session = await call(server.url, "POST", "/api/v1/auth/register", { username: "racer", password: PASSWORD });
    const results = await Promise.all(
      [0, 1].map(() => call(server.url, "POST", "/api/v1/auth/refresh", { refresh_token: session.body.refresh_token })),
    );
    const statuses = results.map((result) => result.status).sort();
    expect(statuses).toEqual([200, 401]);
    // With no grace window the loser is a reuse: the session is gone, so no branch stays alive.
    const winner = results.find((result) => result.status === 200)!;
    const next = await call(server.url, "POST", "/api/v1/auth/refresh", { refresh_token: winner.body.refresh_token });
    expect(next.status).toBe(401);
  });
});

describe("header mode keeps an active client signed in", () => {
  test("each authenticated response carries a fresh, working token", async () => {
    const server = await startServer({ TOKEN_DELIVERY: "header", ALLOW_REGISTRATION: "true", RATE_LIMIT: "off" });
    try {
      const client = new Client(server, "header", `http://localhost:${server.port}`);
      await client.request("POST", "/api/v1/auth/register", { username: "slider", password: PASSWORD });
      const seen = new Set([client.token]);
      for (let call = 0; call < 3; call++) {
        const response = await client.request("GET", "/api/v1/auth/validate");
        expect(response.status).toBe(200);
        expect(response.headers.get("cache-control")).toBe("no-store");
        seen.add(client.token);
      }
      expect(seen.size).toBe(4);
      const bad = await fetch(`${server.url}/api/v1/auth/me`, { headers: { token: "not.a.jwt" } });
      expect(bad.status).toBe(401);
      expect(bad.headers.get("token")).toBeNull();
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });
});

describe("cookie mode", () => {
  for (const https of [false, true]) {
    test(`cookie attributes with PUBLIC_URL ${https ? "https" : "http"}`, async () => {
      const server = await startServer({
        TOKEN_DELIVERY: "cookie",
        ALLOW_REGISTRATION: "true",
        RATE_LIMIT: "off",
        ACCESS_TOKEN_TTL: "10m",
        REFRESH_TOKEN_TTL: "2d",
        ...(https ? { PUBLIC_URL: "https://auth.example.test" } : {}),
      });
      try {
        const origin = https ? "https://auth.example.test" : `http://localhost:${server.port}`;
        const response = await fetch(`${server.url}/api/v1/auth/register`, {
          method: "POST",
          headers: { "content-type": "application/json", origin },
          body: JSON.stringify({ username: "cookie-monster", password: PASSWORD }),
        });
        expect(response.status).toBe(201);
        const cookies = cookieAttributes(response);
        const secure = https ? ["Secure"] : [];
        expect(cookies.latchkey_access!.attributes.sort()).toEqual(["HttpOnly", "Max-Age=600", "Path=/", "SameSite=Lax", ...secure].sort());
        expect(cookies.latchkey_refresh!.attributes.sort()).toEqual(
          ["HttpOnly", "Max-Age=172800", "Path=/api/v1/auth", "SameSite=Strict", ...secure].sort(),
        );
      } finally {
        expect(await server.stop()).toBe(0);
        removeDataDir(server.dataDir);
      }
    });
  }

  test("state-changing cookie requests need a trusted Origin or Referer", async () => {
    const server = await startServer({
      TOKEN_DELIVERY: "cookie",
      ALLOW_REGISTRATION: "true",
      RATE_LIMIT: "off",
      ALLOWED_ORIGINS: "https://app.example.test",
    });
    try {
      const own = `http://localhost:${server.port}`;
      const client = new Client(server, "cookie", own);
      expect((await client.request("POST", "/api/v1/auth/register", { username: "csrf-target", password: PASSWORD })).status).toBe(201);
      const rejected: Record<string, string>[] = [
        { origin: "https://evil.example" },
        { origin: own, "sec-fetch-site": "cross-site" },
        { origin: "" },
      ];
      for (const headers of rejected) {
        const response = await client.request("POST", "/api/v1/auth/logout", undefined, headers);
        expect(response.status).toBe(403);
        expect(response.body.error).toBe("csrf_rejected");
      }
      const foreignRefresh = await client.request("POST", "/api/v1/auth/refresh", {}, { origin: "https://evil.example" });
      expect(foreignRefresh.status).toBe(403);
      // Reads are not state-changing: no Origin needed.
      expect((await client.request("GET", "/api/v1/auth/me", undefined, { origin: "" })).status).toBe(200);
      expect((await client.request("POST", "/api/v1/auth/refresh", {}, { origin: "https://app.example.test" })).status).toBe(200);
      expect((await client.request("POST", "/api/v1/auth/refresh", {}, { origin: "", referer: `${own}/some/page` })).status).toBe(200);
      const logout = await client.request("POST", "/api/v1/auth/logout");
      expect(logout.status).toBe(200);
      expect(client.cookies.size).toBe(0);
      expect((await client.request("GET", "/api/v1/auth/me")).status).toBe(401);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });
});

describe("registration gate, validation and bad input", () => {
  let closed: RunningServer;
  let open: RunningServer;
  beforeAll(async () => {
    [closed, open] = await Promise.all([startServer({ RATE_LIMIT: "off" }), startServer({ ALLOW_REGISTRATION: "true", RATE_LIMIT: "off" })]);
  });
  afterAll(async () => {
    for (const server of [closed, open]) {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });

  test("closed registration answers 403 registration_disabled, even for a taken name", async () => {
    const response = await call(closed.url, "POST", "/api/v1/auth/register", { username: "someone", password: PASSWORD });
    expect(response.status).toBe(403);
    expect(response.body).toEqual({ error: "registration_disabled", message: "Registration is closed on this server." });
  });

  test("taken names and emails, invalid fields, over-long passwords", async () => {
    expect((await call(open.url, "POST", "/api/v1/auth/register", { username: "taken", password: PASSWORD, email: "taken@example.com" })).status).toBe(201);
    const name = await call(open.url, "POST", "/api/v1/auth/register", { username: "TAKEN", password: PASSWORD });
    expect(name.status).toBe(409);
    expect(name.body.error).toBe("username_taken");
    const email = await call(open.url, "POST", "/api/v1/auth/register", { username: "other", password: PASSWORD, email: "Taken@Example.com" });
    expect(email.status).toBe(409);
    expect(email.body.error).toBe("email_taken");

    const invalid = await call(open.url, "POST", "/api/v1/auth/register", { username: "-x", password: "short", email: "not-an-email" });
    expect(invalid.status).toBe(422);
    expect(invalid.body.error).toBe("validation_failed");
    expect(invalid.body.details.map((detail: { field: string }) => detail.field).sort()).toEqual(["email", "password", "username"]);
    expect(JSON.stringify(invalid.body)).not.toContain("short");

    const typed = await call(open.url, "POST", "/api/v1/auth/register", { username: 42, password: 12345678 });
    expect(typed.status).toBe(422);
    expect(JSON.stringify(typed.body)).not.toContain("12345678");

    const long = "x".repeat(1025);
    for (const path of ["/api/v1/auth/register", "/api/v1/auth/login"]) {
      const response = await call(open.url, "POST", path, { username: "long-pass", password: long });
      expect(response.status).toBe(422);
      expect(response.body.details).toEqual([{ field: "password", message: "Must be at most 1024 bytes." }]);
    }
  });

  test("malformed JSON, wrong content type, oversized body, unknown route", async () => {
    const post = (body: string, contentType: string) =>
      fetch(`${open.url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": contentType }, body });
    const malformed = await post("{not json", "application/json");
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({ error: "invalid_json", message: "The request body is not valid JSON." });
    const text = await post("username=x", "text/plain");
    expect(text.status).toBe(415);
    expect(((await text.json()) as { error: string }).error).toBe("unsupported_media_type");
    const form = await post("username=x&password=y", "application/x-www-form-urlencoded");
    expect(form.status).toBe(415);
    const big = await post(JSON.stringify({ username: "x", password: "y", pad: "z".repeat(70_000) }), "application/json");
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: string }).error).toBe("payload_too_large");
    const missing = await fetch(`${open.url}/api/v1/nothing-here`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: "not_found", message: "No such route." });
  });

  test("forged access tokens are refused: alg none, HS512, wrong issuer, expired, another secret", async () => {
    const session = await call(open.url, "POST", "/api/v1/auth/register", { username: "forger", password: PASSWORD });
    const [, payloadPart] = (session.body.access_token as string).split(".");
    const claims = JSON.parse(Buffer.from(payloadPart!, "base64url").toString());
    const secret = new TextEncoder().encode((await Bun.file(join(open.dataDir, "jwt_secret")).text()).trim());
    const now = Math.floor(Date.now() / 1000);
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payloadPart}.`;
    const forged = [
      none,
      await new SignJWT(claims).setProtectedHeader({ alg: "HS512" }).sign(secret),
      await new SignJWT({ ...claims, iss: "https://elsewhere.example" }).setProtectedHeader({ alg: "HS256" }).sign(secret),
      await new SignJWT({ ...claims, iat: now - 7200, exp: now - 3600 }).setProtectedHeader({ alg: "HS256" }).sign(secret),
      await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode("y".repeat(32))),
    ];
    // The genuine claims with the genuine key pass, so each refusal is about the one thing changed.
    const genuine = await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(secret);
    expect((await call(open.url, "GET", "/api/v1/auth/validate", undefined, bearer(genuine))).status).toBe(200);
    for (const token of forged) {
      const response = await call(open.url, "GET", "/api/v1/auth/validate", undefined, bearer(token));
      expect(response.status).toBe(401);
      expect(response.body.error).toBe("invalid_token");
    }
    const missing = await call(open.url, "GET", "/api/v1/auth/validate");
    expect(missing.status).toBe(401);
    expect(missing.body.error).toBe("unauthorized");
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="latchkey"');
  });

  test("/docs works offline and /docs/json describes every route", async () => {
    const page = await fetch(`${open.url}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('src="/docs/scalar.js"');
    // The page's own policy lets its script and spec load from this server, and nothing from elsewhere.
    const policy = page.headers.get("content-security-policy")!;
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("connect-src 'self'");
    expect(policy).not.toContain("http");
    expect(html).not.toMatch(/https?:\/\/(cdn|unpkg)/);
    const script = await fetch(`${open.url}/docs/scalar.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("javascript");
    expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(1_000_000);

    const spec = (await (await fetch(`${open.url}/docs/json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown> }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(spec.openapi).toMatch(/^3\./);
    for (const [path, method] of [
      ["/api/v1/auth/register", "post"],
      ["/api/v1/auth/login", "post"],
      ["/api/v1/auth/token", "post"],
      ["/api/v1/auth/refresh", "post"],
      ["/api/v1/auth/logout", "post"],
      ["/api/v1/auth/me", "get"],
      ["/api/v1/auth/validate", "get"],
      ["/health", "get"],
    ] as const) {
      const operation = spec.paths[path]?.[method];
      expect(operation).toBeDefined();
      expect(Object.keys(operation!.responses).length).toBeGreaterThan(0);
    }
    expect(Object.keys(spec.paths["/api/v1/auth/token"]!.post!.requestBody!.content).sort()).toEqual([
      "application/json",
      "application/x-www-form-urlencoded",
    ]);
    expect(Object.keys(spec.paths["/api/v1/auth/register"]!.post!.requestBody!.content)).toEqual(["application/json"]);
    expect(Object.keys(spec.components.securitySchemes).sort()).toEqual(["apiKey", "bearer", "cookie"]);
  });
});

describe("the binary and its CLI", () => {
  test("a restart keeps users, sessions and the generated secret (mode 0600)", async () => {
    const dataDir = tempDataDir();
    // The same PUBLIC_URL (the JWT issuer) on both runs, whatever port each run gets.
    const env = { RATE_LIMIT: "off", PUBLIC_URL: "https://auth.example.test" };
    let server = await startServer({ ...env, ALLOW_REGISTRATION: "true" }, dataDir);
    try {
      const session = await call(server.url, "POST", "/api/v1/auth/register", { username: "survivor", password: PASSWORD });
      const secretBefore = await Bun.file(join(dataDir, "jwt_secret")).text();
      expect(statSync(join(dataDir, "jwt_secret")).mode & 0o777).toBe(0o600);
      expect(await server.stop()).toBe(0);

      server = await startServer(env, dataDir);
      expect(await Bun.file(join(dataDir, "jwt_secret")).text()).toBe(secretBefore);
      expect((await call(server.url, "GET", "/api/v1/auth/validate", undefined, bearer(session.body.access_token))).status).toBe(200);
      expect((await call(server.url, "POST", "/api/v1/auth/login", { username: "survivor", password: PASSWORD })).status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(dataDir);
    }
  });

  test("--version, --help, and one line with exit code 2 for each bad setting", async () => {
    const version = await runCli(["--version"], {});
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const help = await runCli(["--help"], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("latchkey user add <username>");

    const bad: [Record<string, string>, string][] = [
      [{ TOKEN_DELIVERY: "x" }, "TOKEN_DELIVERY"],
      [{ ALLOW_REGISTRATION: "yes please" }, "ALLOW_REGISTRATION"],
      [{ ACCESS_TOKEN_TTL: "abc" }, "ACCESS_TOKEN_TTL"],
      [{ PORT: "70000" }, "PORT"],
      [{ JWT_SECRET: "x".repeat(31) }, "JWT_SECRET"],
    ];
    for (const [env, variable] of bad) {
      const result = await runCli(["serve"], { DATA_DIR: tempDataDir(), ...env });
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      const lines = result.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(variable);
    }
  });

  test("migrate creates and migrates the database, and is idempotent", async () => {
    const dataDir = tempDataDir();
    try {
      for (let run = 0; run < 2; run++) {
        const result = await runCli(["migrate"], { DATA_DIR: dataDir });
        expect(result.code).toBe(0);
        expect(result.stdout).toContain("is up to date");
      }
      const db = new Database(join(dataDir, "latchkey.db"), { readonly: true });
      const tables = (db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((row) => row.name);
      const applied = (db.query("SELECT count(*) AS n FROM __drizzle_migrations").get() as { n: number }).n;
      db.close();
      expect(tables).toEqual(expect.arrayContaining(["api_keys", "audit_events", "login_throttles", "refresh_tokens", "sessions", "users"]));
      expect(applied).toBe(readdirSync(join(import.meta.dir, "../../drizzle")).filter((name) => name.endsWith(".sql")).length);
    } finally {
      removeDataDir(dataDir);
    }
  });

  test("user add and user passwd with closed registration; healthcheck", async () => {
    const server = await startServer({ RATE_LIMIT: "off" });
    try {
      const env = { DATA_DIR: server.dataDir };
      const added = await runCli(["user", "add", "alice", "--email", "a@x.io", "--admin"], env, `${PASSWORD}\n`);
      expect(added.code).toBe(0);
      const login = await call(server.url, "POST", "/api/v1/auth/login", { email: "A@X.IO", password: PASSWORD });
      expect(login.status).toBe(200);
      expect(login.body.user.roles).toEqual(["admin"]);
      const duplicate = await runCli(["user", "add", "alice"], env, PASSWORD);
      expect(duplicate.code).toBe(1);
      expect(duplicate.stderr.trim().split("\n")).toHaveLength(1);

      const passwd = await runCli(["user", "passwd", "alice"], env, "another long passphrase\n");
      expect(passwd.code).toBe(0);
      const old = await call(server.url, "GET", "/api/v1/auth/validate", undefined, bearer(login.body.access_token));
      expect(old.status).toBe(401);
      expect((await call(server.url, "POST", "/api/v1/auth/login", { username: "alice", password: PASSWORD })).status).toBe(401);
      expect((await call(server.url, "POST", "/api/v1/auth/login", { username: "alice", password: "another long passphrase" })).status).toBe(200);

      const healthy = await runCli(["healthcheck"], { PORT: String(server.port), HOST: "127.0.0.1" });
      expect(healthy.code).toBe(0);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
    const nothing = await runCli(["healthcheck"], { PORT: String(freePort()) });
    expect(nothing.code).toBe(1);
  });

  test("copied alone into an empty folder, the binary creates ./data, migrates and serves", async () => {
    const folder = mkdtempSync(join(tmpdir(), "latchkey-alone-"));
    const binary = join(folder, "latchkey");
    copyFileSync(BINARY, binary);
    const port = freePort();
    const proc = Bun.spawn([binary], {
      cwd: folder,
      env: { PATH: "/usr/bin:/bin", PORT: String(port), HOST: "127.0.0.1" },
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      const reader = proc.stdout.getReader();
      let output = "";
      while (!output.includes(" listening on ")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`exited before listening: ${output}${await new Response(proc.stderr).text()}`);
        output += new TextDecoder().decode(value);
      }
      expect(output).toContain(`data in ${join(folder, "data")}`);
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
      expect(statSync(join(folder, "data", "latchkey.db")).isFile()).toBe(true);
      reader.releaseLock();
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
      removeDataDir(folder);
    }
  });
});
