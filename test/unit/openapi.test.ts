import { expect, test } from "bun:test";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { deriveSecrets } from "../../src/secrets";

function appWith(env: Record<string, string>) {
  const db = openDatabase(":memory:");
  migrate(db);
  return createApp(loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", ...env }), db, deriveSecrets("k".repeat(32)));
}

async function specOf(app: ReturnType<typeof appWith>) {
  const response = await app.handle(new Request("http://localhost/docs/json"));
  expect(response.status).toBe(200);
  return (await response.json()) as any;
}

/** Elysia's `:id` path parameters are `{id}` in OpenAPI. */
const openApiPath = (path: string) => path.replace(/:(\w+)/g, "{$1}");
const DOCS_ROUTES = new Set(["/docs", "/docs/json", "/docs/scalar.js"]);

test("/docs/json describes every route the app serves, each with a summary, a tag and its JSON responses", async () => {
  const app = appWith({});
  const spec = await specOf(app);
  const served = app.routes.filter((route) => !DOCS_ROUTES.has(route.path));
  expect(served.length).toBeGreaterThan(20);
  for (const route of served) {
    const operation = spec.paths[openApiPath(route.path)]?.[route.method.toLowerCase()];
    expect({ route: `${route.method} ${route.path}`, documented: operation !== undefined }).toEqual({ route: `${route.method} ${route.path}`, documented: true });
    expect(typeof operation.summary).toBe("string");
    expect(operation.tags).toHaveLength(1);
    const codes = Object.keys(operation.responses);
    expect(codes.some((code) => code.startsWith("2"))).toBe(true);
    for (const code of codes) {
      // 204 No Content is the one response without a body.
      if (code !== "204") expect(operation.responses[code].content?.["application/json"]?.schema).toBeDefined();
    }
  }
});

test("the cookie security scheme carries the configured ACCESS_COOKIE_NAME", async () => {
  const spec = await specOf(appWith({ TOKEN_DELIVERY: "cookie", ACCESS_COOKIE_NAME: "sso_at", REFRESH_COOKIE_NAME: "sso_rt" }));
  expect(spec.components.securitySchemes.cookie).toMatchObject({ type: "apiKey", in: "cookie", name: "sso_at" });
});
