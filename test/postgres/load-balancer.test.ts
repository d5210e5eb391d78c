/**
 * Issue 11: the two-instance deployment of the README. examples/postgres/Caddyfile, as it is (moved to loopback
 * ports), in front of two compiled binaries on one PostgreSQL database: a client of the load balancer, whose
 * requests alternate between the instances, sees one server; with one instance stopped, the other serves alone,
 * sign-ins in flight included (issue 22: Caddy retries a POST only with its body buffered, request_buffers).
 * examples/postgres/compose.yml is checked for the shape that deployment needs (no image registry here to run it).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { AUTH, waitFor } from "../support/client";
import { bearer, call } from "../support/http";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { CADDY, startCaddy, type Proxy } from "../support/proxies";
import { removeDataDir, startServer, type RunningServer } from "../support/server";

const EXAMPLE = join(import.meta.dir, "../../examples/postgres");
const PASSWORD = "correct horse battery staple";

let cluster: TestPostgres;
let a: RunningServer;
let b: RunningServer;
let caddy: Proxy;

/**
 * Debian 12's Caddy (2.6) predates `request_buffers <size>` (2.7) and spells it `buffer_requests`; newer Caddy knows
 * only the former. Caddy 2.6's `max_buffer_size` leaves a body shorter than the limit unbuffered (it takes the
 * body's end for an error), so here the body is buffered whole, which 2.7's `request_buffers` does for any body
 * under its size. The example is written for the Caddy its compose file runs; here it is spelt for the installed one.
 */
const CADDY_VERSION = Bun.spawnSync([CADDY, "version"]).stdout.toString().match(/^v?(\d+)\.(\d+)/)!.slice(1).map(Number);
function forInstalledCaddy(caddyfile: string): string {
  if (CADDY_VERSION[0]! > 2 || CADDY_VERSION[1]! >= 7) return caddyfile;
  return caddyfile.replace(/request_buffers \d+KiB/, "buffer_requests");
}

/** The example's site, with its upstreams (the compose services) and its host moved to loopback. */
function site(port: number): string {
  return forInstalledCaddy(readFileSync(join(EXAMPLE, "Caddyfile"), "utf8"))
    .replace("auth.example.com {", `http://127.0.0.1:${port} {`)
    .replace("latchkey-a:3000", `127.0.0.1:${a.port}`)
    .replace("latchkey-b:3000", `127.0.0.1:${b.port}`);
}

/**
 * A POST to Caddy sent in two halves over a raw connection: the headers and the first half of the body now, the
 * rest when `finish` is called; resolves with the status Caddy answers.
 */
async function postInTwoHalves(url: string, path: string, body: unknown) {
  const { hostname, port } = new URL(url);
  const payload = Buffer.from(JSON.stringify(body));
  const half = Math.floor(payload.length / 2);
  let received = "";
  let done: (status: number) => void = () => {};
  const status = new Promise<number>((resolve) => (done = resolve));
  const socket = await Bun.connect({
    hostname,
    port: Number(port),
    socket: {
      data: (_, chunk) => void (received += chunk.toString("latin1")),
      close: () => done(Number(received.match(/^HTTP\/1\.1 (\d{3}) /)?.[1] ?? 0)),
      error: () => done(0),
    },
  });
  const head = `POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\nConnection: close\r\n\r\n`;
  socket.write(Buffer.concat([Buffer.from(head), payload.subarray(0, half)]));
  return {
    finish() {
      socket.write(payload.subarray(half));
      return status;
    },
  };
}

beforeAll(async () => {
  cluster = await startPostgres();
  // The environment of compose.yml's instances (TRUST_PROXY=1: Caddy is the one hop), with registration open, and
  // a per-address limit that lets this one client make all the suite's sign-ins and rotations.
  const env = {
    DATABASE_URL: await cluster.createDatabase("balanced"),
    PUBLIC_URL: "http://auth.example.test",
    TRUST_PROXY: "1",
    ALLOW_REGISTRATION: "true",
    RATE_LIMIT_IP: "100000/1m",
    RATE_LIMIT_IP_BURST: "100000",
  };
  [a, b] = await Promise.all([startServer(env), startServer(env)]);
  caddy = await startCaddy(site);
}, 120_000);

afterAll(async () => {
  await caddy?.stop();
  await Promise.all([a?.stop(), b?.stop()]);
  for (const server of [a, b]) if (server) removeDataDir(server.dataDir);
  await cluster?.stop();
});

describe("examples/postgres: Caddy in front of two instances", () => {
  test("through the load balancer the two instances are one server: sign-up, ten rotations, API key, logout", async () => {
    const signedUp = await call(caddy.url, "POST", `${AUTH}/register`, { username: "balanced", password: PASSWORD });
    expect(signedUp.status).toBe(201);
    // Round robin: consecutive rotations land on alternate instances, each spending what the other issued.
    let tokens = signedUp.body as { access_token: string; refresh_token: string };
    for (let rotation = 0; rotation < 10; rotation++) {
      const rotated = await call(caddy.url, "POST", `${AUTH}/refresh`, { refresh_token: tokens.refresh_token });
      expect(rotated.status).toBe(200);
      tokens = rotated.body;
    }
    const key = await call(caddy.url, "POST", `${AUTH}/keys`, { name: "nas" }, bearer(tokens.access_token));
    expect(key.status).toBe(201);
    for (let request = 0; request < 4; request++) {
      expect((await call(caddy.url, "GET", `${AUTH}/validate`, undefined, bearer(tokens.access_token))).status).toBe(200);
      expect((await call(caddy.url, "GET", `${AUTH}/validate`, undefined, bearer(key.body.api_key))).body.username).toBe("balanced");
    }
    // Both instances hold the session in their caches now; the logout, served by one, ends it on both.
    // It reaches the other instance within the caches' second (LISTEN/NOTIFY, as in instances.test.ts): two
    // validations in a row, one on each instance, both 401.
    expect((await call(caddy.url, "POST", `${AUTH}/logout`, undefined, bearer(tokens.access_token))).status).toBe(200);
    const both = async () => [
      (await call(caddy.url, "GET", `${AUTH}/validate`, undefined, bearer(tokens.access_token))).status,
      (await call(caddy.url, "GET", `${AUTH}/validate`, undefined, bearer(tokens.access_token))).status,
    ];
    expect(await waitFor(both, (statuses) => statuses.every((status) => status === 401), 1000)).toEqual([401, 401]);
  });

  test("an instance stopped with sign-ins in flight: they and every request after them are served by the other, no 5xx", async () => {
    const signedUp = await call(caddy.url, "POST", `${AUTH}/register`, { username: "survivor", password: PASSWORD });
    expect(signedUp.status).toBe(201);
    // Two sign-ins under way (round robin: one for each instance) while b stops, their bodies finished after.
    const inFlight = [
      await postInTwoHalves(caddy.url, `${AUTH}/login`, { username: "survivor", password: PASSWORD }),
      await postInTwoHalves(caddy.url, `${AUTH}/login`, { username: "survivor", password: PASSWORD }),
    ];
    expect(await b.stop()).toBe(0);
    expect(await Promise.all(inFlight.map((request) => request.finish()))).toEqual([200, 200]);
    // POSTs first, before any GET could mark b failed: each one that meets b is retried on a with its body (no 502),
    // and a is not marked failed for it (no 503 for fail_duration, Caddy issue 7546). Refreshes, one after another
    // (sign-ins would meet the account's throttle).
    const statuses: number[] = [];
    let refreshToken = signedUp.body.refresh_token;
    for (let request = 0; request < 4; request++) {
      const rotated = await call(caddy.url, "POST", `${AUTH}/refresh`, { refresh_token: refreshToken });
      statuses.push(rotated.status);
      refreshToken = rotated.body?.refresh_token;
    }
    for (let request = 0; request < 4; request++) statuses.push((await call(caddy.url, "GET", `${AUTH}/validate`, undefined, bearer(signedUp.body.access_token))).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200]);
    expect(caddy.output()).not.toContain("invalid Read on closed Body");
  });
});

describe("examples/postgres/compose.yml", () => {
  const compose = Bun.YAML.parse(readFileSync(join(EXAMPLE, "compose.yml"), "utf8")) as {
    services: Record<string, { image: string; build?: { context: string }; environment?: Record<string, string>; depends_on?: unknown; volumes?: string[]; tmpfs?: string[] }>;
  };

  test("two Latchkey services with one environment: the PostgreSQL service's database, one PUBLIC_URL, Caddy as the one trusted hop", () => {
    const { services } = compose;
    expect(Object.keys(services).sort()).toEqual(["caddy", "latchkey-a", "latchkey-b", "postgres"]);
    for (const name of ["latchkey-a", "latchkey-b"]) {
      const environment = services[name]!.environment!;
      // The password beside the URL, not in it (test/postgres/password.test.ts runs this environment).
      expect(environment.DATABASE_URL).toBe("postgres://latchkey@postgres:5432/latchkey");
      expect(environment.PGPASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD:\?[^}]+\}$/);
      expect(environment).toMatchObject({ PUBLIC_URL: "https://auth.example.com", TRUST_PROXY: "1" });
      expect(services[name]!.depends_on).toEqual({ postgres: { condition: "service_healthy" } });
    }
    expect(services.postgres!.environment).toMatchObject({ POSTGRES_USER: "latchkey", POSTGRES_DB: "latchkey" });
    // The Caddyfile next to it is the one mounted, and its upstreams are the two services.
    expect(services.caddy!.volumes).toContain("./Caddyfile:/etc/caddy/Caddyfile:ro");
    expect(readFileSync(join(EXAMPLE, "Caddyfile"), "utf8")).toContain("reverse_proxy latchkey-a:3000 latchkey-b:3000 {");
  });

  test("the instances' image is built from this repository's Dockerfile, and /data (the image's VOLUME) is a tmpfs, not an anonymous volume each", () => {
    for (const name of ["latchkey-a", "latchkey-b"]) {
      const service = compose.services[name]!;
      expect({ image: service.image, build: service.build }).toEqual({ image: "latchkey:latest", build: { context: "../.." } });
      expect(existsSync(join(EXAMPLE, service.build!.context, "Dockerfile"))).toBe(true);
      expect(service.tmpfs).toEqual(["/data"]);
      expect(service.volumes ?? []).toEqual([]);
    }
    expect(readFileSync(join(import.meta.dir, "../../Dockerfile"), "utf8")).toContain("\nVOLUME /data\n");
  });
});
