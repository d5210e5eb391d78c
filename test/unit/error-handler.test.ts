import { expect, test } from "bun:test";
import { Elysia } from "elysia";
import { createErrorHandler } from "../../src/http/errors";

test("a crash in a handler is answered 500 internal_error without a stack, and logged", async () => {
  const logged: string[] = [];
  const original = console.error;
  console.error = (line: string) => logged.push(line);
  try {
    const app = new Elysia().use(createErrorHandler(() => [])).get("/boom", () => {
      throw new TypeError("secret internals at /srv/app.ts:12");
    });
    const response = await app.handle(new Request("http://localhost/boom"));
    expect(response.status).toBe(500);
    const body = await response.text();
    expect(JSON.parse(body)).toEqual({ error: "internal_error", message: "Something went wrong on the server." });
    expect(body).not.toContain("secret internals");
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0]!)).toMatchObject({ level: "error", event: "internal_error", path: "/boom" });
  } finally {
    console.error = original;
  }
});

test("a browser (Accept: text/html) gets the 500 and 404 pages; an API client the JSON, without a stack either way", async () => {
  const original = console.error;
  console.error = () => {};
  try {
    const { errorPages } = await import("../../src/modules/pages/error-pages");
    const app = new Elysia().use(createErrorHandler(() => [], errorPages("Home"))).get("/boom", () => {
      throw new TypeError("secret internals at /srv/app.ts:12");
    });
    const browser = { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" };
    const crashed = await app.handle(new Request("http://localhost/boom", { headers: browser }));
    expect(crashed.status).toBe(500);
    expect(crashed.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(crashed.headers.get("content-security-policy")).toStartWith("default-src 'none'");
    const page = await crashed.text();
    expect(page).toContain("<h1>Something went wrong</h1>");
    expect(page).not.toContain("secret internals");
    const missing = await app.handle(new Request("http://localhost/nope", { headers: browser }));
    expect([missing.status, (await missing.text()).includes("<h1>Page not found</h1>")]).toEqual([404, true]);
    for (const accept of [undefined, "*/*", "application/json"]) {
      const api = await app.handle(new Request("http://localhost/boom", { headers: accept ? { accept } : {} }));
      expect([accept, api.status, await api.json()]).toEqual([accept, 500, { error: "internal_error", message: "Something went wrong on the server." }]);
    }
  } finally {
    console.error = original;
  }
});
