import { expect, test } from "bun:test";
import { validate } from "@scalar/openapi-parser";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { ERROR_CODES } from "../../src/error-codes";
import { FORWARD_PATH } from "../../src/modules/forward";
import { PAGE_PATHS } from "../../src/modules/pages";
import { OIDC_PAGE_PATHS } from "../../src/modules/oidc";
import { INVITATION_PAGE_PATHS } from "../../src/modules/pages/invitations";
import { deriveSecrets } from "../../src/secrets";

/** With METRICS_TOKEN: /metrics is served on the main listener only then (issue 22), and must be described too. */
function appWith(env: Record<string, string>) {
  const db = openDatabase(":memory:");
  migrate(db);
  return createApp(loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", METRICS_TOKEN: "m".repeat(32), ...env }), db, deriveSecrets("k".repeat(32)));
}

async function specOf(app: ReturnType<typeof appWith>) {
  const response = await app.handle(new Request("http://localhost/docs/json"));
  expect(response.status).toBe(200);
  return (await response.json()) as any;
}

/** Elysia's `:id` path parameters are `{id}` in OpenAPI. */
const openApiPath = (path: string) => path.replace(/:(\w+)/g, "{$1}");
const DOCS_ROUTES = new Set(["/docs", "/docs/json", "/docs/scalar.js"]);
const METHODS = new Set(["get", "put", "post", "delete", "patch", "head", "options", "trace"]);

/** Every operation of the document as [label, operation]. */
function operationsOf(spec: any): [string, any][] {
  return Object.entries(spec.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.has(method))
      .map(([method, operation]) => [`${method.toUpperCase()} ${path}`, operation] as [string, any]),
  );
}

/** The codes a response description names: one "- `code`: meaning" line each. */
const codesIn = (description: string) => [...description.matchAll(/^- `([a-z][a-z0-9]*(?:_[a-z0-9]+)*)`: \S/gm)].map((match) => match[1]!);

const OAUTH_400_CODES = ["invalid_request", "invalid_grant", "unsupported_grant_type"];
/** /token's 403s: told only to a client with the right password (user_not_verified is also in ERROR_CODES). */
const OAUTH_CODES = [...OAUTH_400_CODES, "mfa_required"];
/** /health's 503 body is {status: "unavailable"}. */
/** The OpenID Connect token, revocation and introspection endpoints' RFC 6749 / 7009 / 8707 codes. */
const CLIENT_OAUTH_CODES = ["invalid_client", "invalid_scope", "invalid_target", "unauthorized_client", "unsupported_token_type"];
const KNOWN_CODES = new Set([...Object.keys(ERROR_CODES), ...OAUTH_CODES, ...CLIENT_OAUTH_CODES, "unavailable"]);

test("/docs/json describes every route the app serves, each with a summary, a tag and its responses", async () => {
  const app = appWith({});
  const spec = await specOf(app);
  // Pages for people (sign-in, account, admin, the OpenID Connect browser endpoints) answer with HTML and
  // redirects: the only routes left out besides the docs.
  const hidden = app.routes.filter((route) => (route.hooks as { detail?: { hide?: boolean } }).detail?.hide === true);
  expect(hidden.map((route) => route.path).filter((path) => !PAGE_PATHS.has(path) && !OIDC_PAGE_PATHS.has(path) && !INVITATION_PAGE_PATHS.has(path) && !DOCS_ROUTES.has(path))).toEqual([]);
  const served = app.routes.filter((route) => !DOCS_ROUTES.has(route.path) && !hidden.includes(route));
  expect(served.length).toBeGreaterThan(20);
  for (const route of served) {
    const label = `${route.method} ${route.path}`;
    // A route for every method (forward auth) is documented under each; GET stands for them here.
    const method = route.method === "ALL" ? "get" : route.method.toLowerCase();
    const operation = spec.paths[openApiPath(route.path)]?.[method];
    expect({ route: label, documented: operation !== undefined }).toEqual({ route: label, documented: true });
    expect(typeof operation.summary).toBe("string");
    expect(operation.tags).toHaveLength(1);
    const codes = Object.keys(operation.responses);
    expect(codes.some((code) => code.startsWith("2"))).toBe(true);
    for (const code of codes) {
      const response = operation.responses[code];
      expect({ route: label, code, description: typeof response.description }).toEqual({ route: label, code, description: "string" });
      // 204 No Content is a description and nothing else (a `content` map there made the document invalid).
      // So are a redirect and forward auth's empty 200 (its answer is in the Remote-* headers).
      const bodiless = code === "204" || code.startsWith("3") || (route.path === FORWARD_PATH && code === "200");
      if (bodiless) expect({ route: label, code, content: response.content }).toEqual({ route: label, code, content: undefined });
      // Pages (the mailed links') are text/html, /metrics's 200 Prometheus's text format; everything else is JSON.
      else if (route.path === "/metrics" && code === "200") expect(response.content?.["text/plain"]?.schema?.type).toBe("string");
      else expect({ route: label, code, json: (response.content?.["application/json"] ?? response.content?.["text/html"])?.schema !== undefined }).toEqual({ route: label, code, json: true });
    }
  }
});

for (const mode of ["bearer", "cookie"]) {
  test(`/docs/json is a valid OpenAPI 3 document (TOKEN_DELIVERY=${mode}), checked by a real validator`, async () => {
    const spec = await specOf(appWith({ TOKEN_DELIVERY: mode }));
    const result = await validate(spec);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(result.version).toMatch(/^3\./);
  });
}

test("every error response names, in its description, the snake_case codes it carries, and each code is a real one", async () => {
  const spec = await specOf(appWith({}));
  for (const [label, operation] of operationsOf(spec))
    for (const [status, response] of Object.entries(operation.responses as Record<string, any>)) {
      // Successes and redirects carry no error code.
      if (status.startsWith("2") || status.startsWith("3")) continue;
      const codes = codesIn(response.description);
      expect({ label, status, names: codes.length > 0 }).toEqual({ label, status, names: true });
      for (const code of codes) expect({ label, status, code, known: KNOWN_CODES.has(code) }).toEqual({ label, status, code, known: true });
    }
});

test("every error code the server defines is documented on at least one route, under one status", async () => {
  const spec = await specOf(appWith({}));
  const documented = new Map<string, Set<string>>();
  for (const [, operation] of operationsOf(spec))
    for (const [status, response] of Object.entries(operation.responses as Record<string, any>))
      for (const code of codesIn(response.description)) documented.set(code, (documented.get(code) ?? new Set()).add(status));
  for (const code of [...Object.keys(ERROR_CODES), ...OAUTH_CODES]) expect({ code, documented: documented.has(code) }).toEqual({ code, documented: true });
  expect([...documented.get("rate_limited")!]).toEqual(["429"]);
  expect([...documented.get("csrf_rejected")!]).toEqual(["403"]);
});

test("codes follow the route: guards, CSRF, the body parser, secret checks and each route's own failures", async () => {
  const spec = await specOf(appWith({}));
  const codes = (path: string, method: string, status: number) => codesIn(spec.paths[path][method].responses[String(status)]?.description ?? "");
  const credentials = ["unauthorized", "invalid_token", "invalid_api_key"];
  for (const [label, operation] of operationsOf(spec)) {
    const [method, path] = label.split(" ") as [string, string];
    const lower = method.toLowerCase();
    if (operation.security) expect({ label, codes: codes(path, lower, 401) }).toEqual({ label, codes: expect.arrayContaining(credentials) });
    // Every request with a body goes through the JSON parser, whatever the route; forward auth never reads one.
    // The token endpoints (RFC 6749) report a malformed body as invalid_request.
    if (lower !== "get" && !["/api/v1/auth/token", "/oidc/token", "/oidc/revoke", "/oidc/introspect", FORWARD_PATH].includes(path))
      for (const [status, code] of [[400, "invalid_json"], [413, "payload_too_large"], [415, "unsupported_media_type"], [422, "validation_failed"]] as const)
        expect({ label, status, codes: codes(path, lower, status) }).toEqual({ label, status, codes: expect.arrayContaining([code]) });
    // Cookie mode's Origin check guards every state-changing route that takes the access cookie.
    if (operation.security && lower !== "get") expect({ label, codes: codes(path, lower, 403) }).toEqual({ label, codes: expect.arrayContaining(["csrf_rejected"]) });
  }
  const keys = "/api/v1/auth/keys";
  expect(codes(keys, "post", 403)).toEqual(expect.arrayContaining(["session_required", "csrf_rejected", "key_limit_reached"]));
  expect(codes(keys, "post", 409)).toEqual(["key_name_taken"]);
  expect(codes(`${keys}/{key_id}`, "delete", 404)).toEqual(["key_not_found"]);
  expect(codes("/api/v1/auth/sessions/{id}", "delete", 404)).toEqual(["session_not_found"]);
  expect(codes("/api/v1/auth/register", "post", 403)).toEqual(expect.arrayContaining(["registration_disabled", "csrf_rejected"]));
  expect(codes("/api/v1/auth/register", "post", 409)).toEqual(["username_taken", "email_taken"]);
  expect(codes("/api/v1/auth/register", "post", 422)).toEqual(expect.arrayContaining(["validation_failed", "weak_password"]));
  expect(codes("/api/v1/auth/login", "post", 401)).toEqual(["invalid_credentials"]);
  expect(codes("/api/v1/auth/login", "post", 403)).toEqual(expect.arrayContaining(["account_disabled"]));
  expect(codes("/api/v1/auth/refresh", "post", 401)).toEqual(["invalid_refresh_token", "refresh_token_reused", "invalid_token"]);
  expect(codes("/api/v1/auth/password", "post", 403)).toEqual(expect.arrayContaining(["invalid_current_password", "session_required"]));
  expect(codes("/api/v1/auth/token", "post", 400)).toEqual(OAUTH_400_CODES);
  expect(codes("/api/v1/auth/token", "post", 403)).toEqual(["user_not_verified", "mfa_required", "csrf_rejected"]);
  for (const path of ["/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/token", "/api/v1/auth/refresh", "/api/v1/auth/password"])
    expect({ path, codes: codes(path, "post", 429) }).toEqual({ path, codes: ["rate_limited"] });
  // API_KEY_RATE_LIMIT: a route that takes an API key can answer 429; a session-only route does not spend the quota.
  expect(codes("/api/v1/auth/me", "get", 429)).toEqual(["rate_limited"]);
  expect(codes("/api/v1/auth/validate", "get", 429)).toEqual(["rate_limited"]);
  expect(codes("/api/v1/auth/sessions", "get", 429)).toEqual([]);
  expect(codes("/api/v1/admin/users", "get", 403)).toEqual(["session_required", "forbidden"]);
  expect(codes("/api/v1/admin/users/{id}", "patch", 409)).toEqual(["last_admin", "email_taken"]);
  expect(codes("/api/v1/admin/users/{id}", "delete", 404)).toEqual(["user_not_found"]);
  // The headers that come with some codes.
  expect(spec.paths["/api/v1/auth/me"].get.responses["401"].headers).toHaveProperty("WWW-Authenticate");
  expect(spec.paths["/api/v1/auth/login"].post.responses["429"].headers).toHaveProperty("Retry-After");
});

test("the error field stays a plain string: no enum that a new code would turn into a 500", async () => {
  const spec = await specOf(appWith({}));
  for (const [label, operation] of operationsOf(spec))
    for (const [status, response] of Object.entries(operation.responses as Record<string, any>)) {
      const error = response.content?.["application/json"]?.schema?.properties?.error;
      if (!error || label === "POST /api/v1/auth/token") continue;
      expect({ label, status, error: { type: error.type, enum: error.enum, anyOf: error.anyOf } }).toEqual({
        label,
        status,
        error: { type: "string", enum: undefined, anyOf: undefined },
      });
    }
});

/** Every schema node under `node`, with its JSON path. */
function* schemaNodes(node: unknown, path = "$"): Generator<[string, any]> {
  if (!node || typeof node !== "object") return;
  yield [path, node];
  for (const [key, child] of Object.entries(node)) yield* schemaNodes(child, `${path}.${key}`);
}

test("numbers and booleans are documented as JSON types: no numeric-string union, no made-up default", async () => {
  const spec = await specOf(appWith({}));
  for (const [path, node] of schemaNodes(spec.paths)) {
    // Elysia's t.Integer/t.Numeric render as anyOf [{type: string, format: integer|numeric, default: 0}, ...].
    if (node.type === "string") expect({ path, format: ["integer", "numeric"].includes(node.format) }).toEqual({ path, format: false });
    if (node.type === "integer" || node.type === "number" || node.type === "boolean") expect({ path, default: node.default }).toEqual({ path, default: undefined });
  }
  const expiresIn = spec.paths["/api/v1/auth/keys"].post.requestBody.content["application/json"].schema.properties.expires_in;
  expect(expiresIn).toEqual({ type: "integer", minimum: 60, maximum: 315360000, description: expect.any(String) });
  const patch = spec.paths["/api/v1/admin/users/{id}"].patch.requestBody.content["application/json"].schema.properties;
  expect(patch.disabled.type).toBe("boolean");
  expect(patch.email_verified.type).toBe("boolean");
});

test("the API key routes explain the key format, that it is shown once and stored hashed, and the scopes rule", async () => {
  const spec = await specOf(appWith({}));
  const create = spec.paths["/api/v1/auth/keys"].post;
  expect(create.description).toContain("lk_");
  expect(create.description).toContain("43 base62");
  expect(create.description).toMatch(/6-character .*checksum/);
  expect(create.description).toContain("SHA-256");
  expect(create.description).toMatch(/this response only|shown this once/);
  const scopes = create.requestBody.content["application/json"].schema.properties.scopes.description;
  expect(scopes).toContain("At most 32");
  expect(scopes).toContain("1-64 characters from A-Z a-z 0-9 : . _ - / *");
  expect(scopes).not.toMatch(/free-form/i);
  expect(create.responses["201"].content["application/json"].schema.properties.api_key.description).toMatch(/once.*SHA-256/);
  expect(typeof spec.paths["/api/v1/auth/keys"].get.description).toBe("string");
  expect(typeof spec.paths["/api/v1/auth/keys/{key_id}"].delete.description).toBe("string");
});

test("the cookie security scheme carries the configured ACCESS_COOKIE_NAME", async () => {
  const spec = await specOf(appWith({ TOKEN_DELIVERY: "cookie", ACCESS_COOKIE_NAME: "sso_at", REFRESH_COOKIE_NAME: "sso_rt" }));
  expect(spec.components.securitySchemes.cookie).toMatchObject({ type: "apiKey", in: "cookie", name: "sso_at" });
});

const DOCS_CSP_SCRIPT = /script-src 'self'/;

test("/docs, /docs/ and /docs?query all get the docs page with its CSP; the spec and other paths keep the JSON CSP", async () => {
  const app = appWith({});
  for (const path of ["/docs", "/docs/", "/docs?x=1", "/docs/?theme=dark"]) {
    const response = await app.handle(new Request(`http://localhost${path}`));
    expect({ path, status: response.status }).toEqual({ path, status: 200 });
    expect(response.headers.get("content-type")).toContain("text/html");
    expect({ path, csp: response.headers.get("content-security-policy") }).toEqual({ path, csp: expect.stringMatching(DOCS_CSP_SCRIPT) });
    const html = await response.text();
    // The spec URL is absolute, so the page works from /docs/ too (a relative one resolved to /docs/docs/json).
    const configuration = JSON.parse(
      html.match(/id="api-reference"[^>]*data-configuration="([^"]*)"/)![1]!.replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&amp;", "&"),
    );
    expect(configuration.url).toBe("/docs/json");
    expect(configuration.withDefaultFonts).toBe(false);
    expect(configuration.telemetry).toBe(false);
  }
  for (const path of ["/docs/json", "/docs/json?x=1", "/health", "/docs/scalar.js", "/docsx"]) {
    const response = await app.handle(new Request(`http://localhost${path}`));
    expect({ path, csp: response.headers.get("content-security-policy") }).toEqual({ path, csp: "default-src 'none'; frame-ancestors 'none'" });
  }
});

test("the docs page does not name the framework", async () => {
  const html = await (await appWith({}).handle(new Request("http://localhost/docs"))).text();
  expect(html).not.toContain("_integration");
  expect(html.toLowerCase()).not.toContain("elysia");
  // It runs no inline script: the configuration is data (type application/json), the one script is /docs/scalar.js.
  const scripts = [...html.matchAll(/<script\b([^>]*)>/g)].map((match) => match[1]!);
  expect(scripts.filter((attributes) => !/\ssrc=/.test(attributes) && !/type="application\/json"/.test(attributes))).toEqual([]);
});

test("/docs/json is serialised once and revalidated by ETag (it is public: it must cost little per request)", async () => {
  const app = appWith({});
  const first = await app.handle(new Request("http://localhost/docs/json"));
  const etag = first.headers.get("etag");
  expect(etag).toMatch(/^"[0-9a-z]+"$/);
  expect(first.headers.get("cache-control")).toBe("no-cache");
  expect(first.headers.get("content-type")).toBe("application/json; charset=utf-8");
  expect(first.headers.get("x-content-type-options")).toBe("nosniff");
  const body = await first.text();
  const again = await app.handle(new Request("http://localhost/docs/json"));
  expect(again.headers.get("etag")).toBe(etag);
  expect(await again.text()).toBe(body);
  const revalidated = await app.handle(new Request("http://localhost/docs/json", { headers: { "if-none-match": etag! } }));
  expect(revalidated.status).toBe(304);
  expect(await revalidated.text()).toBe("");
});
