// `make bench`: measures dist/latchkey against the ceiling Bun and Elysia set, on this machine, in one run.
// Every figure is interleaved with its reference and is the median of BENCH_ROUNDS rounds; see bench/README.md.
import { Database } from "bun:sqlite";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
// The key format, the JWT signing, the sign-ins and the server processes are the ones the server and the test suite use.
import { sha256Hex } from "../src/lib/crypto";
import { displayPrefix, generateApiKey } from "../src/modules/keys/format";
import { SESSION_COOKIE, signJwt } from "../test/support/client";
import { call } from "../test/support/http";
import { apiSignIn, browserSignIn, cookieJar } from "../test/support/pages";
import { startPostgres } from "../test/support/postgres";
import { BINARY, freePort, spawnServer, startServer, type SpawnedServer } from "../test/support/server";
import postgres from "postgres";

const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RESULTS = resolve(process.env.BENCH_RESULTS ?? resolve(import.meta.dir, "results.json"));
const CORES = availableParallelism();
const PASSWORD = "a long bench passphrase";
const HASH = { algorithm: "argon2id", memoryCost: 19456, timeCost: 2 } as const;
/**
 * One wrk thread: wrk itself takes a core per thread, and with two on this 2-core machine the load generator and
 * the server share both cores, every server is slowed alike and every ratio drifts toward 1 (bench/README.md).
 */
const THREADS = 1;
const WRK = [`-t${THREADS}`, "-c32", `-d${DURATION}s`, "--latency"];
/**
 * Login load. wrk's default 2 s timeout is less than a login can wait behind a storm on a busy 2-core machine (8
 * logins in flight took 0.8–1.1 s each with the machine's load at 15); every login run, warm-ups included, uses it.
 */
const LOGIN_TIMEOUT = ["--timeout", "10s"];
const LOGIN_WRK = [`-t${THREADS}`, "-c8", `-d${DURATION}s`, ...LOGIN_TIMEOUT];
/** A discarded login warm-up: one second of the same load. */
const LOGIN_WARM_UP = [`-t${THREADS}`, "-c8", "-d1s", ...LOGIN_TIMEOUT];
/** A quick run (BENCH_DURATION under 5 s, as `make test` runs it) shows the bench works: smaller memory batches. */
const QUICK = DURATION < 5;
/**
 * BENCH_ONLY=metrics: only the metrics on/off figures (issue 22); BENCH_ONLY=postgres: only the PostgreSQL phase;
 * BENCH_ONLY=throughput: only the validate and forward-auth figures against their references; BENCH_ONLY=memory:
 * only the memory growth.
 */
const ONLY_METRICS = process.env.BENCH_ONLY === "metrics";
const ONLY_POSTGRES = process.env.BENCH_ONLY === "postgres";
const ONLY_THROUGHPUT = process.env.BENCH_ONLY === "throughput";
const ONLY_MEMORY = process.env.BENCH_ONLY === "memory";
/** Requests per memory batch: issue 5's 200k (25k in a quick run). */
const RSS_BATCH = QUICK ? 25_000 : 200_000;
/** PUBLIC_URL of every bench server, hence the `iss` of the access tokens this script signs itself. */
const PUBLIC_URL = "http://latchkey.bench";
/**
 * Distinct sessions in the scale load: more than one second of requests at any rate this machine reaches, so a
 * session comes back only after its 1-second cache entry has expired and every validate reads the database.
 */
const SCALE_SESSIONS = 30_000;
/** Distinct API keys in the scale load: 20 for each of the 10 users (within API_KEYS_MAX_PER_USER). */
const SCALE_KEYS = 200;
/**
 * Memory phase, per batch: the second batch uses new sessions and keys, so that state kept per credential and
 * never released shows as growth (50,000 sessions at even 500 bytes each would be 25 MB, above the 10 % target).
 */
const MEMORY_USERS = 2_000;
const MEMORY_SESSIONS = QUICK ? 10_000 : 50_000;
const MEMORY_KEYS = 2_000;

const children = new Set<Bun.Subprocess>();
process.on("exit", () => children.forEach((child) => child.kill("SIGKILL")));
const scratch = mkdtempSync(join(tmpdir(), "latchkey-bench-scripts-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));

// ---------------------------------------------------------------- processes

type Server = SpawnedServer & { url: string };

/** The binary on a free loopback port (test/support's startServer) as the bench runs it: no limits, open sign-up. */
function startLatchkey(dataDir: string, secret: string, env: Record<string, string> = {}): Promise<Server> {
  return startServer({ PUBLIC_URL, JWT_SECRET: secret, RATE_LIMIT: "off", ALLOW_REGISTRATION: "true", ...env }, dataDir);
}

/** The reference server (bench/ceiling.ts); its /floor answers with `allowHeaders`, forward auth's allowed answer's. */
async function startCeiling(secret: string, allowHeaders: Record<string, string>): Promise<Server> {
  const port = freePort();
  const argv = [process.execPath, resolve(import.meta.dir, "ceiling.ts"), String(port), secret, JSON.stringify(allowHeaders)];
  const server = await spawnServer(argv, { env: { PATH: process.env.PATH ?? "" } });
  return { ...server, url: `http://127.0.0.1:${port}` };
}

/** CPU time the process has used so far (all its threads, user and system), in seconds (/proc/<pid>/stat). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm) ", in clock ticks (100 a second).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMb(pid: number): number {
  return memoryMb(pid).rss;
}

/**
 * The process's resident memory (VmRSS) and its two parts: anonymous memory (the JavaScript heap, native
 * allocations) and file-backed pages, most of them the database's memory map (SQLite `mmap_size`), which grow with
 * the pages a load has read or written and which the kernel takes back under pressure (/proc/<pid>/status).
 */
function memoryMb(pid: number): { rss: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) / 1024;
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile") + kb("RssShmem") };
}

// ---------------------------------------------------------------- load

interface WrkResult {
  rps: number;
  requests: number;
  p50: number;
  p99: number;
}

function toMs(value: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!match) return Number.NaN;
  const number = Number(match[1]);
  return match[2] === "us" ? number / 1000 : match[2] === "s" ? number * 1000 : number;
}

/**
 * One wrk run. Any failed response (non-2xx) or socket error (connect, read, write, timeout) stops the bench:
 * wrk leaves such requests out of its rate, so a run with errors would quietly report a lower figure.
 */
async function wrk(url: string, headers: Record<string, string>, options: { args?: string[]; script?: string } = {}): Promise<WrkResult> {
  const argv = ["wrk", ...(options.args ?? WRK)];
  for (const [name, value] of Object.entries(headers)) argv.push("-H", `${name}: ${value}`);
  if (options.script) argv.push("-s", options.script);
  argv.push(url);
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [output, errors, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  // Which run failed, with its arguments (the warm-ups and the measured runs of one URL differ only there).
  const run = argv.filter((arg) => !arg.includes("\n")).join(" ");
  if (code !== 0) throw new Error(`wrk failed (${run}): ${output}${errors}`);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  if (non2xx) throw new Error(`${run}: ${non2xx[1]} failed responses\n${output}`);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  if (socketErrors) throw new Error(`${run}: socket errors (requests lost, the rate would be understated)\n${output}`);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(output)![1]),
    requests: Number(/(\d+) requests in/.exec(output)![1]),
    p50: toMs(/\n\s+50%\s+(\S+)/.exec(output)?.[1] ?? ""),
    p99: toMs(/\n\s+99%\s+(\S+)/.exec(output)?.[1] ?? ""),
  };
}

/** A figure as reported: `digits` decimals. */
const round = (value: number, digits = 2) => Number(value.toFixed(digits));

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

// ---------------------------------------------------------------- credentials and seeding

/** An access token as Latchkey issues it (src/tokens/access.ts): HS256, claims sub, sid, iat, exp, iss, jti. */
function signAccessToken(secret: string, userId: string, sessionId: string): string {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ sub: userId, sid: sessionId, iat: now, exp: now + 4 * 3600, iss: PUBLIC_URL, jti: crypto.randomUUID() }, secret);
}

/** Users written straight into SQLite, all sharing one precomputed argon2id hash. */
function seedUsers(db: Database, prefix: string, count: number, hash: string): void {
  const now = Date.now();
  const add = db.prepare("INSERT INTO users (id, username, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)");
  db.transaction(() => {
    for (let i = 0; i < count; i++) add.run(Bun.randomUUIDv7(), `${prefix}${i}`, `${prefix}${i}@bench.test`, hash, now, now);
  })();
}

const userIds = (db: Database) => db.query<{ id: string }, []>("SELECT id FROM users ORDER BY rowid").all().map((row) => row.id);

/** Sessions spread over every user in the database; `lastSeenAt` decides when the server first rewrites it. */
function seedSessions(db: Database, count: number, lastSeenAt: number): { id: string; userId: string }[] {
  const users = userIds(db);
  const now = Date.now();
  const add = db.prepare(
    "INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const seeded: { id: string; userId: string }[] = [];
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const session = { id: crypto.randomUUID(), userId: users[i % users.length]! };
      add.run(session.id, session.userId, now, lastSeenAt, now + 30 * 86_400_000, "127.0.0.1", "bench");
      seeded.push(session);
    }
  })();
  return seeded;
}

/** API keys spread over every user in the database, stored as Latchkey stores them (SHA-256 hex of the key). */
function seedApiKeys(db: Database, count: number): string[] {
  const users = userIds(db);
  const now = Date.now();
  const add = db.prepare("INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)");
  const keys: string[] = [];
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const key = generateApiKey();
      add.run(Bun.randomUUIDv7(), users[i % users.length]!, `seeded-${i}`, displayPrefix(key), sha256Hex(key), now);
      keys.push(key);
    }
  })();
  return keys;
}

/** `count` items spread evenly over the list (so over the whole table, not its first pages). */
const spread = <T>(list: T[], count: number) => Array.from({ length: count }, (_, i) => list[Math.floor((i * list.length) / count)]!);

/**
 * A wrk script sending GET /api/v1/auth/validate with the next credential on each request: access tokens as
 * `Authorization: Bearer`, API keys as `X-API-Key`, one key request in every `keyEvery` (0: tokens only, 1: keys
 * only). Each thread starts at its own share of the lists, so a credential comes back after a full cycle.
 */
function rotationScript(name: string, tokens: string[], keys: string[], keyEvery: number): string {
  const list = (suffix: string, values: string[]) => {
    const path = join(scratch, `${name}-${suffix}.txt`);
    writeFileSync(path, values.map((value) => `${value}\n`).join(""));
    return path;
  };
  const path = join(scratch, `${name}.lua`);
  writeFileSync(
    path,
    `local function load(path)
  local list = {}
  for line in io.lines(path) do list[#list + 1] = line end
  return list
end
local tokens = load(${JSON.stringify(list("tokens", tokens))})
local keys = load(${JSON.stringify(list("keys", keys))})
local keyEvery = ${keyEvery}
local n = 0
local threads = 0
function setup(thread)
  thread:set("index", threads)
  threads = threads + 1
end
function init(args)
  n = (index or 0) * math.floor(math.max(#tokens, #keys * math.max(keyEvery, 1)) / ${THREADS})
end
function request()
  n = n + 1
  if keyEvery > 0 and n % keyEvery == 0 then
    return wrk.format("GET", "/api/v1/auth/validate", { ["X-API-Key"] = keys[math.floor(n / keyEvery) % #keys + 1] })
  end
  return wrk.format("GET", "/api/v1/auth/validate", { ["Authorization"] = "Bearer " .. tokens[n % #tokens + 1] })
end
`,
  );
  return path;
}

// ---------------------------------------------------------------- figures

async function hashVerifyMs(hash: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const start = performance.now();
    await Bun.password.verify(PASSWORD, hash);
    times.push(performance.now() - start);
  }
  return median(times);
}

async function signIn(server: Server, username: string): Promise<string> {
  return (await apiSignIn(server.url, username, PASSWORD)).accessToken;
}

function loginScript(username: string): string {
  const path = join(scratch, "login.lua");
  writeFileSync(
    path,
    `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = '${JSON.stringify({ username, password: PASSWORD })}'\n`,
  );
  return path;
}

/** A browser session cookie ("name=value"), signed in through the sign-in page's form as a browser would. */
async function browserSession(server: Server, username: string): Promise<string> {
  const jar = cookieJar();
  // The form's origin check compares with PUBLIC_URL (the public origin), not the loopback address served on.
  await browserSignIn(`${server.url}/login`, username, PASSWORD, jar, new URL(PUBLIC_URL).origin);
  return `${SESSION_COOKIE}=${jar.get(SESSION_COOKIE)}`;
}

/** What a proxy sends forward auth besides the credential (Caddy/Traefik style). */
const FORWARDED = { "x-forwarded-proto": "https", "x-forwarded-host": "app.example.com", "x-forwarded-uri": "/photos/1.jpg", "x-forwarded-method": "GET" };

/** The headers of forward auth's allowed answer to the bench user's cookie (the floor route answers with them). */
async function allowAnswerHeaders(server: Server, cookie: string): Promise<Record<string, string>> {
  const answer = await fetch(`${server.url}/api/v1/auth/forward`, { headers: { ...FORWARDED, cookie } });
  if (answer.status !== 200) throw new Error(`forward auth answered the bench user's cookie ${answer.status}`);
  const headers = Object.fromEntries(answer.headers);
  // Bun writes these itself on every answer, the bare route's included.
  delete headers["date"];
  delete headers["content-length"];
  return headers;
}

/**
 * validate/ceiling and validate/bare route (the framework limit: Elysia answering with no auth at all),
 * RS256 validate/ceiling (JWT_ALG=RS256 on a server of its own: the asymmetric path),
 * API-key validate/ceiling, forward auth (session cookie, API key)/ceiling, forward auth/bare route, the floor
 * route/bare route, the floor with one lookup (/memo)/bare route and forward auth/floor route, and
 * login/hash-limit, each round interleaved.
 */
async function throughput(server: Server, ceiling: Server, token: string, apiKey: string, cookie: string, hash: string, rs256: { server: Server; token: string }) {
  const rows = {
    ceiling: [] as number[],
    bare: [] as number[],
    floor: [] as number[],
    memo: [] as number[],
    validate: [] as number[],
    rs256: [] as number[],
    apiKey: [] as number[],
    forwardCookie: [] as number[],
    forwardKey: [] as number[],
    login: [] as number[],
    hashLimit: [] as number[],
  };
  const forward = `${server.url}/api/v1/auth/forward`;
  const script = loginScript("bench");
  // Warm-up, discarded: both servers' JIT reaches steady state before anything is compared.
  const warmUp = [`-t${THREADS}`, "-c32", `-d${Math.max(2, Math.ceil(DURATION / 2))}s`];
  await wrk(`${ceiling.url}/validate`, { authorization: `Bearer ${token}` }, { args: warmUp });
  await wrk(`${server.url}/api/v1/auth/validate`, { authorization: `Bearer ${token}` }, { args: warmUp });
  await wrk(`${server.url}/api/v1/auth/validate`, { "x-api-key": apiKey }, { args: warmUp });
  await wrk(`${rs256.server.url}/api/v1/auth/validate`, { authorization: `Bearer ${rs256.token}` }, { args: warmUp });
  await wrk(`${ceiling.url}/bare`, {}, { args: warmUp });
  await wrk(`${ceiling.url}/floor`, { ...FORWARDED, cookie }, { args: warmUp });
  await wrk(`${ceiling.url}/memo`, { ...FORWARDED, cookie }, { args: warmUp });
  await wrk(forward, { ...FORWARDED, cookie }, { args: warmUp });
  for (let round = 0; round < ROUNDS; round++) {
    rows.ceiling.push((await wrk(`${ceiling.url}/validate`, { authorization: `Bearer ${token}` })).rps);
    rows.bare.push((await wrk(`${ceiling.url}/bare`, FORWARDED)).rps);
    rows.floor.push((await wrk(`${ceiling.url}/floor`, { ...FORWARDED, cookie })).rps);
    rows.memo.push((await wrk(`${ceiling.url}/memo`, { ...FORWARDED, cookie })).rps);
    rows.forwardCookie.push((await wrk(forward, { ...FORWARDED, cookie })).rps);
    rows.forwardKey.push((await wrk(forward, { ...FORWARDED, "x-api-key": apiKey })).rps);
    rows.validate.push((await wrk(`${server.url}/api/v1/auth/validate`, { authorization: `Bearer ${token}` })).rps);
    rows.rs256.push((await wrk(`${rs256.server.url}/api/v1/auth/validate`, { authorization: `Bearer ${rs256.token}` })).rps);
    rows.apiKey.push((await wrk(`${server.url}/api/v1/auth/validate`, { "x-api-key": apiKey })).rps);
    rows.hashLimit.push((CORES * 1000) / (await hashVerifyMs(hash)));
    rows.login.push((await wrk(`${server.url}/api/v1/auth/login`, {}, { args: LOGIN_WRK, script })).rps);
  }
  return {
    ceilingRps: median(rows.ceiling),
    validateRps: median(rows.validate),
    apiKeyRps: median(rows.apiKey),
    loginRps: median(rows.login),
    hashLimit: median(rows.hashLimit),
    validateRatio: median(rows.validate.map((rps, i) => rps / rows.ceiling[i]!)),
    rs256Rps: median(rows.rs256),
    rs256Ratio: median(rows.rs256.map((rps, i) => rps / rows.ceiling[i]!)),
    apiKeyRatio: median(rows.apiKey.map((rps, i) => rps / rows.ceiling[i]!)),
    bareRps: median(rows.bare),
    forwardCookieRps: median(rows.forwardCookie),
    forwardKeyRps: median(rows.forwardKey),
    forwardCookieRatio: median(rows.forwardCookie.map((rps, i) => rps / rows.ceiling[i]!)),
    forwardKeyRatio: median(rows.forwardKey.map((rps, i) => rps / rows.ceiling[i]!)),
    forwardCookieBareRatio: median(rows.forwardCookie.map((rps, i) => rps / rows.bare[i]!)),
    forwardKeyBareRatio: median(rows.forwardKey.map((rps, i) => rps / rows.bare[i]!)),
    floorRps: median(rows.floor),
    floorBareRatio: median(rows.floor.map((rps, i) => rps / rows.bare[i]!)),
    memoRps: median(rows.memo),
    memoBareRatio: median(rows.memo.map((rps, i) => rps / rows.bare[i]!)),
    forwardCookieFloorRatio: median(rows.forwardCookie.map((rps, i) => rps / rows.floor[i]!)),
    forwardKeyFloorRatio: median(rows.forwardKey.map((rps, i) => rps / rows.floor[i]!)),
    validateBareRatio: median(rows.validate.map((rps, i) => rps / rows.bare[i]!)),
    apiKeyBareRatio: median(rows.apiKey.map((rps, i) => rps / rows.bare[i]!)),
    loginRatio: median(rows.login.map((rps, i) => rps / rows.hashLimit[i]!)),
  };
}

interface ScaleLoad {
  server: Server;
  /** SCALE_SESSIONS access tokens, rotated: every validate misses the session cache. */
  tokens: string;
  /** SCALE_KEYS API keys, rotated. */
  keys: string;
}

/**
 * The 100k-user server against the 10-user one, round by round: validate (distinct sessions), API-key validate
 * (distinct keys) and login on each, interleaved, so that machine drift cancels out in the per-round ratio.
 */
async function scale(small: ScaleLoad, large: ScaleLoad) {
  const script = loginScript("bench");
  const rows = { validate: [] as number[], apiKey: [] as number[], login: [] as number[] };
  const rps = { small: [] as { validate: number; apiKey: number; login: number }[], large: [] as { validate: number; apiKey: number; login: number }[] };
  // Warm-up, discarded, on both: validate for about one pass over the sessions at this machine's rate, then keys.
  const warmUp = [`-t${THREADS}`, "-c32", `-d${Math.max(2, Math.ceil(DURATION / 2))}s`];
  for (const load of [small, large]) {
    await wrk(`${load.server.url}/api/v1/auth/validate`, {}, { args: warmUp, script: load.tokens });
    await wrk(`${load.server.url}/api/v1/auth/validate`, {}, { args: [`-t${THREADS}`, "-c32", "-d1s"], script: load.keys });
  }
  const measure = async (load: ScaleLoad) => ({
    validate: (await wrk(`${load.server.url}/api/v1/auth/validate`, {}, { script: load.tokens })).rps,
    apiKey: (await wrk(`${load.server.url}/api/v1/auth/validate`, {}, { script: load.keys })).rps,
    login: (await wrk(`${load.server.url}/api/v1/auth/login`, {}, { args: LOGIN_WRK, script })).rps,
  });
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first, so that neither always runs on a machine the other just heated.
    const first = round % 2 ? large : small;
    const a = await measure(first);
    const b = await measure(first === small ? large : small);
    const [smallFigures, largeFigures] = round % 2 ? [b, a] : [a, b];
    rps.small.push(smallFigures);
    rps.large.push(largeFigures);
    rows.validate.push(largeFigures.validate / smallFigures.validate);
    rows.apiKey.push(largeFigures.apiKey / smallFigures.apiKey);
    rows.login.push(largeFigures.login / smallFigures.login);
  }
  const medianOf = (side: typeof rps.small, field: "validate" | "apiKey" | "login") => median(side.map((row) => row[field]));
  return {
    validateRatio: median(rows.validate),
    apiKeyRatio: median(rows.apiKey),
    loginRatio: median(rows.login),
    small: { validateRps: medianOf(rps.small, "validate"), apiKeyRps: medianOf(rps.small, "apiKey"), loginRps: medianOf(rps.small, "login") },
    large: { validateRps: medianOf(rps.large, "validate"), apiKeyRps: medianOf(rps.large, "apiKey"), loginRps: medianOf(rps.large, "login") },
    sessions: SCALE_SESSIONS,
    keys: SCALE_KEYS,
  };
}

async function validateDuringLoginStorm(server: Server, token: string) {
  const p50: number[] = [];
  const p99: number[] = [];
  const script = loginScript("bench");
  for (let round = 0; round < ROUNDS; round++) {
    const storm = wrk(`${server.url}/api/v1/auth/login`, {}, { args: ["-t1", "-c16", `-d${DURATION + 1}s`, ...LOGIN_TIMEOUT], script });
    const probe = await wrk(`${server.url}/api/v1/auth/validate`, { authorization: `Bearer ${token}` }, { args: ["-t1", "-c4", `-d${DURATION}s`, "--latency"] });
    await storm;
    p50.push(probe.p50);
    p99.push(probe.p99);
  }
  return { p50: median(p50), p99: median(p99) };
}

// ---------------------------------------------------------------- metrics (issue 22)

/** One wrk thread: on 2 cores the server gets one core to itself, so its own cost is what the rate shows. */
const METRICS_WRK = ["-t1", "-c16", `-d${DURATION}s`];

interface HotPathLoad {
  server: Server;
  token: string;
  cookie: string;
  apiKey: string;
}

/**
 * The hot paths with metrics counted (METRICS_ADDR set) against the same build without (issue 22: within 5 %):
 * validate, forward auth with a session cookie and with an API key, on two servers started from the same database,
 * interleaved round by round with the order alternated; each figure is the median of the per-round on/off ratios.
 * While the "on" server is loaded, /metrics is scraped every second, as Prometheus would.
 */
async function metricsOverhead(off: HotPathLoad, on: HotPathLoad & { metricsUrl: string }) {
  const paths: Record<"validate" | "forwardCookie" | "forwardKey", (load: HotPathLoad, args: string[]) => Promise<WrkResult>> = {
    // validate is not instrumented: its figure shows how far two identical servers differ in this run.
    validate: (load, args) => wrk(`${load.server.url}/api/v1/auth/validate`, { authorization: `Bearer ${load.token}` }, { args }),
    forwardCookie: (load, args) => wrk(`${load.server.url}/api/v1/auth/forward`, { ...FORWARDED, cookie: load.cookie }, { args }),
    forwardKey: (load, args) => wrk(`${load.server.url}/api/v1/auth/forward`, { ...FORWARDED, "x-api-key": load.apiKey }, { args }),
  };
  type Side = { on: number[]; off: number[] };
  const rows = Object.fromEntries(Object.keys(paths).map((name) => [name, { on: [], off: [] }])) as unknown as Record<keyof typeof paths, Side>;
  /** The server's CPU time per request served (µs): what the counting adds, whatever else the machine runs meanwhile. */
  const cpu = Object.fromEntries(Object.keys(paths).map((name) => [name, { on: [], off: [] }])) as unknown as Record<keyof typeof paths, Side>;
  const warmUp = ["-t1", "-c16", `-d${Math.max(2, Math.ceil(DURATION / 2))}s`];
  for (const load of [off, on]) for (const run of Object.values(paths)) await run(load, warmUp);
  let scrapes = 0;
  const scraper = setInterval(() => void fetch(on.metricsUrl).then((reply) => reply.ok && scrapes++), 1000);
  try {
    for (let round = 0; round < ROUNDS; round++)
      for (const [name, run] of Object.entries(paths) as [keyof typeof paths, (typeof paths)[keyof typeof paths]][]) {
        const order = round % 2 === 0 ? (["off", "on"] as const) : (["on", "off"] as const);
        for (const side of order) {
          const pid = (side === "on" ? on : off).server.proc.pid;
          const before = cpuSeconds(pid);
          const result = await run(side === "on" ? on : off, METRICS_WRK);
          rows[name][side].push(result.rps);
          cpu[name][side].push(((cpuSeconds(pid) - before) * 1e6) / result.requests);
        }
      }
  } finally {
    clearInterval(scraper);
  }
  if (scrapes === 0) throw new Error(`${on.metricsUrl} was never scraped`);
  const ratio = (name: keyof typeof paths) => median(rows[name].on.map((rps, i) => rps / rows[name].off[i]!));
  // Requests per CPU second, on / off: above 0.95, counting costs less than 5 % of the route's own work.
  const cpuRatio = (name: keyof typeof paths) => median(cpu[name].off.map((us, i) => us / cpu[name].on[i]!));
  const medians = (side: Record<keyof typeof paths, Side>) =>
    Object.fromEntries(Object.entries(side).map(([name, row]) => [name, { on: median(row.on), off: median(row.off) }])) as Record<keyof typeof paths, { on: number; off: number }>;
  return {
    validateRatio: ratio("validate"),
    forwardCookieRatio: ratio("forwardCookie"),
    forwardKeyRatio: ratio("forwardKey"),
    validateCpuRatio: cpuRatio("validate"),
    forwardCookieCpuRatio: cpuRatio("forwardCookie"),
    forwardKeyCpuRatio: cpuRatio("forwardKey"),
    rps: medians(rows),
    cpuMicroseconds: medians(cpu),
  };
}

/** The figures of `metricsOverhead`, for the report and BENCH_ONLY=metrics. */
function metricsFigures(metrics: Awaited<ReturnType<typeof metricsOverhead>>) {
  const detail = (name: keyof typeof metrics.rps) =>
    `${Math.round(metrics.rps[name].on)} vs ${Math.round(metrics.rps[name].off)} rps (wrk -t1 -c16); ` +
    `CPU ${metrics.cpuMicroseconds[name].on.toFixed(1)} vs ${metrics.cpuMicroseconds[name].off.toFixed(1)} µs/request`;
  const figure = (label: string, name: keyof typeof metrics.rps, rps: number, perCpu: number, note = "") => [
    { figure: `${label} rps, metrics on / off${note}`, value: round(rps, 3), target: "(report)", pass: null, detail: detail(name) },
    { figure: `${label} requests per CPU second, on / off${note}`, value: round(perCpu, 3), target: ">= 0.95", pass: perCpu >= 0.95, detail: "the server's own CPU time: what counting costs" },
  ];
  return [
    ...figure("validate", "validate", metrics.validateRatio, metrics.validateCpuRatio, " (not instrumented: the run's noise)"),
    ...figure("forward-auth (cookie)", "forwardCookie", metrics.forwardCookieRatio, metrics.forwardCookieCpuRatio),
    ...figure("forward-auth (API key)", "forwardKey", metrics.forwardKeyRatio, metrics.forwardKeyCpuRatio),
  ];
}

/** The figures of `postgresPhase`, for the report and BENCH_ONLY=postgres. */
function postgresFigures(pg: Awaited<ReturnType<typeof postgresPhase>>) {
  return [
    { figure: "PostgreSQL validate / SQLite validate (one instance)", value: round(pg.validateRatio), target: ">= 0.80", pass: pg.validateRatio >= 0.8, detail: `${Math.round(pg.postgres.validateRps)} vs ${Math.round(pg.sqlite.validateRps)} rps (session cached)` },
    { figure: "PostgreSQL uncached validate / SQLite", value: round(pg.uncachedRatio), target: "(no target)", pass: null, detail: `${Math.round(pg.postgres.uncachedRps)} vs ${Math.round(pg.sqlite.uncachedRps)} rps, ${SCALE_SESSIONS / 1000}k sessions` },
    { figure: "PostgreSQL API-key validate / SQLite", value: round(pg.apiKeyRatio), target: "(no target)", pass: null, detail: `${Math.round(pg.postgres.apiKeyRps)} vs ${Math.round(pg.sqlite.apiKeyRps)} rps` },
    { figure: "PostgreSQL login / SQLite login", value: round(pg.loginRatio), target: ">= 0.80", pass: pg.loginRatio >= 0.8, detail: `${round(pg.postgres.loginRps, 1)} vs ${round(pg.sqlite.loginRps, 1)} rps` },
    { figure: "two PostgreSQL instances / one (validate, uncached, login)", value: round(pg.twoInstances.validate), target: "(report)", pass: null, detail: `uncached ${round(pg.twoInstances.uncached)}, login ${round(pg.twoInstances.login)}; ${CORES} cores: overhead, not scale` },
    { figure: "logout on A refused on B (ms, median)", value: round(pg.revocationMs.median, 1), target: "<= 1000", pass: pg.revocationMs.max <= 1000, detail: `max ${round(pg.revocationMs.max, 1)} ms over ${pg.revocationMs.count} logouts (LISTEN/NOTIFY)` },
  ];
}

/** BENCH_ONLY=postgres: the PostgreSQL phase alone (its SQLite side as in the full run), nothing written. */
async function onlyPostgres(dataDir: string, secret: string, apiKey: string) {
  const db = new Database(join(dataDir, "latchkey.db"));
  const sessions = seedSessions(db, SCALE_SESSIONS, Date.now() + 86_400_000);
  db.close();
  const server = await startLatchkey(dataDir, secret);
  try {
    const tokens = sessions.map((session) => signAccessToken(secret, session.userId, session.id));
    const pg = await postgresPhase({ server, token: await signIn(server, "bench"), apiKey, tokens: rotationScript("pg-sqlite-tokens", tokens, [], 0) }, secret);
    printFigures(postgresFigures(pg));
  } finally {
    await server.stop();
  }
}

/** Forward auth as deployed: a trusted proxy describes the request and the example's rules apply to it. */
function startForwardAuthServer(dataDir: string, secret: string, env: Record<string, string> = {}): Promise<Server> {
  return startLatchkey(dataDir, secret, { TRUST_PROXY: "127.0.0.1", ACCESS_RULES_FILE: resolve(import.meta.dir, "../examples/access-rules.toml"), ...env });
}

/** BENCH_ONLY=throughput: validate and forward auth against their references alone (about 2 minutes), nothing written. */
async function onlyThroughput(dataDir: string, rs256Dir: string, secret: string, apiKey: string, hash: string) {
  const server = await startForwardAuthServer(dataDir, secret);
  const rs256Server = await startLatchkey(rs256Dir, secret, { JWT_ALG: "RS256" });
  let ceiling: Server | undefined;
  try {
    const cookie = await browserSession(server, "bench");
    ceiling = await startCeiling(secret, await allowAnswerHeaders(server, cookie));
    const small = await throughput(server, ceiling, await signIn(server, "bench"), apiKey, cookie, hash, { server: rs256Server, token: await signIn(rs256Server, "bench") });
    printFigures(throughputFigures(small));
  } finally {
    await Promise.all([server.stop(), rs256Server.stop(), ceiling?.stop()]);
  }
}

/** The memory phase's server, used for nothing else. */
function startMemoryServer(memoryDir: string, secret: string): Promise<Server> {
  return startLatchkey(memoryDir, secret, {
    // Every per-key map in use: brute-force limits on (generous, so nothing is refused for rate), client
    // addresses from X-Forwarded-For, and a per-API-key quota.
    RATE_LIMIT: "on",
    RATE_LIMIT_IP: "1000000/1s",
    RATE_LIMIT_IP_BURST: "1000000",
    TRUST_PROXY: "true",
    API_KEY_RATE_LIMIT: "1000000/1s",
  });
}

/** BENCH_ONLY=memory: the memory growth alone (a few minutes), nothing written. */
async function onlyMemory(memoryDir: string, secret: string, scripts: [string, string]) {
  const server = await startMemoryServer(memoryDir, secret);
  try {
    printFigures([memoryFigure(await memoryGrowth(server, scripts))]);
  } finally {
    await server.stop();
  }
}

/** BENCH_ONLY=metrics: the metrics figures alone (about a minute with the defaults), nothing written. */
async function onlyMetrics(dataDir: string, metricsDir: string, secret: string, apiKey: string) {
  const server = await startForwardAuthServer(dataDir, secret);
  try {
    const on = await startMetricsServer(metricsDir, secret, apiKey);
    try {
      const off = { server, token: await signIn(server, "bench"), cookie: await browserSession(server, "bench"), apiKey };
      printFigures(metricsFigures(await metricsOverhead(off, on)));
    } finally {
      await on.server.stop();
    }
  } finally {
    await server.stop();
  }
}

/**
 * A second 10-user server on a copy of `dataDir`'s database, started as the first (forward auth as deployed) but with
 * METRICS_ADDR: the bench user signed in on it. Without the same TRUST_PROXY and rules, its forward auth would skip
 * the peer check and the rules, and come out faster than the server it is compared with.
 */
async function startMetricsServer(copyDir: string, secret: string, apiKey: string): Promise<HotPathLoad & { metricsUrl: string }> {
  const metricsPort = freePort();
  const server = await startForwardAuthServer(copyDir, secret, { METRICS_ADDR: `127.0.0.1:${metricsPort}` });
  return { server, token: await signIn(server, "bench"), cookie: await browserSession(server, "bench"), apiKey, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
}

// ---------------------------------------------------------------- PostgreSQL (issue 11)

/** Logouts whose reach to the other instance is timed. */
const REVOCATIONS = QUICK ? 20 : 100;

/**
 * One instance on PostgreSQL against the SQLite one (validate cached and uncached, API-key validate, login),
 * round by round; two instances on one PostgreSQL database against one (the load split over both: on two cores
 * this is the cost of a second process and its connections, not scale); and how long a logout on one instance
 * takes to reach the other (LISTEN/NOTIFY), over REVOCATIONS logouts.
 */
async function postgresPhase(sqlite: { server: Server; token: string; apiKey: string; tokens: string }, secret: string) {
  const cluster = await startPostgres();
  const url = cluster.url;
  const dirs = [mkdtempSync(join(tmpdir(), "latchkey-bench-pg-a-")), mkdtempSync(join(tmpdir(), "latchkey-bench-pg-b-"))];
  const env = { DATABASE_URL: url };
  let a: Server | undefined;
  let b: Server | undefined;
  try {
    a = await startLatchkey(dirs[0]!, secret, env);
    const registered = await call(a.url, "POST", "/api/v1/auth/register", { username: "bench", password: PASSWORD });
    if (registered.status !== 201) throw new Error(`register on PostgreSQL answered ${registered.status}`);
    const apiKey = (await apiSignIn(a.url, "bench", PASSWORD, { createKey: "bench" })).apiKey!;
    const token = await signIn(a, "bench");
    // As many sessions as the SQLite side's uncached load, written in one statement.
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    const [{ id: userId }] = (await sql`select id from users where username = 'bench'`) as unknown as [{ id: string }];
    await sql`insert into sessions (id, user_id, created_at, last_seen_at, expires_at)
      select 'pg-' || g, ${userId}, now(), now() + interval '1 day', now() + interval '30 days' from generate_series(1, ${SCALE_SESSIONS}) g`;
    await sql.end();
    const tokens = rotationScript(
      "pg-tokens",
      Array.from({ length: SCALE_SESSIONS }, (_, i) => signAccessToken(secret, userId, `pg-${i + 1}`)),
      [],
      0,
    );
    const script = loginScript("bench");
    const warmUp = [`-t${THREADS}`, "-c32", `-d${Math.max(2, Math.ceil(DURATION / 2))}s`];
    for (const [server, uncached] of [[a, tokens], [sqlite.server, sqlite.tokens]] as const) {
      await wrk(`${server.url}/api/v1/auth/validate`, {}, { args: warmUp, script: uncached });
      await wrk(`${server.url}/api/v1/auth/login`, {}, { args: LOGIN_WARM_UP, script });
    }
    const measure = async (server: Server, bearer: string, key: string, uncached: string) => ({
      validate: (await wrk(`${server.url}/api/v1/auth/validate`, { authorization: `Bearer ${bearer}` })).rps,
      uncached: (await wrk(`${server.url}/api/v1/auth/validate`, {}, { script: uncached })).rps,
      apiKey: (await wrk(`${server.url}/api/v1/auth/validate`, { "x-api-key": key })).rps,
      login: (await wrk(`${server.url}/api/v1/auth/login`, {}, { args: LOGIN_WRK, script })).rps,
    });
    const versus = { validate: [] as number[], uncached: [] as number[], apiKey: [] as number[], login: [] as number[] };
    const rps = { pg: [] as Awaited<ReturnType<typeof measure>>[], sqlite: [] as Awaited<ReturnType<typeof measure>>[] };
    for (let round = 0; round < ROUNDS; round++) {
      const pg = await measure(a, token, apiKey, tokens);
      const lite = await measure(sqlite.server, sqlite.token, sqlite.apiKey, sqlite.tokens);
      rps.pg.push(pg);
      rps.sqlite.push(lite);
      for (const field of ["validate", "uncached", "apiKey", "login"] as const) versus[field].push(pg[field] / lite[field]);
    }

    // Two instances: the same load split over A and B (each half the connections), against A alone.
    b = await startLatchkey(dirs[1]!, secret, env);
    const half = [`-t1`, "-c16", `-d${DURATION}s`];
    const both = async (path: string, headers: Record<string, string>, options: { script?: string } = {}) =>
      (await Promise.all([a!, b!].map((server) => wrk(`${server.url}${path}`, headers, { args: half, ...options })))).reduce((sum, result) => sum + result.rps, 0);
    const pair = { validate: [] as number[], uncached: [] as number[], login: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      pair.validate.push((await both("/api/v1/auth/validate", { authorization: `Bearer ${token}` })) / (await wrk(`${a.url}/api/v1/auth/validate`, { authorization: `Bearer ${token}` })).rps);
      pair.uncached.push((await both("/api/v1/auth/validate", {}, { script: tokens })) / (await wrk(`${a.url}/api/v1/auth/validate`, {}, { script: tokens })).rps);
      const loginHalf = ["-t1", "-c4", `-d${DURATION}s`, ...LOGIN_TIMEOUT];
      const loginBoth = (await Promise.all([a, b].map((server) => wrk(`${server.url}/api/v1/auth/login`, {}, { args: loginHalf, script })))).reduce((sum, result) => sum + result.rps, 0);
      pair.login.push(loginBoth / (await wrk(`${a.url}/api/v1/auth/login`, {}, { args: LOGIN_WRK, script })).rps);
    }

    // Revocation across instances: B has the session cached; A logs it out; B is asked until it refuses.
    const latencies: number[] = [];
    for (let i = 0; i < REVOCATIONS; i++) {
      const access = await signIn(a, "bench");
      const probe = () => fetch(`${b!.url}/api/v1/auth/validate`, { headers: { authorization: `Bearer ${access}` } }).then((reply) => reply.status);
      if ((await probe()) !== 200) throw new Error("B did not accept A's token");
      const since = performance.now();
      await fetch(`${a.url}/api/v1/auth/logout`, { method: "POST", headers: { authorization: `Bearer ${access}` } });
      while ((await probe()) !== 401) if (performance.now() - since > 2000) throw new Error("B still accepted the token 2 s after the logout");
      latencies.push(performance.now() - since);
    }
    latencies.sort((x, y) => x - y);
    const medianOf = (side: Awaited<ReturnType<typeof measure>>[], field: keyof Awaited<ReturnType<typeof measure>>) => median(side.map((row) => row[field]));
    return {
      validateRatio: median(versus.validate),
      uncachedRatio: median(versus.uncached),
      apiKeyRatio: median(versus.apiKey),
      loginRatio: median(versus.login),
      postgres: { validateRps: medianOf(rps.pg, "validate"), uncachedRps: medianOf(rps.pg, "uncached"), apiKeyRps: medianOf(rps.pg, "apiKey"), loginRps: medianOf(rps.pg, "login") },
      sqlite: { validateRps: medianOf(rps.sqlite, "validate"), uncachedRps: medianOf(rps.sqlite, "uncached"), apiKeyRps: medianOf(rps.sqlite, "apiKey"), loginRps: medianOf(rps.sqlite, "login") },
      twoInstances: { validate: median(pair.validate), uncached: median(pair.uncached), login: median(pair.login) },
      revocationMs: { median: median(latencies), max: latencies.at(-1)!, count: latencies.length },
    };
  } finally {
    await a?.stop();
    await b?.stop();
    await cluster.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/** exec → first 200 on /health, on an empty data folder and without JWT_SECRET: the true first start. */
async function startup() {
  const times: number[] = [];
  const idle: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const dataDir = mkdtempSync(join(tmpdir(), "latchkey-bench-start-"));
    const port = freePort();
    const started = performance.now();
    const proc = Bun.spawn([BINARY, "serve"], {
      env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir },
      stdout: "ignore",
      stderr: "inherit",
    });
    children.add(proc);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error("no /health 200 within 10 s");
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then((response) => response.status === 200, () => false);
      if (ok) break;
      await Bun.sleep(2); // poll, do not spin: the server being timed needs the CPU
    }
    times.push(performance.now() - started);
    await Bun.sleep(500); // idle means idle: let start-up garbage settle before reading RSS
    idle.push(rssMb(proc.pid));
    const secretFile = Bun.file(join(dataDir, "jwt_secret"));
    if (!(await secretFile.exists())) throw new Error("start-up: no jwt_secret generated in the empty data folder");
    proc.kill("SIGTERM");
    await proc.exited;
    children.delete(proc);
    rmSync(dataDir, { recursive: true, force: true });
  }
  return { startupMs: median(times), idleRssMb: median(idle) };
}

/**
 * RSS of a server used for nothing else, over RSS_BATCH requests and again over another RSS_BATCH. Each batch is
 * validate over its own MEMORY_SESSIONS sessions with one request in ten by one of its own MEMORY_KEYS API keys,
 * while wrong-password logins with ever new login names and client addresses run one at a time beside it: state kept
 * per session, key, login name or address that is never released grows with the second batch's new ones.
 * A batch's RSS is the median of VmRSS read every 100 ms over its second half: one reading at its end swings by
 * ±20 MB with the collector's timing (more than the 10 % target), the median by a few MB.
 */
async function memoryGrowth(server: Server, scripts: [string, string]) {
  let attempt = 0;
  const wrongLogin = async () => {
    const i = attempt++;
    const response = await fetch(`${server.url}/api/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
      body: JSON.stringify({ username: i % 2 ? `mem${i % MEMORY_USERS}` : `nobody-${i}`, password: "definitely not it" }),
    });
    await response.arrayBuffer();
    if (response.status !== 401 && response.status !== 429) throw new Error(`wrong-password login: expected 401 or 429, got ${response.status}`);
  };
  const batch = async (script: string) => {
    let done = 0;
    const firstLogin = attempt;
    let running = true;
    const samples: ReturnType<typeof memoryMb>[] = [];
    const sampler = (async () => {
      while (running) {
        samples.push(memoryMb(server.proc.pid));
        await Bun.sleep(100);
      }
    })();
    const logins = (async () => {
      while (running) await wrongLogin();
    })();
    logins.catch(() => {}); // handled: awaited (and rethrown) once the batch ends
    try {
      let seconds = DURATION;
      for (let run = 0; done < RSS_BATCH && run < 100; run++) {
        const result = await wrk(`${server.url}/api/v1/auth/validate`, {}, { args: ["-t2", "-c32", `-d${seconds}s`], script });
        done += result.requests;
        seconds = Math.min(10, Math.max(1, Math.ceil((RSS_BATCH - done) / result.rps)));
      }
    } finally {
      running = false;
      await Promise.all([logins, sampler]);
    }
    const secondHalf = samples.slice(samples.length >> 1);
    return {
      rssMb: median(secondHalf.map((sample) => sample.rss)),
      lowestRssMb: Math.min(...secondHalf.map((sample) => sample.rss)),
      anonMb: median(secondHalf.map((sample) => sample.anon)),
      fileMb: median(secondHalf.map((sample) => sample.file)),
      endRssMb: rssMb(server.proc.pid),
      requests: done,
      wrongLogins: attempt - firstLogin,
    };
  };
  const idleMb = rssMb(server.proc.pid);
  const first = await batch(scripts[0]);
  const second = await batch(scripts[1]);
  return {
    idleMb,
    rssAfterFirstMb: first.rssMb,
    rssAfterSecondMb: second.rssMb,
    growth: (second.rssMb - first.rssMb) / first.rssMb,
    batches: [first, second] as const,
  };
}

/** Median login time for an unknown name vs a wrong password (30 each, interleaved, one at a time). */
async function enumerationTiming(server: Server) {
  const unknown: number[] = [];
  const wrong: number[] = [];
  const attempt = async (username: string) => {
    const start = performance.now();
    const response = await fetch(`${server.url}/api/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password: "definitely not it" }),
    });
    await response.arrayBuffer();
    if (response.status !== 401) throw new Error(`expected 401, got ${response.status}`);
    return performance.now() - start;
  };
  for (let i = 0; i < 30; i++) {
    unknown.push(await attempt(`nobody-${i}`));
    wrong.push(await attempt("bench"));
  }
  return { unknownMs: median(unknown), wrongMs: median(wrong), difference: Math.abs(median(unknown) - median(wrong)) / median(wrong) };
}

/** Verified addresses seeded for the forgot-password figure: each gets one request (its first mail). */
const MAIL_ADDRESSES = 1000;

/**
 * POST /password/forgot for a known, verified address (the whole mailing path: a code issued, a mail sealed into
 * the outbox, an audit row) against an unknown one (a lookup), alternated, MAIL_ADDRESSES of each. The answers
 * are byte-identical; this is whether their time tells them apart (issue 13: medians < 5 ms apart).
 */
async function forgotTiming(server: Server) {
  const known: number[] = [];
  const unknown: number[] = [];
  const ask = async (email: string) => {
    const start = performance.now();
    const response = await fetch(`${server.url}/api/v1/auth/password/forgot`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email }),
    });
    await response.arrayBuffer();
    if (response.status !== 202) throw new Error(`expected 202, got ${response.status}`);
    return performance.now() - start;
  };
  for (let i = 0; i < MAIL_ADDRESSES; i++) {
    known.push(await ask(`mail${i}@bench.test`));
    unknown.push(await ask(`nobody${i}@bench.test`));
  }
  return { knownMs: median(known), unknownMs: median(unknown), differenceMs: Math.abs(median(known) - median(unknown)) };
}

// ---------------------------------------------------------------- main

async function main() {
  if (!Bun.which("wrk")) throw new Error("wrk is not installed (apt-get install wrk)");
  console.error(`latchkey bench: ${BINARY}, ${CORES} cores, ${ROUNDS} rounds of ${DURATION} s`);
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
  const hash = await Bun.password.hash(PASSWORD, HASH);
  const dataDir = mkdtempSync(join(tmpdir(), "latchkey-bench-"));
  const largeDir = mkdtempSync(join(tmpdir(), "latchkey-bench-large-"));
  const memoryDir = mkdtempSync(join(tmpdir(), "latchkey-bench-memory-"));
  const rs256Dir = mkdtempSync(join(tmpdir(), "latchkey-bench-rs256-"));
  const metricsDir = mkdtempSync(join(tmpdir(), "latchkey-bench-metrics-"));
  const mailDir = mkdtempSync(join(tmpdir(), "latchkey-bench-mail-"));


  // Three data folders, all starting from the migrated database with the bench user and its API key:
  // 10 users; the same plus 100,000 users and 200,000 sessions; and the memory phase's own.
  let server = await startLatchkey(dataDir, secret);
  const registered = await call(server.url, "POST", "/api/v1/auth/register", { username: "bench", password: PASSWORD });
  if (registered.status !== 201) throw new Error(`register answered ${registered.status}: ${JSON.stringify(registered.body)}`);
  const apiKey = (await apiSignIn(server.url, "bench", PASSWORD, { createKey: "bench" })).apiKey!;
  await server.stop();
  const smallDb = new Database(join(dataDir, "latchkey.db"));
  seedUsers(smallDb, "small", 9, hash);
  smallDb.close();
  copyFileSync(join(dataDir, "latchkey.db"), join(largeDir, "latchkey.db"));
  copyFileSync(join(dataDir, "latchkey.db"), join(memoryDir, "latchkey.db"));
  copyFileSync(join(dataDir, "latchkey.db"), join(rs256Dir, "latchkey.db"));
  copyFileSync(join(dataDir, "latchkey.db"), join(metricsDir, "latchkey.db"));
  copyFileSync(join(dataDir, "latchkey.db"), join(mailDir, "latchkey.db"));
  const removeDirs = () => [dataDir, largeDir, memoryDir, rs256Dir, mailDir, metricsDir].forEach((dir) => rmSync(dir, { recursive: true, force: true }));
  if (ONLY_METRICS) return onlyMetrics(dataDir, metricsDir, secret, apiKey).finally(removeDirs);
  if (ONLY_POSTGRES) return onlyPostgres(dataDir, secret, apiKey).finally(removeDirs);
  if (ONLY_THROUGHPUT) return onlyThroughput(dataDir, rs256Dir, secret, apiKey, hash).finally(removeDirs);
  console.error("start-up and idle RSS…");
  const start = await startup();
  const mailDb = new Database(join(mailDir, "latchkey.db"));
  seedUsers(mailDb, "mail", MAIL_ADDRESSES, hash);
  mailDb.run("UPDATE users SET email_verified = 1 WHERE username LIKE 'mail%'");
  mailDb.close();

  // The scale sessions' last_seen_at is ahead of the run, so neither server rewrites it while being compared:
  // the figure is about the lookup (the once-a-minute write is the same for both).
  const unseen = Date.now() + 86_400_000;
  console.error(`seeding 100,000 users, 200,000 sessions and 100,000 API keys; ${SCALE_SESSIONS} sessions for the 10 users…`);
  const largeDb = new Database(join(largeDir, "latchkey.db"));
  seedUsers(largeDb, "large", 100_000, hash);
  const largeSessions = spread(seedSessions(largeDb, 200_000, unseen), SCALE_SESSIONS);
  const largeKeys = spread(seedApiKeys(largeDb, 100_000), SCALE_KEYS);
  largeDb.close();
  const smallScaleDb = new Database(join(dataDir, "latchkey.db"));
  const smallSessions = seedSessions(smallScaleDb, SCALE_SESSIONS, unseen);
  const smallKeys = seedApiKeys(smallScaleDb, SCALE_KEYS);
  smallScaleDb.close();
  const tokensFor = (sessions: { id: string; userId: string }[]) => sessions.map((session) => signAccessToken(secret, session.userId, session.id));

  // The memory phase's sessions were last seen an hour ago: each one's first lookup also writes last_seen_at.
  const memoryDb = new Database(join(memoryDir, "latchkey.db"));
  seedUsers(memoryDb, "mem", MEMORY_USERS, hash);
  const memorySessions = seedSessions(memoryDb, 2 * MEMORY_SESSIONS, Date.now() - 3_600_000);
  const memoryKeys = seedApiKeys(memoryDb, 2 * MEMORY_KEYS);
  memoryDb.close();
  const memoryScripts: [string, string] = [0, 1].map((half) =>
    rotationScript(
      `memory-${half}`,
      tokensFor(memorySessions.slice(half * MEMORY_SESSIONS, (half + 1) * MEMORY_SESSIONS)),
      memoryKeys.slice(half * MEMORY_KEYS, (half + 1) * MEMORY_KEYS),
      10,
    ),
  ) as [string, string];

  if (ONLY_MEMORY) return onlyMemory(memoryDir, secret, memoryScripts).finally(removeDirs);

  // Forward auth as deployed: a trusted proxy describes the request and the example's rules apply to it.
  server = await startForwardAuthServer(dataDir, secret);
  const rs256Server = await startLatchkey(rs256Dir, secret, { JWT_ALG: "RS256" });
  let ceiling: Server | undefined;
  let large: Server | undefined;
  let memoryServer: Server | undefined;
  try {
    const token = await signIn(server, "bench");
    console.error("throughput with 10 users…");
    const cookie = await browserSession(server, "bench");
    ceiling = await startCeiling(secret, await allowAnswerHeaders(server, cookie));
    const small = await throughput(server, ceiling, token, apiKey, cookie, hash, { server: rs256Server, token: await signIn(rs256Server, "bench") });
    await rs256Server.stop();
    console.error("the hot paths with metrics on against off…");
    const metricsOn = await startMetricsServer(metricsDir, secret, apiKey);
    const metrics = await metricsOverhead({ server, token, cookie, apiKey }, metricsOn).finally(() => metricsOn.server.stop());
    console.error("validate latency during a login storm…");
    const storm = await validateDuringLoginStorm(server, token);
    console.error("enumeration timing…");
    const enumeration = await enumerationTiming(server);
    console.error(`forgot-password timing over ${MAIL_ADDRESSES} known and ${MAIL_ADDRESSES} unknown addresses…`);
    // MAIL_TRANSPORT=log: the outbox "sends" to the drained stdout, so the sender runs as it would beside SMTP.
    const mailServer = await startLatchkey(mailDir, secret, { MAIL_TRANSPORT: "log" });
    const forgot = await forgotTiming(mailServer).finally(() => mailServer.stop());
    console.error(`memory over 2 × ${RSS_BATCH / 1000}k requests, on a server of its own…`);
    memoryServer = await startMemoryServer(memoryDir, secret);
    const memory = await memoryGrowth(memoryServer, memoryScripts);
    await memoryServer.stop();
    memoryServer = undefined;
    console.error("100k users against 10 users…");
    large = await startLatchkey(largeDir, secret);
    const scaled = await scale(
      { server, tokens: rotationScript("scale-small-tokens", tokensFor(smallSessions), [], 0), keys: rotationScript("scale-small-keys", [], smallKeys, 1) },
      { server: large, tokens: rotationScript("scale-large-tokens", tokensFor(largeSessions), [], 0), keys: rotationScript("scale-large-keys", [], largeKeys, 1) },
    );

    await large.stop();
    large = undefined;
    console.error(`PostgreSQL: one instance against SQLite, two against one, revocation across instances (${REVOCATIONS} logouts)…`);
    const pg = await postgresPhase(
      { server, token, apiKey, tokens: rotationScript("pg-sqlite-tokens", tokensFor(smallSessions), [], 0) },
      secret,
    );

    report({ start, small, storm, enumeration, forgot, memory, scaled, pg, metrics });
  } finally {
    await server.stop();
    await large?.stop();
    await memoryServer?.stop();
    await ceiling?.stop();
    await rs256Server.stop();
    for (const dir of [dataDir, largeDir, memoryDir, rs256Dir, mailDir, metricsDir]) rmSync(dir, { recursive: true, force: true });
  }
}

type Figures = {
  start: Awaited<ReturnType<typeof startup>>;
  small: Awaited<ReturnType<typeof throughput>>;
  storm: Awaited<ReturnType<typeof validateDuringLoginStorm>>;
  enumeration: Awaited<ReturnType<typeof enumerationTiming>>;
  forgot: Awaited<ReturnType<typeof forgotTiming>>;
  memory: Awaited<ReturnType<typeof memoryGrowth>>;
  scaled: Awaited<ReturnType<typeof scale>>;
  pg: Awaited<ReturnType<typeof postgresPhase>>;
  metrics: Awaited<ReturnType<typeof metricsOverhead>>;
};

/** The memory growth figure (`memoryGrowth`), for the report and BENCH_ONLY=memory. */
function memoryFigure(memory: Awaited<ReturnType<typeof memoryGrowth>>) {
  const batch = `${RSS_BATCH / 1000}k`;
  return { figure: `RSS growth, ${batch} → ${2 * RSS_BATCH / 1000}k requests`, value: round(memory.growth * 100, 1), target: "<= 10 %", pass: memory.growth <= 0.1, detail: `${round(memory.rssAfterFirstMb, 1)} → ${round(memory.rssAfterSecondMb, 1)} MB (median over each batch's 2nd half); lowest ${round(memory.batches[0].lowestRssMb, 1)} → ${round(memory.batches[1].lowestRssMb, 1)}; anonymous ${round(memory.batches[0].anonMb, 1)} → ${round(memory.batches[1].anonMb, 1)}, file-backed (the database's map) ${round(memory.batches[0].fileMb, 1)} → ${round(memory.batches[1].fileMb, 1)}` };
}

/** The validate and forward-auth figures (`throughput`), for the report and BENCH_ONLY=throughput. */
function throughputFigures(small: Awaited<ReturnType<typeof throughput>>) {
  return [
    { figure: "validate rps / ceiling rps", value: round(small.validateRatio), target: ">= 0.80", pass: small.validateRatio >= 0.8, detail: `${Math.round(small.validateRps)} vs ${Math.round(small.ceilingRps)} rps` },
    { figure: "RS256 validate rps / ceiling rps", value: round(small.rs256Ratio), target: "(no target)", pass: null, detail: `${Math.round(small.rs256Rps)} rps, JWT_ALG=RS256 (the ceiling verifies HS256)` },
    { figure: "validate rps / framework limit (bare Elysia route)", value: round(small.validateBareRatio), target: ">= 0.60", pass: small.validateBareRatio >= 0.6, detail: `${Math.round(small.validateRps)} vs ${Math.round(small.bareRps)} rps` },
    { figure: "API-key validate rps / framework limit", value: round(small.apiKeyBareRatio), target: ">= 0.50", pass: small.apiKeyBareRatio >= 0.5, detail: `${Math.round(small.apiKeyRps)} vs ${Math.round(small.bareRps)} rps` },
    { figure: "API-key validate rps / ceiling rps", value: round(small.apiKeyRatio), target: "(no target)", pass: null, detail: `${Math.round(small.apiKeyRps)} rps` },
    { figure: "forward-auth (session cookie) rps / ceiling rps", value: round(small.forwardCookieRatio), target: ">= 0.60", pass: small.forwardCookieRatio >= 0.6, detail: `${Math.round(small.forwardCookieRps)} rps` },
    { figure: "forward-auth (API key) rps / ceiling rps", value: round(small.forwardKeyRatio), target: ">= 0.60", pass: small.forwardKeyRatio >= 0.6, detail: `${Math.round(small.forwardKeyRps)} rps` },
    { figure: "forward-auth (session cookie) rps / bare Elysia route rps", value: round(small.forwardCookieBareRatio), target: ">= 0.60", pass: small.forwardCookieBareRatio >= 0.6, detail: `${Math.round(small.forwardCookieRps)} vs ${Math.round(small.bareRps)} rps (TRUST_PROXY, examples/access-rules.toml)` },
    { figure: "forward-auth (API key) rps / bare Elysia route rps", value: round(small.forwardKeyBareRatio), target: ">= 0.60", pass: small.forwardKeyBareRatio >= 0.6, detail: `${Math.round(small.forwardKeyRps)} vs ${Math.round(small.bareRps)} rps` },
    { figure: "forward-auth floor rps / bare Elysia route rps", value: round(small.floorBareRatio), target: "(no target)", pass: null, detail: `${Math.round(small.floorRps)} vs ${Math.round(small.bareRps)} rps: headers read, peer asked, allowed answer sent; no decision (bench/ceiling.ts)` },
    { figure: "floor + one lookup of the whole request / bare Elysia route rps", value: round(small.memoBareRatio), target: "(no target)", pass: null, detail: `${Math.round(small.memoRps)} rps: the cheapest decision there could be, in the reference's process (finding 14)` },
    { figure: "forward-auth (session cookie) rps / floor rps", value: round(small.forwardCookieFloorRatio), target: "(no target)", pass: null, detail: "how much of the floor's rate forward auth keeps" },
    { figure: "forward-auth (API key) rps / floor rps", value: round(small.forwardKeyFloorRatio), target: "(no target)", pass: null, detail: "" },
    { figure: "login rps / hash limit", value: round(small.loginRatio), target: ">= 0.85", pass: small.loginRatio >= 0.85, detail: `${round(small.loginRps, 1)} vs ${round(small.hashLimit, 1)} rps` },
  ];
}

function report({ start, small, storm, enumeration, forgot, memory, scaled, pg, metrics }: Figures) {
  const figures = [
    ...throughputFigures(small),
    { figure: "validate p99 during a login storm (ms)", value: round(storm.p99), target: "<= 10", pass: storm.p99 <= 10, detail: `p50 ${round(storm.p50)} ms` },
    { figure: "start-up to first /health 200 (ms)", value: Math.round(start.startupMs), target: "<= 300", pass: start.startupMs <= 300, detail: "empty data folder, no JWT_SECRET: secret generated, migrations applied" },
    { figure: "idle RSS (MB)", value: round(start.idleRssMb, 1), target: "<= 80", pass: start.idleRssMb <= 80, detail: "" },
    memoryFigure(memory),
    { figure: "100k-user validate / 10-user validate", value: round(scaled.validateRatio), target: ">= 0.90", pass: scaled.validateRatio >= 0.9, detail: `${Math.round(scaled.large.validateRps)} vs ${Math.round(scaled.small.validateRps)} rps, ${SCALE_SESSIONS / 1000}k sessions, uncached` },
    { figure: "100k-user API-key validate / 10-user", value: round(scaled.apiKeyRatio), target: "(no target)", pass: null, detail: `${Math.round(scaled.large.apiKeyRps)} vs ${Math.round(scaled.small.apiKeyRps)} rps, ${SCALE_KEYS} keys` },
    { figure: "100k-user login / 10-user login", value: round(scaled.loginRatio), target: ">= 0.90", pass: scaled.loginRatio >= 0.9, detail: `${round(scaled.large.loginRps, 1)} vs ${round(scaled.small.loginRps, 1)} rps` },
    ...postgresFigures(pg),
    { figure: "login time, unknown user vs wrong password", value: round(enumeration.difference * 100, 1), target: "< 20 % apart", pass: enumeration.difference < 0.2, detail: `${round(enumeration.unknownMs)} vs ${round(enumeration.wrongMs)} ms (median of 30)` },
    ...metricsFigures(metrics),
    { figure: "forgot-password time, known vs unknown address (ms apart)", value: round(forgot.differenceMs, 3), target: "< 5 ms", pass: forgot.differenceMs < 5, detail: `${round(forgot.knownMs, 3)} vs ${round(forgot.unknownMs, 3)} ms (medians of ${MAIL_ADDRESSES} each)` },
  ];
  printFigures(figures);
  const results = {
    date: new Date().toISOString(),
    binary: BINARY,
    cores: CORES,
    rounds: ROUNDS,
    durationSeconds: DURATION,
    figures,
    raw: { start, small, storm, enumeration, forgot, memory, scaled, pg, metrics },
  };
  writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nwritten: ${RESULTS}`);
}

function printFigures(figures: { figure: string; value: number | null; target: string; pass: boolean | null; detail: string }[]) {
  const width = Math.max(...figures.map((row) => row.figure.length));
  if (ROUNDS < 3 || QUICK) console.log("\nA quick run (fewer than 3 rounds of 5 s): it shows the benchmark works; its pass/FAIL marks mean little.");
  console.log(`\n${"figure".padEnd(width)}  ${"value".padStart(8)}  ${"target".padEnd(12)}  result  detail`);
  for (const row of figures)
    console.log(
      `${row.figure.padEnd(width)}  ${String(row.value ?? "n/a").padStart(8)}  ${row.target.padEnd(12)}  ${row.pass === null ? "  -   " : row.pass ? " pass " : " FAIL "}  ${row.detail}`,
    );
}

await main();
process.exit(0);
