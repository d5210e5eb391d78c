/**
 * Issue 11: the two-instance deployment of the README. examples/postgres/Caddyfile, as it is (moved to loopback
 * ports), in front of two compiled binaries on one PostgreSQL database: a client of the load balancer, whose
 * requests alternate between the instances, sees one server; with one instance stopped, the other serves alone.
 * examples/postgres/compose.yml is checked for the shape that deployment needs (no image registry here to run it).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AUTH } from "../support/client";
import { bearer, call } from "../support/http";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { startCaddy, type Proxy } from "../support/proxies";
import { removeDataDir, startServer, type RunningServer } from "../support/server";

const EXAMPLE = join(import.meta.dir, "../../examples/postgres");
const PASSWORD = "correct horse battery staple";

let cluster: TestPostgres;
let a: RunningServer;
let b: RunningServer;
let caddy: Proxy;

/** The example's site, with its upstreams (the compose services) and its host moved to loopback. */
function site(port: number): string {
  return readFileSync(join(EXAMPLE, "Caddyfile"), "utf8")
    .replace("auth.example.com {", `http://127.0.0.1:${port} {`)
    .replace("latchkey-a:3000", `127.0.0.1:${a.port}`)
    .replace("latchkey-b:3000", `127.0.0.1:${b.port}`);
}

beforeAll(async () => {
  cluster = await startPostgres();
  // The environment of compose.yml's instances (TRUST_PROXY=1: Caddy is the one hop), with registration open.
  const env = { DATABASE_URL: await cluster.createDatabase("balanced"), PUBLIC_URL: "http://auth.example.test", TRUST_PROXY: "1", ALLOW_REGISTRATION: "true" };
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
    expect((await call(caddy.url, "POST", `${AUTH}/logout`, undefined, bearer(tokens.access_token))).status).toBe(200);
    for (let request = 0; request < 4; request++)
      expect((await call(caddy.url, "GET", `${AUTH}/validate`, undefined, bearer(tokens.access_token))).status).toBe(401);
  });

  test("with one instance stopped, the other serves every request", async () => {
    const signedUp = await call(caddy.url, "POST", `${AUTH}/register`, { username: "survivor", password: PASSWORD });
    expect(signedUp.status).toBe(201);
    expect(await b.stop()).toBe(0);
    // A GET that meets the stopped instance is retried on the other (lb_try_duration), and marks it failed
    // (fail_duration): the sign-ins after it go to the live one. (A sign-in that met it first would get a 502:
    // Caddy retries no request whose body it has started to send.)
    const statuses: number[] = [];
    for (let request = 0; request < 4; request++) statuses.push((await call(caddy.url, "GET", `${AUTH}/validate`, undefined, bearer(signedUp.body.access_token))).status);
    for (let request = 0; request < 3; request++) statuses.push((await call(caddy.url, "POST", `${AUTH}/login`, { username: "survivor", password: PASSWORD })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200]);
  });
});

describe("examples/postgres/compose.yml", () => {
  const compose = Bun.YAML.parse(readFileSync(join(EXAMPLE, "compose.yml"), "utf8")) as {
    services: Record<string, { image: string; environment?: Record<string, string>; depends_on?: unknown; volumes?: string[] }>;
  };

  test("two Latchkey services with one environment: the PostgreSQL service's database, one PUBLIC_URL, Caddy as the one trusted hop", () => {
    const { services } = compose;
    expect(Object.keys(services).sort()).toEqual(["caddy", "latchkey-a", "latchkey-b", "postgres"]);
    for (const name of ["latchkey-a", "latchkey-b"]) {
      const environment = services[name]!.environment!;
      expect(environment.DATABASE_URL).toMatch(/^postgres:\/\/latchkey:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432\/latchkey$/);
      expect(environment).toMatchObject({ PUBLIC_URL: "https://auth.example.com", TRUST_PROXY: "1" });
      expect(services[name]!.depends_on).toEqual({ postgres: { condition: "service_healthy" } });
    }
    expect(services.postgres!.environment).toMatchObject({ POSTGRES_USER: "latchkey", POSTGRES_DB: "latchkey" });
    // The Caddyfile next to it is the one mounted, and its upstreams are the two services.
    expect(services.caddy!.volumes).toContain("./Caddyfile:/etc/caddy/Caddyfile:ro");
    expect(readFileSync(join(EXAMPLE, "Caddyfile"), "utf8")).toContain("reverse_proxy latchkey-a:3000 latchkey-b:3000 {");
  });
});
