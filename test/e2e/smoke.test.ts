import { afterAll, beforeAll, expect, test } from "bun:test";
import { removeDataDir, startServer, type RunningServer } from "../support/server";

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ ALLOW_REGISTRATION: "true" });
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

test("the compiled binary answers /health after a real database round trip", async () => {
  const response = await fetch(`${server.url}/health`);
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual({ status: "ok" });
});

test("a body of megabytes gets the JSON 413, whether it declares its length or is chunked", async () => {
  const huge = "a".repeat(2 * 1024 * 1024);
  const declared = await fetch(`${server.url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: huge,
  });
  expect(declared.status).toBe(413);
  expect(await declared.json()).toEqual({ error: "payload_too_large", message: "The request body exceeds 65536 bytes." });
  const chunked = await fetch(`${server.url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: new Blob([huge]).stream(),
  });
  expect(chunked.status).toBe(413);
  expect(((await chunked.json()) as { error: string }).error).toBe("payload_too_large");
});
