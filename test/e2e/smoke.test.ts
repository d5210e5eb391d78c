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
