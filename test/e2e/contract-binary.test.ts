/**
 * Issue 2's contract for the binary itself: --version/--help, configuration errors, the user and healthcheck
 * subcommands against a running server, signals, a binary copied alone into an empty folder, and the API docs.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AUTH, credential, send, waitFor, type Reply } from "../support/client";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, startServer, tempDataDir, type RunningServer } from "../support/server";
import { sqliteOnlyTest, TEST_ENGINE } from "../support/engine";
import { openTestDatabase } from "../support/database";

const PASSWORD = "correct horse battery";
const NEW_PASSWORD = "a different long passphrase";
const PACKAGE_VERSION: string = (await Bun.file(resolve(import.meta.dir, "../../package.json")).json()).version;

function expectError(reply: Reply, status: number, code: string) {
  expect({ status: reply.status, error: reply.body?.error }).toEqual({ status, error: code });
}

describe("latchkey --version and --help", () => {
  test("--version prints the version, the build target and the commit, and exits 0", async () => {
    const result = await runCli(["--version"], {});
    // make build compiles for this machine; make release names each --target (test/e2e/release.test.ts).
    expect(result).toEqual({
      code: 0,
      stdout: expect.stringMatching(new RegExp(`^latchkey ${PACKAGE_VERSION.replaceAll(".", "\\.")} \\(bun-${process.platform}-${process.arch}, commit ([0-9a-f]{7,40}|unknown)\\)\n$`)),
      stderr: "",
    });
  });

  test("--help lists every subcommand and exits 0", async () => {
    const result = await runCli(["--help"], {});
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    for (const usage of ["serve", "migrate", "user add <username>", "--email", "--admin", "user passwd <username>", "migrate-db --to postgres://", "healthcheck", "--version", "--help"])
      expect(result.stdout).toContain(usage);
  });
});

describe("configuration errors", () => {
  // [environment, variable named, a word of the accepted values]
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ TOKEN_DELIVERY: "x" }, "TOKEN_DELIVERY", /bearer.*header.*cookie/],
    [{ ALLOW_REGISTRATION: "yes please" }, "ALLOW_REGISTRATION", /true.*false/],
    [{ ACCESS_TOKEN_TTL: "abc" }, "ACCESS_TOKEN_TTL", /\b1h\b/],
    [{ REFRESH_TOKEN_TTL: "forever" }, "REFRESH_TOKEN_TTL", /\b30d\b/],
    [{ PORT: "70000" }, "PORT", /65535/],
    [{ JWT_SECRET: "x".repeat(31) }, "JWT_SECRET", /32/],
    [{ JWT_SECRET: "é".repeat(15) + "x" }, "JWT_SECRET", /32/], // 16 characters, 31 bytes
    [{ REFRESH_TOKEN_TTL: "999999999d" }, "REFRESH_TOKEN_TTL", /3650d/], // would overflow every date computed from it
    [{ REFRESH_REUSE_INTERVAL: "-1" }, "REFRESH_REUSE_INTERVAL", /\b0 or\b/],
    [{ HOST: "not a host" }, "HOST", /IP address/],
    [{ HOST: "::::garbage" }, "HOST", /IP address/],
    [{ PUBLIC_URL: "ftp://auth.example.com" }, "PUBLIC_URL", /https?:\/\//],
    [{ ALLOWED_ORIGINS: "https://ok.example.com,not a url" }, "ALLOWED_ORIGINS", /not a URL/],
    [{ ACCESS_COOKIE_NAME: "bad name" }, "ACCESS_COOKIE_NAME", /letters, digits/],
    [{ TRUST_PROXY: "maybe" }, "TRUST_PROXY", /hop count/],
    [{ RATE_LIMIT_IP: "fast" }, "RATE_LIMIT_IP", /600\/1m/],
    [{ RATE_LIMIT_IP: "off" }, "RATE_LIMIT_IP", /<requests>\/<period>/], // RATE_LIMIT=off is the switch
    [{ API_KEY_RATE_LIMIT: "lots" }, "API_KEY_RATE_LIMIT", /off or/],
    [{ PASSWORD_HASH_MEMORY_KIB: "1024" }, "PASSWORD_HASH_MEMORY_KIB", /19456/],
    [{ ADMIN_USERNAME: "boss" }, "ADMIN_PASSWORD_FILE", /together/],
    [{ ACCESS_COOKIE_NAME: "__Host-at" }, "ACCESS_COOKIE_NAME", /https PUBLIC_URL/],
    [{ PUBLIC_URL: "https://auth.example.test", REFRESH_COOKIE_NAME: "__Host-rt" }, "REFRESH_COOKIE_NAME", /Path=\//],
    [{ TRUST_PROXY_HEADER: "forwarded" }, "TRUST_PROXY_HEADER", /x-forwarded-for or x-real-ip/],
    [{ JWT_ALG: "none" }, "JWT_ALG", /HS256, RS256, ES256 or EdDSA/],
    [{ JWT_ALG: "rs256" }, "JWT_ALG", /HS256, RS256, ES256 or EdDSA/],
    [{ OIDC_ID_TOKEN_ALG: "HS256" }, "OIDC_ID_TOKEN_ALG", /RS256, ES256 or EdDSA/],
    // Not silently ignored while only SQLite works (issue 11): the password in the URL is not echoed.
    [{ DATABASE_URL: "mysql://latchkey:hunter2@db.example/latchkey" }, "DATABASE_URL", /expected postgres:\/\/user:password@host:5432\/database/],
    [{ DATABASE_URL: "postgres://latchkey:hunter2@127.0.0.1:1/latchkey", DATABASE_POOL_SIZE: "1" }, "DATABASE_POOL_SIZE", /expected a whole number from 2 to 1000/],
    [{ DATABASE_URL: "postgres://latchkey:hunter2@127.0.0.1:1/latchkey" }, "DATABASE_URL", /127\.0\.0\.1:1\/latchkey: cannot connect \(ECONNREFUSED/],
  ];

  test.each(cases.map(([env, variable, accepted]) => [Object.entries(env).map((entry) => entry.join("=")).join(" "), env, variable, accepted] as const))(
    "%s stops the start with exit 2 and one line naming the variable",
    async (_label, env, variable, accepted) => {
      const dataDir = tempDataDir();
      try {
        const result = await runCli(["serve"], { DATA_DIR: dataDir, PORT: String(freePort()), HOST: "127.0.0.1", ...env });
        expect(result.code).toBe(2);
        expect(result.stdout).toBe("");
        const lines = result.stderr.trimEnd().split("\n");
        expect(lines).toHaveLength(1);
        expect(lines[0]).toContain(variable);
        expect(lines[0]).toMatch(accepted);
        expect(result.stderr).not.toMatch(/^\s+at /m);
        // A password in DATABASE_URL is never echoed.
        expect(result.stderr).not.toContain("hunter2");
        // Refused before anything was written.
        expect(readdirSync(dataDir)).toEqual([]);
      } finally {
        removeDataDir(dataDir);
      }
    },
  );
});

describe("start-up failures outside the environment's syntax", () => {
  const expectOneConfigLine = (result: { code: number; stderr: string }, variable: string) => {
    expect(result.code).toBe(2);
    // One line (a failure shows them all).
    expect(result.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(new RegExp(`^latchkey: configuration error: ${variable}=`))]);
  };

  // On PostgreSQL DATABASE_URL names the database: an unreachable one is in the configuration errors above.
  sqliteOnlyTest("a DATA_DIR or DATABASE_PATH that cannot be created stops the start with exit 2 naming it", async () => {
    const port = String(freePort());
    expectOneConfigLine(await runCli(["serve"], { DATA_DIR: "/proc/latchkey-nope", PORT: port, HOST: "127.0.0.1" }), "DATA_DIR");
    const dataDir = tempDataDir();
    try {
      const env = { DATA_DIR: dataDir, DATABASE_PATH: "/proc/latchkey-nope/latchkey.db", PORT: port, HOST: "127.0.0.1" };
      expectOneConfigLine(await runCli(["serve"], env), "DATABASE_PATH");
      expectOneConfigLine(await runCli(["migrate"], env), "DATABASE_PATH");
      // Without DATABASE_PATH the database lives in DATA_DIR, and that is the variable a subcommand names.
      expectOneConfigLine(await runCli(["migrate"], { DATA_DIR: "/proc/latchkey-nope" }), "DATA_DIR");
      expectOneConfigLine(await runCli(["user", "list"], { DATA_DIR: "/proc/latchkey-nope" }), "DATA_DIR");
    } finally {
      removeDataDir(dataDir);
    }
  });

  test("a PORT another server listens on stops the start with exit 2 instead of sharing the port", async () => {
    const first = await startServer();
    try {
      const dataDir = tempDataDir();
      try {
        const second = await runCli(["serve"], { DATA_DIR: dataDir, PORT: String(first.port), HOST: "127.0.0.1" });
        expectOneConfigLine(second, "PORT");
        expect(second.stderr).toContain("already in use");
      } finally {
        removeDataDir(dataDir);
      }
      expect((await send(first.url, "GET", "/health")).status).toBe(200);
    } finally {
      expect(await first.stop()).toBe(0);
      removeDataDir(first.dataDir);
    }
  });
});

describe("user add, user passwd and healthcheck against a running server with registration closed", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ RATE_LIMIT: "off", ALLOW_REGISTRATION: "false" });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  const login = (name: string, password: string) => send(server.url, "POST", `${AUTH}/login`, { json: { username: name, password } });

  test("the server says on start what it serves, and registration is closed", async () => {
    const line = server.output().split("\n").find((entry) => entry.includes(" listening on "))!;
    expect(line).toContain(PACKAGE_VERSION);
    expect(line).toContain(`127.0.0.1:${server.port}`);
    expect(line).toContain("bearer");
    expect(line).toContain("registration closed");
    expect(line).toContain(TEST_ENGINE === "postgres" ? "data in PostgreSQL (127.0.0.1:" : `data in ${server.dataDir}`);
    expectError(await send(server.url, "POST", `${AUTH}/register`, { json: { username: "alice", password: PASSWORD } }), 403, "registration_disabled");
  });

  test("user add alice --email a@x.io --admin takes the password from stdin; alice can then sign in as admin", async () => {
    const added = await runCli(["user", "add", "alice", "--email", "a@x.io", "--admin"], { DATA_DIR: server.dataDir }, `${PASSWORD}\n`);
    expect(added.code).toBe(0);
    expect(added.stdout).toContain("alice");
    expect(added.stdout + added.stderr).not.toContain(PASSWORD);

    for (const name of ["alice", "A@X.IO"]) {
      const reply = await login(name, PASSWORD);
      expect(reply.status).toBe(200);
      expect(reply.body.user).toMatchObject({ username: "alice", email: "a@x.io" });
      expect(reply.body.user.roles).toContain("admin");
    }
    // The trailing newline was not part of the password.
    expectError(await login("alice", `${PASSWORD}\n`), 401, "invalid_credentials");

    const plain = await runCli(["user", "add", "bob"], { DATA_DIR: server.dataDir }, PASSWORD);
    expect(plain.code).toBe(0);
    const bob = await login("bob", PASSWORD);
    expect(bob.status).toBe(200);
    expect(bob.body.user.roles).toEqual([]);
  });

  test("user add refuses a taken name and an invalid password with exit 1 and one line", async () => {
    for (const [args, stdin] of [
      [["user", "add", "alice"], `${PASSWORD}\n`],
      [["user", "add", "carol"], "short\n"],
      [["user", "add", "-bad-name"], `${PASSWORD}\n`],
    ] as const) {
      const result = await runCli([...args], { DATA_DIR: server.dataDir }, stdin);
      expect(result.code).toBe(1);
      expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(result.stderr).not.toMatch(/^\s+at /m);
      expect(result.stdout + result.stderr).not.toContain(stdin.trim());
    }
    expectError(await login("carol", "short"), 401, "invalid_credentials");
    // With registration closed, /register says nothing about which names exist.
    expectError(await send(server.url, "POST", `${AUTH}/register`, { json: { username: "alice", password: PASSWORD } }), 403, "registration_disabled");
  });

  test("user passwd changes the password and ends every session of the user", async () => {
    const first = await login("alice", PASSWORD);
    const second = await login("a@x.io", PASSWORD);
    expect([first.status, second.status]).toEqual([200, 200]);
    // Warm the server's session cache, which the CLI (another process) cannot invalidate directly.
    expect((await send(server.url, "GET", `${AUTH}/me`, { headers: credential("bearer", first.body.access_token) })).status).toBe(200);

    const passwd = await runCli(["user", "passwd", "alice"], { DATA_DIR: server.dataDir }, `${NEW_PASSWORD}\n`);
    expect(passwd.code).toBe(0);
    expect(passwd.stdout + passwd.stderr).not.toContain(NEW_PASSWORD);
    const db = await openTestDatabase(server.dataDir);
    try {
      const row = (await db.get<{ detail: string }>("SELECT detail FROM audit_events WHERE event = 'password_changed' ORDER BY id DESC"))!;
      const ended = Number(/; (\d+) session\(s\) ended/.exec(passwd.stdout)?.[1]);
      expect(ended).toBeGreaterThanOrEqual(2);
      expect(JSON.parse(row.detail)).toEqual({ via: "cli", sessions_ended: ended });
    } finally {
      await db.close();
    }

    for (const session of [first, second]) {
      const refresh = await send(server.url, "POST", `${AUTH}/refresh`, { json: { refresh_token: session.body.refresh_token } });
      expectError(refresh, 401, "invalid_refresh_token");
      // The server trusts a looked-up session for at most 1 s.
      const me = await waitFor(
        () => send(server.url, "GET", `${AUTH}/me`, { headers: credential("bearer", session.body.access_token) }),
        (reply) => reply.status !== 200,
      );
      expectError(me, 401, "invalid_token");
    }
    expectError(await login("alice", PASSWORD), 401, "invalid_credentials");
    expect((await login("alice", NEW_PASSWORD)).status).toBe(200);

    const unknown = await runCli(["user", "passwd", "nobody-here"], { DATA_DIR: server.dataDir }, `${NEW_PASSWORD}\n`);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trimEnd().split("\n")).toHaveLength(1);
  });

  test("healthcheck exits 0 against the running server (HOST given or the 0.0.0.0 default)", async () => {
    const withHost = await runCli(["healthcheck"], { PORT: String(server.port), HOST: "127.0.0.1" });
    expect(withHost.code).toBe(0);
    const defaultHost = await runCli(["healthcheck"], { PORT: String(server.port) });
    expect(defaultHost.code).toBe(0);
  });

  test("healthcheck exits 1 when nothing listens", async () => {
    const result = await runCli(["healthcheck"], { PORT: String(freePort()), HOST: "127.0.0.1" });
    expect(result.code).toBe(1);
  });
});

describe("signals", () => {
  test("SIGTERM as soon as the listening line is printed still stops cleanly (five starts)", async () => {
    for (let start = 0; start < 5; start++) {
      const server = await startServer({ RATE_LIMIT: "off" });
      try {
        expect(await server.stop("SIGTERM")).toBe(0);
        expect(server.output()).toContain("latchkey: stopped");
      } finally {
        removeDataDir(server.dataDir);
      }
    }
  });

  test("SIGTERM lets an in-flight request finish, then exits 0", async () => {
    // A slow hash keeps the login in flight; the limiter's row, written before hashing, says it has started.
    const server = await startServer({ PASSWORD_HASH_TIME_COST: "24" });
    const db = await openTestDatabase(server.dataDir);
    try {
      const login = send(server.url, "POST", `${AUTH}/login`, { json: { username: "nobody-here", password: PASSWORD } });
      await waitFor(
        async () => (await db.get<{ n: number }>("SELECT CAST(count(*) AS INTEGER) AS n FROM login_throttles"))!,
        (row) => row.n > 0,
      );
      server.proc.kill("SIGTERM");
      expectError(await login, 401, "invalid_credentials");
      expect(await server.proc.exited).toBe(0);
      const output = server.output();
      expect(output.indexOf("SIGTERM received")).toBeGreaterThan(-1);
      expect(output.indexOf('"event":"login_failed"')).toBeGreaterThan(output.indexOf("SIGTERM received"));
    } finally {
      await db.close();
      server.proc.kill("SIGKILL");
      removeDataDir(server.dataDir);
    }
  });

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    test(`${signal}: the server stops listening and exits 0`, async () => {
      const server = await startServer({ RATE_LIMIT: "off" });
      try {
        expect((await fetch(`${server.url}/health`)).status).toBe(200);
        server.proc.kill(signal);
        expect(await server.proc.exited).toBe(0);
        expect(server.output()).not.toMatch(/^\s+at /m);
        let refused = false;
        try {
          await fetch(`${server.url}/health`);
        } catch {
          refused = true;
        }
        expect(refused).toBe(true);
      } finally {
        server.proc.kill("SIGKILL");
        removeDataDir(server.dataDir);
      }
    });
  }
});

describe("latchkey migrate", () => {
  // PostgreSQL's migrations, and instances migrating at once: test/postgres/migrations.test.ts.
  sqliteOnlyTest("creates the database with every table, applies every migration once, and is idempotent", async () => {
    const dataDir = tempDataDir();
    try {
      for (let run = 0; run < 2; run++) {
        const result = await runCli(["migrate"], { DATA_DIR: dataDir });
        expect(result.code).toBe(0);
        expect(result.stdout).toContain(run === 0 ? "created the database" : "is up to date");
      }
      const db = new Database(join(dataDir, "latchkey.db"), { readonly: true });
      try {
        const tables = (db.query("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((row) => row.name);
        expect(tables).toEqual(expect.arrayContaining(["api_keys", "audit_events", "login_throttles", "refresh_tokens", "sessions", "users"]));
        const applied = (db.query("SELECT count(*) AS n FROM __drizzle_migrations").get() as { n: number }).n;
        const journal = await Bun.file(resolve(import.meta.dir, "../../drizzle/sqlite/meta/_journal.json")).json();
        expect(applied).toBe(journal.entries.length);
      } finally {
        db.close();
      }
    } finally {
      removeDataDir(dataDir);
    }
  });
});

describe("ACCESS_COOKIE_NAME and REFRESH_COOKIE_NAME", () => {
  test("rename both cookies: they are set, read, rotated and cleared under the configured names", async () => {
    const server = await startServer({
      TOKEN_DELIVERY: "cookie",
      ALLOW_REGISTRATION: "true",
      RATE_LIMIT: "off",
      ACCESS_COOKIE_NAME: "sso_at",
      REFRESH_COOKIE_NAME: "sso_rt",
    });
    try {
      const origin = `http://localhost:${server.port}`;
      const registered = await send(server.url, "POST", `${AUTH}/register`, { json: { username: "renamed", password: PASSWORD }, headers: { origin } });
      expect(registered.status).toBe(201);
      expect(Object.keys(registered.cookies).sort()).toEqual(["sso_at", "sso_rt"]);
      const access = registered.cookies.sso_at!.value;
      const refresh = registered.cookies.sso_rt!.value;
      expect(registered.cookies.sso_rt!.attributes.path).toBe("/api/v1/auth");

      expect((await send(server.url, "GET", `${AUTH}/me`, { headers: { cookie: `sso_at=${access}` } })).status).toBe(200);
      // The default names mean nothing on this instance.
      expectError(await send(server.url, "GET", `${AUTH}/me`, { headers: { cookie: `latchkey_access=${access}` } }), 401, "unauthorized");

      const refreshed = await send(server.url, "POST", `${AUTH}/refresh`, { json: {}, headers: { origin, cookie: `sso_rt=${refresh}` } });
      expect(refreshed.status).toBe(200);
      expect(Object.keys(refreshed.cookies).sort()).toEqual(["sso_at", "sso_rt"]);

      const loggedOut = await send(server.url, "POST", `${AUTH}/logout`, { headers: { origin, cookie: `sso_at=${refreshed.cookies.sso_at!.value}` } });
      expect(loggedOut.status).toBe(200);
      expect(loggedOut.cookies.sso_at!.attributes["max-age"]).toBe("0");
      expect(loggedOut.cookies.sso_rt!.attributes["max-age"]).toBe("0");
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });

  test("__Host- and __Secure- names behind https: the browser's prefix rules hold (Secure, and Path=/ for __Host-)", async () => {
    const server = await startServer({
      TOKEN_DELIVERY: "cookie",
      ALLOW_REGISTRATION: "true",
      RATE_LIMIT: "off",
      PUBLIC_URL: "https://auth.example.test",
      ACCESS_COOKIE_NAME: "__Host-latchkey_access",
      REFRESH_COOKIE_NAME: "__Secure-latchkey_refresh",
    });
    try {
      const origin = "https://auth.example.test";
      const registered = await send(server.url, "POST", `${AUTH}/register`, { json: { username: "prefixed", password: PASSWORD }, headers: { origin } });
      expect(registered.status).toBe(201);
      const access = registered.cookies["__Host-latchkey_access"]!;
      const refresh = registered.cookies["__Secure-latchkey_refresh"]!;
      expect(access.attributes).toMatchObject({ secure: true, path: "/" });
      expect(access.attributes.domain).toBeUndefined();
      expect(refresh.attributes).toMatchObject({ secure: true, path: "/api/v1/auth" });
      expect((await send(server.url, "GET", `${AUTH}/me`, { headers: { cookie: `__Host-latchkey_access=${access.value}` } })).status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });
});

describe("a binary copied alone into an empty folder", () => {
  test("starts with cwd = that folder and no DATA_DIR, creates ./data, migrates, serves, and ignores a .env there", async () => {
    const folder = mkdtempSync(join(tmpdir(), "latchkey-alone-"));
    try {
      const binary = join(folder, "latchkey");
      copyFileSync(BINARY, binary);
      // The binary is built not to read .env from where it runs: this file must change nothing.
      writeFileSync(join(folder, ".env"), "TOKEN_DELIVERY=cookie\nALLOW_REGISTRATION=false\nDATA_DIR=/nonexistent/elsewhere\n");
      const port = freePort();
      const server = await spawnServer([binary], {
        cwd: folder,
        env: { PATH: "/usr/bin:/bin", HOST: "127.0.0.1", PORT: String(port), ALLOW_REGISTRATION: "true", RATE_LIMIT: "off" },
      });
      let code: number;
      try {
        const dataDir = join(folder, "data");
        expect(server.output()).toContain(dataDir);
        expect(server.output()).toContain("bearer");
        const base = `http://127.0.0.1:${port}`;
        const health = await send(base, "GET", "/health");
        expect(health.status).toBe(200);
        expect(health.body).toEqual({ status: "ok", version: PACKAGE_VERSION, commit: expect.any(String) });
        // Registration works: the migrations ran from inside the binary.
        const registered = await send(base, "POST", `${AUTH}/register`, { json: { username: "lonely", password: PASSWORD } });
        expect(registered.status).toBe(201);
        expect(typeof registered.body.access_token).toBe("string");
        expect(statSync(join(dataDir, "latchkey.db")).isFile()).toBe(true);
        expect(statSync(join(dataDir, "jwt_secret")).mode & 0o777).toBe(0o600);
      } finally {
        code = await server.stop();
      }
      expect(code).toBe(0);
      expect(readdirSync(folder).sort()).toEqual([".env", "data", "latchkey"]);

      const db = new Database(join(folder, "data", "latchkey.db"), { readonly: true });
      try {
        const tables = (db.query("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((row) => row.name);
        expect(tables).toEqual(expect.arrayContaining(["users", "sessions", "refresh_tokens"]));
        const applied = (db.query("SELECT count(*) AS n FROM __drizzle_migrations").get() as { n: number }).n;
        const journal = await Bun.file(resolve(import.meta.dir, "../../drizzle/sqlite/meta/_journal.json")).json();
        expect(applied).toBe(journal.entries.length);
        expect(db.query("SELECT journal_mode FROM pragma_journal_mode").get()).toEqual({ journal_mode: "wal" });
      } finally {
        db.close();
      }
    } finally {
      removeDataDir(folder);
    }
  });
});

describe("API docs", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ RATE_LIMIT: "off" });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("/docs is HTML that loads the docs UI from /docs/scalar.js, served by the binary itself", async () => {
    const page = await fetch(`${server.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    expect(html).toMatch(/<script[^>]*\ssrc="\/docs\/scalar\.js"/);
    // Nothing is fetched from another host.
    for (const [, url] of html.matchAll(/\s(?:src|href)="([^"]*)"/g)) expect(url).not.toMatch(/^(https?:)?\/\//);
    // A browser obeys the page's Content-Security-Policy: it must let the page load its script and inline
    // styles from this server and fetch /docs/json, or the docs render blank.
    const policy = new Map(
      (page.headers.get("content-security-policy") ?? "")
        .split(";")
        .map((directive) => directive.trim().split(/\s+/))
        .filter(([name]) => name)
        .map(([name, ...sources]) => [name!.toLowerCase(), sources] as const),
    );
    const allows = (directive: string, source: string) => {
      const sources = policy.get(directive) ?? policy.get("default-src");
      return sources === undefined || sources.includes(source) || sources.includes("*");
    };
    expect({ script: allows("script-src", "'self'"), connect: allows("connect-src", "'self'"), style: allows("style-src", "'unsafe-inline'") }).toEqual({
      script: true,
      connect: true,
      style: true,
    });

    const script = await fetch(`${server.url}/docs/scalar.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("javascript");
    expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });

  test("/docs/json is an OpenAPI 3 document with every route, its schemas, and the bearer and cookie schemes", async () => {
    const response = await fetch(`${server.url}/docs/json`);
    expect(response.status).toBe(200);
    const spec = (await response.json()) as any;
    expect(spec.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(spec.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    expect(spec.components.securitySchemes.cookie).toMatchObject({ type: "apiKey", in: "cookie", name: "latchkey_access" });

    const routes: [string, string, string, boolean][] = [
      ["/api/v1/auth/register", "post", "201", false],
      ["/api/v1/auth/login", "post", "200", false],
      ["/api/v1/auth/token", "post", "200", false],
      ["/api/v1/auth/refresh", "post", "200", false],
      ["/api/v1/auth/logout", "post", "200", true],
      ["/api/v1/auth/me", "get", "200", true],
      ["/api/v1/auth/validate", "get", "200", true],
      ["/health", "get", "200", false],
    ];
    for (const [path, method, success, authenticated] of routes) {
      const operation = spec.paths[path]?.[method];
      expect(operation).toBeDefined();
      expect(operation.responses[success]?.content?.["application/json"]?.schema).toBeDefined();
      if (authenticated) {
        const schemes = (operation.security as Record<string, unknown>[]).flatMap((requirement) => Object.keys(requirement));
        expect(schemes).toEqual(expect.arrayContaining(["bearer", "cookie"]));
        expect(operation.responses["401"]).toBeDefined();
      }
    }
    const bodyOf = (path: string) => spec.paths[path].post.requestBody.content;
    expect(Object.keys(bodyOf("/api/v1/auth/register"))).toEqual(["application/json"]);
    expect(Object.keys(bodyOf("/api/v1/auth/register")["application/json"].schema.properties).sort()).toEqual(["email", "password", "username"]);
    expect(Object.keys(bodyOf("/api/v1/auth/login")["application/json"].schema.properties)).toEqual(
      expect.arrayContaining(["username", "password"]),
    );
    expect(Object.keys(bodyOf("/api/v1/auth/token")).sort()).toEqual(["application/json", "application/x-www-form-urlencoded"]);
    expect(bodyOf("/api/v1/auth/refresh")["application/json"].schema.properties.refresh_token).toBeDefined();
    for (const [path, code] of [
      ["/api/v1/auth/register", "403"],
      ["/api/v1/auth/register", "409"],
      ["/api/v1/auth/register", "422"],
      ["/api/v1/auth/login", "401"],
      ["/api/v1/auth/token", "400"],
      ["/api/v1/auth/refresh", "401"],
    ] as const)
      expect(spec.paths[path].post.responses[code]).toBeDefined();
  });
});
