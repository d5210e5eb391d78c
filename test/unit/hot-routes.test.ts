import { expect, test } from "bun:test";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { deriveSecrets } from "../../src/secrets";

// /validate and /forward build their whole answer (http/security.ts `hand`): these check that it still carries
// everything the global hook writes on every other route, on success and on failure.

const APP_ORIGIN = "https://app.example.test";
const PASSWORD = "correct horse battery staple";

async function setUp() {
  const db = openDatabase(":memory:");
  migrate(db);
  const app = createApp(
    loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", ALLOW_REGISTRATION: "true", PUBLIC_URL: "https://auth.example.test", ALLOWED_ORIGINS: APP_ORIGIN }),
    db,
    deriveSecrets("k".repeat(32)),
  );
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) =>
    (await app.handle(new Request(`http://localhost${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) }))).json() as Promise<Record<string, string>>;
  const { access_token } = await post("/api/v1/auth/register", { username: "someone", password: PASSWORD });
  const { api_key } = await post("/api/v1/auth/keys", { name: "hot" }, { authorization: `Bearer ${access_token}` });
  const get = (path: string, headers: Record<string, string> = {}, method = "GET") => app.handle(new Request(`http://localhost${path}`, { method, headers }));
  return { app, get, token: access_token!, key: api_key! };
}

function expectSecurityHeaders(response: Response) {
  expect(response.headers.get("x-content-type-options")).toBe("nosniff");
  expect(response.headers.get("referrer-policy")).toBe("no-referrer");
  expect(response.headers.get("x-frame-options")).toBe("DENY");
  expect(response.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
  expect(response.headers.get("strict-transport-security")).toBe("max-age=31536000; includeSubDomains");
  expect(response.headers.get("vary")).toBe("Origin");
}

test("/validate answers with the security headers, no-store and JSON, for a token and for a key", async () => {
  const { get, token, key } = await setUp();
  const credentials: Record<string, string>[] = [{ authorization: `Bearer ${token}` }, { "x-api-key": key }];
  for (const credential of credentials) {
    const response = await get("/api/v1/auth/validate", credential);
    expect(response.status).toBe(200);
    expectSecurityHeaders(response);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.get("content-type")).toBe("application/json;charset=utf-8");
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
    expect(((await response.json()) as { username: string }).username).toBe("someone");
  }
});

test("/validate answers CORS to an allowed origin only, and that answer's headers do not reach the next request", async () => {
  const { get, token } = await setUp();
  const allowed = await get("/api/v1/auth/validate", { authorization: `Bearer ${token}`, origin: APP_ORIGIN });
  expect(allowed.status).toBe(200);
  expectSecurityHeaders(allowed);
  expect(allowed.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
  expect(allowed.headers.get("access-control-allow-credentials")).toBe("true");
  const others: Record<string, string>[] = [{ origin: "https://evil.example" }, {}];
  for (const origin of others) {
    const other = await get("/api/v1/auth/validate", { authorization: `Bearer ${token}`, ...origin });
    expect(other.status).toBe(200);
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    expect(other.headers.get("access-control-allow-credentials")).toBeNull();
  }
});

test("/validate's refusals and wrong methods carry the security headers too", async () => {
  const { get, token } = await setUp();
  const cases: [Response, number, string][] = [
    [await get("/api/v1/auth/validate"), 401, "unauthorized"],
    [await get("/api/v1/auth/validate", { authorization: `Bearer ${token}x` }), 401, "invalid_token"],
    [await get("/api/v1/auth/validate", { "x-api-key": "lk_not-a-key" }), 401, "invalid_api_key"],
    [await get("/api/v1/auth/validate", { authorization: `Bearer ${token}` }, "POST"), 405, "method_not_allowed"],
  ];
  for (const [response, status, error] of cases) {
    expect(response.status).toBe(status);
    expectSecurityHeaders(response);
    expect(((await response.json()) as { error: string }).error).toBe(error);
  }
});

test("/forward's 401 names what was wrong, as the API does: no credential, a bad token (error=\"invalid_token\" in the challenge), a bad key", async () => {
  const { get, token } = await setUp();
  const cases: [Record<string, string>, string, boolean][] = [
    [{}, "unauthorized", false],
    [{ authorization: "Basic " + btoa("someone:a password") }, "unauthorized", false],
    [{ authorization: "Digest username=someone" }, "unauthorized", false],
    [{ authorization: `Bearer ${token}x` }, "invalid_token", true],
    [{ authorization: "Bearer not-a-jwt" }, "invalid_token", true],
    [{ authorization: "Bearer lk_not-a-key" }, "invalid_api_key", false],
    [{ "x-api-key": "lk_not-a-key" }, "invalid_api_key", false],
  ];
  for (const [credential, error, tokenChallenge] of cases) {
    const response = await get("/api/v1/auth/forward", credential);
    expect({ status: response.status, error: ((await response.json()) as { error: string }).error }).toEqual({ status: 401, error });
    expectSecurityHeaders(response);
    expect(response.headers.get("www-authenticate")!.endsWith(', error="invalid_token"')).toBe(tokenChallenge);
  }
});

test("/forward answers with the security headers: allowed (Remote-* per user), refused, and again allowed after a refusal", async () => {
  const { get, token, key } = await setUp();
  const allowed = async (credential: Record<string, string>) => {
    const response = await get("/api/v1/auth/forward", credential);
    expect(response.status).toBe(200);
    expectSecurityHeaders(response);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.get("remote-user")).toBe("someone");
    expect(response.headers.get("remote-name")).toBe("someone");
  };
  await allowed({ "x-api-key": key });
  await allowed({ authorization: `Bearer ${token}` });
  const refused = await get("/api/v1/auth/forward", { "x-api-key": `${key.slice(0, -1)}${key.endsWith("0") ? "1" : "0"}` });
  expect(refused.status).toBe(401);
  expectSecurityHeaders(refused);
  expect(refused.headers.get("remote-user")).toBeNull();
  expect(((await refused.json()) as { error: string }).error).toBe("invalid_api_key");
  await allowed({ "x-api-key": key });
  const cors = await get("/api/v1/auth/forward", { "x-api-key": key, origin: APP_ORIGIN });
  expect(cors.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
  expect(cors.headers.get("remote-user")).toBe("someone");
  const after = await get("/api/v1/auth/forward", { "x-api-key": key });
  expect(after.headers.get("access-control-allow-origin")).toBeNull();
});

test("served by Bun's router directly (http/direct.ts), /validate and forward auth answer exactly as through Elysia", async () => {
  const { app, token, key } = await setUp();
  // The GETs Bun serves outside Elysia: the hot paths, nothing else.
  expect(Object.keys((app.config.serve as { routes: object }).routes).sort()).toEqual(["/api/v1/auth/forward", "/api/v1/auth/validate"]);
  app.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const origin = `http://127.0.0.1:${app.server!.port}`;
    // With a trailing "/" the same route is Elysia's (Bun's router matches the exact path only).
    const answer = async (path: string, headers: Record<string, string>) => {
      const response = await fetch(`${origin}${path}`, { headers, redirect: "manual" });
      const { date: _date, ...rest } = Object.fromEntries(response.headers);
      return { status: response.status, headers: rest, body: await response.text() };
    };
    const cases: Record<string, string>[] = [
      { authorization: `Bearer ${token}` },
      { "x-api-key": key },
      { authorization: `Bearer ${token}`, origin: APP_ORIGIN },
      { "x-api-key": key, origin: "https://evil.example" },
      // Refusals are thrown, and answered through Elysia's error handler on both.
      { authorization: `Bearer ${token}x` },
      { "x-api-key": "lk_not-a-key" },
      {},
      { accept: "text/html" },
    ];
    for (const path of ["/api/v1/auth/validate", "/api/v1/auth/forward"])
      for (const headers of cases) {
        const direct = await answer(path, headers);
        expect(direct).toEqual(await answer(`${path}/`, headers));
        expect(direct.headers["x-content-type-options"]).toBe("nosniff");
      }
  } finally {
    await app.stop(true);
  }
});
