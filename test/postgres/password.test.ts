/**
 * Issue 22: a PostgreSQL password holding `@ / # :` works, and no error message echoes any part of it. The test's
 * cluster is switched from trust to password authentication (scram-sha-256) for TCP, and the `latchkey` role gets
 * such a password. The binary then runs with the environment of examples/postgres/compose.yml's instances (the
 * password as PGPASSWORD beside a URL without one), with the password percent-encoded in the URL, and with it
 * written into the URL as it is (refused before any connection, exit 2).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { AUTH } from "../support/client";
import { call } from "../support/http";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { freePort, removeDataDir, runCli, startServer, tempDataDir } from "../support/server";

/** Every separator a URL has, between words that must never appear in an error (in any case: hosts are lower-cased). */
const SECRET = "Quokka@Zebra/Ocelot#Lynx:Marmot?Tapir";
const PIECES = SECRET.split(/[@/#:?]/);
const USER_PASSWORD = "correct horse battery staple";

let cluster: TestPostgres;
/** postgres://latchkey@127.0.0.1:<port>/latchkey: the database, without the password. */
let database: string;
let host: string;

beforeAll(async () => {
  cluster = await startPostgres();
  database = await cluster.createDatabase("latchkey");
  host = new URL(database).host;
  const admin = postgres(database, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`alter role latchkey password '${SECRET.replaceAll("'", "''")}'`);
    const [row] = await admin<{ hba_file: string }[]>`show hba_file`;
    const hba = row!.hba_file;
    // The first matching line wins: TCP from loopback now needs the password; the Unix socket stays trusted.
    writeFileSync(hba, `host all all 127.0.0.1/32 scram-sha-256\n${readFileSync(hba, "utf8")}`);
    await admin`select pg_reload_conf()`;
  } finally {
    await admin.end();
  }
  // The switch took: without the password the server refuses.
  const probe = postgres(database, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  expect(await probe`select 1`.then(() => "connected", (error: Error) => error.message)).toBe('password authentication failed for user "latchkey"');
  await probe.end();
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

/** The environment compose.yml gives latchkey-a, with POSTGRES_PASSWORD interpolated and the host moved to loopback. */
function composeEnvironment(password: string): Record<string, string> {
  const compose = Bun.YAML.parse(readFileSync(join(import.meta.dir, "../../examples/postgres/compose.yml"), "utf8")) as {
    services: Record<string, { environment: Record<string, string> }>;
  };
  return Object.fromEntries(
    Object.entries(compose.services["latchkey-a"]!.environment).map(([name, value]) => [
      name,
      value.replace(/\$\{POSTGRES_PASSWORD:\?[^}]*\}/, password).replace("@postgres:5432/", `@${host}/`),
    ]),
  );
}

function expectNoPiece(output: string) {
  for (const piece of PIECES) expect(`${piece}: ${output.toLowerCase().includes(piece.toLowerCase())}`).toBe(`${piece}: false`);
}

describe("a PostgreSQL password with @ / # : ?", () => {
  test("compose.yml's instance environment (PGPASSWORD beside the URL): it starts, serves, and keeps nothing in DATA_DIR", async () => {
    const env = composeEnvironment(SECRET);
    expect(env.DATABASE_URL).toBe(`postgres://latchkey@${host}/latchkey`);
    expect(env.PGPASSWORD).toBe(SECRET);
    const server = await startServer({ ...env, PUBLIC_URL: "http://auth.example.test", TRUST_PROXY: "", ALLOW_REGISTRATION: "true" });
    try {
      const registered = await call(server.url, "POST", `${AUTH}/register`, { username: "pgpassword", password: USER_PASSWORD });
      expect(registered.status).toBe(201);
      expect((await call(server.url, "POST", `${AUTH}/login`, { username: "pgpassword", password: USER_PASSWORD })).status).toBe(200);
      expectNoPiece(server.output());
      // The tmpfs compose.yml puts on /data holds nothing that must survive.
      expect(readdirSync(server.dataDir)).toEqual([]);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });

  test("percent-encoded in DATABASE_URL: it starts and serves", async () => {
    const url = database.replace("postgres://latchkey@", `postgres://latchkey:${encodeURIComponent(SECRET)}@`);
    const server = await startServer({ DATABASE_URL: url });
    try {
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      expectNoPiece(server.output());
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });

  /** `latchkey serve` that must stop at once: exit 2, one line naming DATABASE_URL, and no piece of the password. */
  async function refused(env: Record<string, string>) {
    const dataDir = tempDataDir();
    try {
      const result = await runCli(["serve"], { DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: String(freePort()), ...env });
      expect({ code: result.code, stdout: result.stdout, lines: result.stderr.trimEnd().split("\n").length }).toEqual({ code: 2, stdout: "", lines: 1 });
      expect(result.stderr).toStartWith("latchkey: configuration error: DATABASE_URL");
      expectNoPiece(result.stderr);
      return result.stderr;
    } finally {
      removeDataDir(dataDir);
    }
  }

  test("a wrong PGPASSWORD: exit 2, the database's reason, no piece of either password", async () => {
    const wrong = SECRET.split("").reverse().join("");
    const stderr = await refused({ ...composeEnvironment(wrong) });
    expect(stderr).toContain(`DATABASE_URL=postgres://${host}/latchkey: cannot connect (password authentication failed for user "latchkey")`);
  });

  test.each([
    ["as it is", (url: string) => url.replace("postgres://latchkey@", `postgres://latchkey:${SECRET}@`)],
    ["with only its @ and / as they are", (url: string) => url.replace("postgres://latchkey@", `postgres://latchkey:Quokka@Zebra/Ocelot@`)],
    ["with only a # as it is", (url: string) => url.replace("postgres://latchkey@", `postgres://latchkey:${encodeURIComponent("Quokka@Zebra")}#Lynx@`)],
    ["with a port-like piece before a /", (url: string) => url.replace("postgres://latchkey@", `postgres://latchkey:5432/Ocelot@`)],
    ["with a bare %", (url: string) => url.replace("postgres://latchkey@", `postgres://latchkey:Quokka%zz@`)],
  ])("written into DATABASE_URL %s: refused before connecting, exit 2, no piece of it echoed", async (_label, write) => {
    const stderr = await refused({ DATABASE_URL: write(database) });
    expect(stderr).toContain("not percent-encoded");
    expect(stderr).toContain("PGPASSWORD");
  });
});
