/**
 * Issue 22: /metrics scraped by a real Prometheus (Debian's `prometheus`, on loopback with a generated
 * configuration and a storage folder of its own) from the compiled binary: on METRICS_ADDR's listener, and on the
 * main listener with METRICS_TOKEN (a wrong token is refused: that target is down). Counters move with real
 * sign-ins and forward-auth requests, read back through Prometheus's query API. Also /ready, and a METRICS_ADDR
 * or METRICS_TOKEN that cannot work stopping the start with exit 2.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AUTH, waitFor } from "../support/client";
import { TEST_ENGINE } from "../support/engine";
import { call } from "../support/http";
import { freePort, removeDataDir, runCli, spawnServer, startServer, tempDataDir, type RunningServer, type SpawnedServer } from "../support/server";

const PASSWORD = "correct horse battery staple";
const TOKEN = "metrics-".padEnd(48, "x7");

let server: RunningServer;
let metricsPort: number;
let prometheus: SpawnedServer;
let prometheusUrl: string;
let prometheusDir: string;

/** One instant query through Prometheus's HTTP API: the samples' values by their labels' JSON. */
async function query(expression: string): Promise<number[]> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expression)}`);
  const body = (await response.json()) as { status: string; data: { result: { value: [number, string] }[] } };
  expect(body.status).toBe("success");
  return body.data.result.map((sample) => Number(sample.value[1]));
}

/** Waits (bounded, failing loudly) until Prometheus has scraped a value for `expression` equal to `expected`. */
const scraped = (expression: string, expected: number[]) =>
  waitFor(() => query(expression), (values) => JSON.stringify(values) === JSON.stringify(expected), 30_000);

beforeAll(async () => {
  metricsPort = freePort();
  server = await startServer({ ALLOW_REGISTRATION: "true", METRICS_ADDR: `127.0.0.1:${metricsPort}`, METRICS_TOKEN: TOKEN });
  prometheusDir = mkdtempSync(join(tmpdir(), "latchkey-prometheus-"));
  const target = (job: string, address: string, credentials?: string) =>
    [
      `  - job_name: ${job}`,
      "    scrape_interval: 1s",
      "    scrape_timeout: 1s",
      ...(credentials ? ["    authorization:", `      credentials: ${credentials}`] : []),
      "    static_configs:",
      `      - targets: ["${address}"]`,
    ].join("\n");
  writeFileSync(
    join(prometheusDir, "prometheus.yml"),
    [
      "global:",
      "  scrape_interval: 1s",
      "scrape_configs:",
      target("latchkey", `127.0.0.1:${metricsPort}`),
      target("latchkey-token", `127.0.0.1:${server.port}`, TOKEN),
      target("latchkey-wrong-token", `127.0.0.1:${server.port}`, "not-the-metrics-token-at-all-not-at-all"),
    ].join("\n") + "\n",
  );
  const port = freePort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  prometheus = await spawnServer(
    [
      "prometheus",
      `--config.file=${join(prometheusDir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(prometheusDir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    // Prometheus says "Server is ready to receive web requests." where spawnServer waits for " listening on ".
    { env: { PATH: process.env.PATH ?? "" }, readyLine: "Server is ready to receive web requests." },
  );
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  await server?.stop();
  if (server) removeDataDir(server.dataDir);
  if (prometheusDir) rmSync(prometheusDir, { recursive: true, force: true });
});

describe("a real Prometheus scrapes the binary", () => {
  test("up on METRICS_ADDR and with METRICS_TOKEN; a wrong token is refused (the target is down)", async () => {
    await scraped('up{job="latchkey"}', [1]);
    await scraped('up{job="latchkey-token"}', [1]);
    await scraped('up{job="latchkey-wrong-token"}', [0]);
    await scraped('latchkey_build_info{job="latchkey"}', [1]);
  }, 60_000);

  test("the database pool: its size, and on PostgreSQL this instance's connections from pg_stat_activity", async () => {
    await scraped('latchkey_database_pool_size{job="latchkey"}', [TEST_ENGINE === "postgres" ? 10 : 1]);
    if (TEST_ENGINE === "sqlite") expect(await query('latchkey_database_connections{job="latchkey"}')).toEqual([]);
    // At least the LISTEN connection and the one the scrape asks on; the pool's others as requests opened them.
    else await waitFor(() => query('sum(latchkey_database_connections{job="latchkey"})'), (values) => values.length === 1 && values[0]! >= 2, 30_000);
  }, 60_000);

  test("a real sign-in, a wrong password and forward-auth answers move their counters", async () => {
    const registered = await call(server.url, "POST", `${AUTH}/register`, { username: "watched", password: PASSWORD });
    expect(registered.status).toBe(201);
    expect((await call(server.url, "POST", `${AUTH}/login`, { username: "watched", password: PASSWORD })).status).toBe(200);
    expect((await call(server.url, "POST", `${AUTH}/login`, { username: "watched", password: "not the password at all" })).status).toBe(401);
    const signedIn = await call(server.url, "POST", `${AUTH}/login`, { username: "watched", password: PASSWORD });
    const access = signedIn.body.access_token as string;
    expect((await call(server.url, "GET", `${AUTH}/forward`, undefined, { authorization: `Bearer ${access}` })).status).toBe(200);
    expect((await call(server.url, "GET", `${AUTH}/forward`)).status).toBe(401);
    expect((await call(server.url, "POST", `${AUTH}/logout`, undefined, { authorization: `Bearer ${access}` })).status).toBe(200);

    await scraped('latchkey_sign_ins_total{job="latchkey",method="password",result="success"}', [2]);
    await scraped('latchkey_sign_ins_total{job="latchkey",method="password",result="invalid_credentials"}', [1]);
    await scraped('latchkey_forward_auth_decisions_total{job="latchkey",decision="allow"}', [1]);
    await scraped('latchkey_forward_auth_decisions_total{job="latchkey",decision="unauthorized"}', [1]);
    await scraped('latchkey_forward_auth_duration_seconds_count{job="latchkey",decision="allow"}', [1]);
    await scraped('latchkey_sessions_revoked_total{job="latchkey"}', [1]);
    // The same registry behind the token.
    await scraped('latchkey_sign_ins_total{job="latchkey-token",method="password",result="success"}', [2]);
  }, 60_000);
});

test("/ready answers 200 {status: ready} with the database up; /metrics is not on the main listener without the token", async () => {
  const ready = await call(server.url, "GET", "/ready");
  expect(ready.status).toBe(200);
  expect(ready.body).toEqual({ status: "ready" });
  const refused = await call(server.url, "GET", "/metrics");
  expect(refused.status).toBe(401);
  expect(refused.body.error).toBe("invalid_metrics_token");
  // METRICS_ADDR's listener serves /metrics alone.
  expect((await fetch(`http://127.0.0.1:${metricsPort}/health`)).status).toBe(404);
});

describe("a METRICS_ADDR or METRICS_TOKEN that cannot work stops the start with exit 2 and one line naming it", () => {
  const start = async (env: Record<string, string>) => {
    const dataDir = tempDataDir();
    try {
      const result = await runCli(["serve"], { DATA_DIR: dataDir, PORT: String(freePort()), HOST: "127.0.0.1", ...env });
      return { ...result, written: readdirSync(dataDir) };
    } finally {
      removeDataDir(dataDir);
    }
  };

  test.each([["localhost"], ["127.0.0.1:99999"], [":9464"], ["::1:9464"], ["http://127.0.0.1:9464"]])("METRICS_ADDR=%s", async (value) => {
    const result = await start({ METRICS_ADDR: value });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toEqual([
      `latchkey: configuration error: METRICS_ADDR=${JSON.stringify(value)} is invalid: expected host:port, e.g. 127.0.0.1:9464 or [::1]:9464`,
    ]);
    // Refused before anything was written.
    expect(result.written).toEqual([]);
  });

  test("METRICS_ADDR on a port already in use", async () => {
    const result = await start({ METRICS_ADDR: `127.0.0.1:${server.port}` });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toEqual([`latchkey: configuration error: METRICS_ADDR=127.0.0.1:${server.port} is already in use: choose another port`]);
  });

  test("a METRICS_TOKEN too short to be a secret", async () => {
    const result = await start({ METRICS_TOKEN: "hunter2" });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toEqual([
      "latchkey: configuration error: METRICS_TOKEN is invalid: expected 32 to 512 letters, digits or -._~+/ (e.g. openssl rand -hex 32)",
    ]);
  });
});
