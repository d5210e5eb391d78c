/**
 * Issue 22: /ready on PostgreSQL. 200 while the database answers and this instance hears other instances'
 * revocations on its LISTEN connection (db/peers.ts); 503 not_ready while the database is stopped; 200 again once
 * it is back, LISTEN included (an announcement from another instance arrives again).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { waitFor } from "../support/client";
import { call } from "../support/http";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { removeDataDir, startServer, type RunningServer } from "../support/server";

let cluster: TestPostgres;
let server: RunningServer;

beforeAll(async () => {
  cluster = await startPostgres();
  server = await startServer({ DATABASE_URL: await cluster.createDatabase("ready") });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (server) removeDataDir(server.dataDir);
  await cluster?.stop();
});

test("/ready: 200 with the database, 503 not_ready while it is stopped, 200 again once it (and LISTEN) is back", async () => {
  const ready = await call(server.url, "GET", "/ready");
  expect(ready.status).toBe(200);
  expect(ready.body).toEqual({ status: "ready" });

  await cluster.pause();
  // Bounds for a busy 2-core machine: PostgreSQL's own stop and start take seconds.
  const down = await waitFor(() => call(server.url, "GET", "/ready"), (reply) => reply.status !== 200, 30_000);
  expect(down.status).toBe(503);
  expect(down.body).toEqual({ error: "not_ready", message: "The database did not answer." });
  // /health, the liveness answer, says the same about the database.
  expect((await call(server.url, "GET", "/health")).status).toBe(503);

  await cluster.resume();
  const back = await waitFor(() => call(server.url, "GET", "/ready"), (reply) => reply.status === 200, 30_000);
  expect(back.body).toEqual({ status: "ready" });
}, 120_000);
