/**
 * Issue 22: /ready on PostgreSQL. 200 while the database answers and this instance hears other instances'
 * revocations on its LISTEN connection (db/peers.ts); 503 not_ready while the database is stopped, or while only
 * the LISTEN connection is lost (queries still answer); 200 again once they are back.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
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
  try {
    // Bounds for a busy 2-core machine: PostgreSQL's own stop and start take seconds.
    const down = await waitFor(() => call(server.url, "GET", "/ready"), (reply) => reply.status !== 200, 30_000);
    expect(down.status).toBe(503);
    expect(down.body).toEqual({ error: "not_ready", message: "The database did not answer." });
    // /health, the liveness answer, says the same about the database.
    expect((await call(server.url, "GET", "/health")).status).toBe(503);
  } finally {
    await cluster.resume();
  }
  const back = await waitFor(() => call(server.url, "GET", "/ready"), (reply) => reply.status === 200, 30_000);
  expect(back.body).toEqual({ status: "ready" });
}, 120_000);

test("/ready: 503 not_ready while only the LISTEN connection is lost (queries still answer), 200 once it is back", async () => {
  expect((await call(server.url, "GET", "/ready")).status).toBe(200);
  const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
  try {
    // New connections to the database are refused, and the LISTEN connection is cut: the pool's open connections
    // still answer queries, but this instance no longer hears other instances' revocations.
    await admin`alter database ready allow_connections false`;
    const [cut] = await admin`select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = 'ready' and query ilike 'listen %'`;
    expect(cut!.n).toBe(1);
    const deaf = await waitFor(() => call(server.url, "GET", "/ready"), (reply) => reply.status !== 200, 30_000);
    expect(deaf.status).toBe(503);
    expect(deaf.body).toEqual({
      error: "not_ready",
      message: "This instance does not hear other instances' revocations: its LISTEN connection to PostgreSQL is down.",
    });
    // The liveness answer only asks for a query, which still works.
    expect((await call(server.url, "GET", "/health")).status).toBe(200);

    await admin`alter database ready allow_connections true`;
    const back = await waitFor(() => call(server.url, "GET", "/ready"), (reply) => reply.status === 200, 30_000);
    expect(back.body).toEqual({ status: "ready" });
  } finally {
    await admin`alter database ready allow_connections true`;
    await admin.end();
  }
}, 120_000);
