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
