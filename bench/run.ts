// `make bench`: measures dist/latchkey against the ceiling Bun and Elysia set, on this machine, in one run.
// Every figure is interleaved with its reference and is the median of BENCH_ROUNDS rounds; see bench/README.md.
import { Database } from "bun:sqlite";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";

const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BINARY = resolve(process.env.LATCHKEY_BINARY ?? "dist/latchkey");
const RESULTS = resolve(process.env.BENCH_RESULTS ?? resolve(import.meta.dir, "results.json"));
const CORES = availableParallelism();
const PASSWORD = "a long bench passphrase";
const HASH = { algorithm: "argon2id", memoryCost: 19456, timeCost: 2 } as const;
const WRK = ["-t2", "-c32", `-d${DURATION}s`, "--latency"];
const RSS_BATCH = 200_000;

const children = new Set<Bun.Subprocess>();
process.on("exit", () => children.forEach((child) => child.kill("SIGKILL")));

// ---------------------------------------------------------------- processes

function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

async function waitForLine(proc: Bun.Subprocess<"ignore", "pipe", "inherit">, needle: string): Promise<void> {
  const reader = proc.stdout.getReader();
  let output = "";
  const deadline = Date.now() + 15_000;
  while (!output.includes(needle)) {
    if (Date.now() > deadline) throw new Error(`no "${needle}" within 15 s:\n${output}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`exited before "${needle}":\n${output}`);
    output += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  // Keep draining so the child never blocks on a full pipe (the audit log writes a line per login).
  void proc.stdout.pipeTo(new WritableStream());
}

interface Server {
  url: string;
  pid: number;
  proc: Bun.Subprocess<"ignore", "pipe", "inherit">;
  stop(): Promise<void>;
}

async function spawnServer(argv: string[], env: Record<string, string>, readyLine: string, port: number): Promise<Server> {
  const proc = Bun.spawn(argv, { env: { PATH: process.env.PATH ?? "", ...env }, stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  children.add(proc);
  await waitForLine(proc, readyLine);
  return {
    url: `http://127.0.0.1:${port}`,
    pid: proc.pid,
    proc,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
      children.delete(proc);
    },
  };
}

function startLatchkey(dataDir: string, secret: string): Promise<Server> {
  const port = freePort();
  return spawnServer(
    [BINARY, "serve"],
    { HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, JWT_SECRET: secret, RATE_LIMIT: "off", ALLOW_REGISTRATION: "true" },
    " listening on ",
    port,
  );
}

function startCeiling(secret: string): Promise<Server> {
  const port = freePort();
  return spawnServer([process.execPath, resolve(import.meta.dir, "ceiling.ts"), String(port), secret], {}, "ceiling listening", port);
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
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

async function wrk(url: string, headers: Record<string, string>, options: { args?: string[]; script?: string } = {}): Promise<WrkResult> {
  const argv = ["wrk", ...(options.args ?? WRK)];
  for (const [name, value] of Object.entries(headers)) argv.push("-H", `${name}: ${value}`);
  if (options.script) argv.push("-s", options.script);
  argv.push(url);
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [output, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  if (code !== 0) throw new Error(`wrk failed: ${output}`);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  if (non2xx) throw new Error(`${url}: ${non2xx[1]} failed responses\n${output}`);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(output)![1]),
    requests: Number(/(\d+) requests in/.exec(output)![1]),
    p50: toMs(/\n\s+50%\s+(\S+)/.exec(output)?.[1] ?? ""),
    p99: toMs(/\n\s+99%\s+(\S+)/.exec(output)?.[1] ?? ""),
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

async function json(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`${init.method ?? "GET"} ${url}: ${response.status} ${await response.text()}`);
  return response.json() as Promise<any>;
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  json(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

// ---------------------------------------------------------------- seeding

/** Users (and sessions) written straight into SQLite, all sharing one precomputed argon2id hash. */
function seed(dbPath: string, prefix: string, users: number, sessions: number, hash: string): void {
  const db = new Database(dbPath);
  const now = Date.now();
  db.transaction(() => {
    const addUser = db.prepare(
      "INSERT INTO users (id, username, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
    );
    const ids: string[] = [];
    for (let i = 0; i < users; i++) {
      const id = Bun.randomUUIDv7();
      ids.push(id);
      addUser.run(id, `${prefix}${i}`, `${prefix}${i}@bench.test`, hash, now, now);
    }
    const addSession = db.prepare(
      "INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    for (let i = 0; i < sessions; i++)
      addSession.run(crypto.randomUUID(), ids[i % ids.length]!, now, now, now + 30 * 86_400_000, "127.0.0.1", "bench");
  })();
  db.close();
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

async function signIn(server: Server, username: string) {
  const session = await post(`${server.url}/api/v1/auth/login`, { username, password: PASSWORD });
  return session.access_token as string;
}

function loginScript(username: string): string {
  const path = join(tmpdir(), `latchkey-bench-login-${process.pid}.lua`);
  writeFileSync(
    path,
    `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = '${JSON.stringify({ username, password: PASSWORD })}'\n`,
  );
  return path;
}

/** validate/ceiling, API-key validate/ceiling and login/hash-limit, each round interleaved. */
async function throughput(server: Server, ceiling: Server, token: string, apiKey: string, hash: string) {
  const rows = { ceiling: [] as number[], validate: [] as number[], apiKey: [] as number[], login: [] as number[], hashLimit: [] as number[] };
  const script = loginScript("bench");
  // Warm-up, discarded: both servers' JIT reaches steady state before anything is compared.
  const warmUp = ["-t2", "-c32", `-d${Math.max(2, Math.ceil(DURATION / 2))}s`];
  await wrk(`${ceiling.url}/validate`, { authorization: `Bearer ${token}` }, { args: warmUp });
  await wrk(`${server.url}/api/v1/auth/validate`, { authorization: `Bearer ${token}` }, { args: warmUp });
  await wrk(`${server.url}/api/v1/auth/validate`, { "x-api-key": apiKey }, { args: warmUp });
  for (let round = 0; round < ROUNDS; round++) {
    rows.ceiling.push((await wrk(`${ceiling.url}/validate`, { authorization: `Bearer ${token}` })).rps);
    rows.validate.push((await wrk(`${server.url}/api/v1/auth/validate`, { authorization: `Bearer ${token}` })).rps);
    rows.apiKey.push((await wrk(`${server.url}/api/v1/auth/validate`, { "x-api-key": apiKey })).rps);
    rows.hashLimit.push((CORES * 1000) / (await hashVerifyMs(hash)));
    rows.login.push((await wrk(`${server.url}/api/v1/auth/login`, {}, { args: ["-t2", "-c8", `-d${DURATION}s`], script })).rps);
  }
  return {
    ceilingRps: median(rows.ceiling),
    validateRps: median(rows.validate),
    apiKeyRps: median(rows.apiKey),
    loginRps: median(rows.login),
    hashLimit: median(rows.hashLimit),
    validateRatio: median(rows.validate.map((rps, i) => rps / rows.ceiling[i]!)),
    apiKeyRatio: median(rows.apiKey.map((rps, i) => rps / rows.ceiling[i]!)),
    loginRatio: median(rows.login.map((rps, i) => rps / rows.hashLimit[i]!)),
  };
}

/**
 * The 100k-user server against the 10-user one, round by round: validate and login on each, interleaved, so
 * that machine drift cancels out in the per-round ratio.
 */
async function scale(small: Server, smallToken: string, large: Server, largeToken: string) {
  const script = loginScript("bench");
  const validate: number[] = [];
  const login: number[] = [];
  const warmUp = ["-t2", "-c32", `-d${Math.max(2, Math.ceil(DURATION / 2))}s`];
  await wrk(`${large.url}/api/v1/auth/validate`, { authorization: `Bearer ${largeToken}` }, { args: warmUp });
  const measure = async (server: Server, token: string) => ({
    validate: (await wrk(`${server.url}/api/v1/auth/validate`, { authorization: `Bearer ${token}` })).rps,
    login: (await wrk(`${server.url}/api/v1/auth/login`, {}, { args: ["-t2", "-c8", `-d${DURATION}s`], script })).rps,
  });
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first, so that neither always runs on a machine the other just heated.
    const [first, second] = round % 2 ? [[large, largeToken], [small, smallToken]] as const : [[small, smallToken], [large, largeToken]] as const;
    const a = await measure(...first);
    const b = await measure(...second);
    const [smallFigures, largeFigures] = round % 2 ? [b, a] : [a, b];
    validate.push(largeFigures.validate / smallFigures.validate);
    login.push(largeFigures.login / smallFigures.login);
  }
  return { validateRatio: median(validate), loginRatio: median(login) };
}

async function validateDuringLoginStorm(server: Server, token: string) {
  const p50: number[] = [];
  const p99: number[] = [];
  const script = loginScript("bench");
  for (let round = 0; round < ROUNDS; round++) {
    const storm = wrk(`${server.url}/api/v1/auth/login`, {}, { args: ["-t1", "-c16", `-d${DURATION + 1}s`], script });
    const probe = await wrk(`${server.url}/api/v1/auth/validate`, { authorization: `Bearer ${token}` }, { args: ["-t1", "-c4", `-d${DURATION}s`, "--latency"] });
    await storm;
    p50.push(probe.p50);
    p99.push(probe.p99);
  }
  return { p50: median(p50), p99: median(p99) };
}

async function startup(secret: string) {
  const times: number[] = [];
  const idle: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const dataDir = mkdtempSync(join(tmpdir(), "latchkey-bench-start-"));
    const port = freePort();
    const started = performance.now();
    const proc = Bun.spawn([BINARY, "serve"], {
      env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, JWT_SECRET: secret },
      stdout: "ignore",
      stderr: "inherit",
    });
    children.add(proc);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error("no /health 200 within 10 s");
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then((response) => response.status === 200, () => false);
      if (ok) break;
    }
    times.push(performance.now() - started);
    await Bun.sleep(500); // idle means idle: let start-up garbage settle before reading RSS
    idle.push(rssMb(proc.pid));
    proc.kill("SIGTERM");
    await proc.exited;
    children.delete(proc);
    rmSync(dataDir, { recursive: true, force: true });
  }
  return { startupMs: median(times), idleRssMb: median(idle) };
}

/** RSS after 200k validate requests, then after another 200k: growth points at a leak. */
async function memoryGrowth(server: Server, token: string) {
  const batch = async () => {
    let done = 0;
    for (let run = 0; done < RSS_BATCH && run < 100; run++)
      done += (await wrk(`${server.url}/api/v1/auth/validate`, { authorization: `Bearer ${token}` }, { args: ["-t2", "-c32", `-d${DURATION}s`] })).requests;
    return rssMb(server.pid);
  };
  const first = await batch();
  const second = await batch();
  return { rssAfterFirstMb: first, rssAfterSecondMb: second, growth: (second - first) / first };
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

// ---------------------------------------------------------------- main

async function main() {
  if (!Bun.which("wrk")) throw new Error("wrk is not installed (apt-get install wrk)");
  console.error(`latchkey bench: ${BINARY}, ${CORES} cores, ${ROUNDS} rounds of ${DURATION} s`);
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
  const hash = await Bun.password.hash(PASSWORD, HASH);
  const dataDir = mkdtempSync(join(tmpdir(), "latchkey-bench-"));

  console.error("start-up and idle RSS…");
  const start = await startup(secret);

  // Two data folders: 10 users, and the same plus 100,000 users and 200,000 sessions.
  let server = await startLatchkey(dataDir, secret);
  const registered = await post(`${server.url}/api/v1/auth/register`, { username: "bench", password: PASSWORD });
  const apiKey = (await post(`${server.url}/api/v1/auth/keys`, { name: "bench" }, { authorization: `Bearer ${registered.access_token}` }))
    .api_key as string;
  await server.stop();
  seed(join(dataDir, "latchkey.db"), "small", 9, 0, hash);
  const largeDir = mkdtempSync(join(tmpdir(), "latchkey-bench-large-"));
  copyFileSync(join(dataDir, "latchkey.db"), join(largeDir, "latchkey.db"));
  console.error("seeding 100,000 users and 200,000 sessions…");
  seed(join(largeDir, "latchkey.db"), "large", 100_000, 200_000, hash);

  server = await startLatchkey(dataDir, secret);
  const ceiling = await startCeiling(secret);
  let large: Server | undefined;
  try {
    const token = await signIn(server, "bench");
    console.error("throughput with 10 users…");
    const small = await throughput(server, ceiling, token, apiKey, hash);
    console.error("validate latency during a login storm…");
    const storm = await validateDuringLoginStorm(server, token);
    console.error("enumeration timing…");
    const enumeration = await enumerationTiming(server);
    console.error("memory over 2 × 200k requests…");
    const memory = await memoryGrowth(server, token);
    console.error("100k users against 10 users…");
    large = await startLatchkey(largeDir, secret);
    const scaled = await scale(server, token, large, await signIn(large, "bench"));

    report({ start, small, storm, enumeration, memory, scaled });
  } finally {
    await server.stop();
    await large?.stop();
    await ceiling.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(largeDir, { recursive: true, force: true });
  }
}

type Figures = {
  start: Awaited<ReturnType<typeof startup>>;
  small: Awaited<ReturnType<typeof throughput>>;
  storm: Awaited<ReturnType<typeof validateDuringLoginStorm>>;
  enumeration: Awaited<ReturnType<typeof enumerationTiming>>;
  memory: Awaited<ReturnType<typeof memoryGrowth>>;
  scaled: Awaited<ReturnType<typeof scale>>;
};

function report({ start, small, storm, enumeration, memory, scaled }: Figures) {
  const round = (value: number, digits = 2) => Number(value.toFixed(digits));
  const figures = [
    { figure: "validate rps / ceiling rps", value: round(small.validateRatio), target: ">= 0.80", pass: small.validateRatio >= 0.8, detail: `${Math.round(small.validateRps)} vs ${Math.round(small.ceilingRps)} rps` },
    { figure: "API-key validate rps / ceiling rps", value: round(small.apiKeyRatio), target: "(no target)", pass: null, detail: `${Math.round(small.apiKeyRps)} rps` },
    { figure: "forward-auth rps / ceiling rps", value: null, target: ">= 0.75", pass: null, detail: "n/a (forward auth not implemented yet)" },
    { figure: "login rps / hash limit", value: round(small.loginRatio), target: ">= 0.85", pass: small.loginRatio >= 0.85, detail: `${round(small.loginRps, 1)} vs ${round(small.hashLimit, 1)} rps` },
    { figure: "validate p99 during a login storm (ms)", value: round(storm.p99), target: "<= 10", pass: storm.p99 <= 10, detail: `p50 ${round(storm.p50)} ms` },
    { figure: "start-up to first /health 200 (ms)", value: Math.round(start.startupMs), target: "<= 300", pass: start.startupMs <= 300, detail: "empty data folder, migrations included" },
    { figure: "idle RSS (MB)", value: round(start.idleRssMb, 1), target: "<= 80", pass: start.idleRssMb <= 80, detail: "" },
    { figure: "RSS growth, 200k → 400k requests", value: round(memory.growth * 100, 1), target: "<= 10 %", pass: memory.growth <= 0.1, detail: `${round(memory.rssAfterFirstMb, 1)} → ${round(memory.rssAfterSecondMb, 1)} MB` },
    { figure: "100k-user validate / 10-user validate", value: round(scaled.validateRatio), target: ">= 0.90", pass: scaled.validateRatio >= 0.9, detail: "both servers running, interleaved" },
    { figure: "100k-user login / 10-user login", value: round(scaled.loginRatio), target: ">= 0.90", pass: scaled.loginRatio >= 0.9, detail: "both servers running, interleaved" },
    { figure: "login time, unknown user vs wrong password", value: round(enumeration.difference * 100, 1), target: "< 20 % apart", pass: enumeration.difference < 0.2, detail: `${round(enumeration.unknownMs)} vs ${round(enumeration.wrongMs)} ms (median of 30)` },
  ];
  const width = Math.max(...figures.map((row) => row.figure.length));
  if (ROUNDS < 3 || DURATION < 5) console.log("\nA quick run (fewer than 3 rounds of 5 s): it shows the benchmark works; its pass/FAIL marks mean little.");
  console.log(`\n${"figure".padEnd(width)}  ${"value".padStart(8)}  ${"target".padEnd(12)}  result  detail`);
  for (const row of figures)
    console.log(
      `${row.figure.padEnd(width)}  ${String(row.value ?? "n/a").padStart(8)}  ${row.target.padEnd(12)}  ${row.pass === null ? "  -   " : row.pass ? " pass " : " FAIL "}  ${row.detail}`,
    );
  const results = {
    date: new Date().toISOString(),
    binary: BINARY,
    cores: CORES,
    rounds: ROUNDS,
    durationSeconds: DURATION,
    figures,
    raw: { start, small, storm, enumeration, memory, scaled },
  };
  writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nwritten: ${RESULTS}`);
}

await main();
process.exit(0);
