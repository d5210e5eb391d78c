import { existsSync, lstatSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { atSuiteEnd } from "./suite-end";
import { engineEnv } from "./engine";

/** The binary under test; `make test` builds it before running the suite. LATCHKEY_BINARY points elsewhere. */
export const BINARY = process.env.LATCHKEY_BINARY ?? resolve(import.meta.dir, "../../dist/latchkey");

/**
 * A plain `bun test` runs against whatever dist/latchkey exists: one older than the sources would test old code
 * and pass or fail for the wrong reason, so it stops the run with what to do (`make test` builds first).
 */
function assertBinaryFresh(): void {
  if (process.env.LATCHKEY_BINARY) return;
  const root = resolve(import.meta.dir, "../..");
  if (!existsSync(BINARY)) throw new Error(`${BINARY} does not exist: run make build (or make test, which builds it)`);
  const built = statSync(BINARY).mtimeMs;
  const newer = [...new Bun.Glob("{src,drizzle}/**/*").scanSync({ cwd: root })].find((file) => statSync(join(root, file)).mtimeMs > built);
  if (newer) throw new Error(`${BINARY} is older than ${newer}: run make build (or make test, which builds it) before bun test`);
}
assertBinaryFresh();

export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), "latchkey-test-"));
}

/** Processes still running after the last test file (a test failed before stopping them) are killed. */
const running = new Set<Bun.Subprocess>();
atSuiteEnd(() => {
  for (const proc of running) proc.kill("SIGKILL");
});

export interface SpawnedServer {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the output once it contains `needle` (its pipes are read asynchronously); rejects after `timeoutMs`. */
  waitForOutput(needle: string, timeoutMs?: number): Promise<string>;
  /** Sends `signal` (SIGTERM by default) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

export interface RunningServer extends SpawnedServer {
  url: string;
  port: number;
  dataDir: string;
}

/**
  * Runs `command` with exactly the environment given in `cwd`, and resolves once it printed its "listening" line, or
 * `readyLine` for another program (rejects with its output if it exits first). Without PUID the binary stays the
 * test's user (root in CI: it changes user only when PUID is set, src/privileges.ts); test/e2e/privileges.test.ts
 * covers the switch.
 */
export async function spawnServer(command: string[], options: { cwd?: string; env: Record<string, string>; readyLine?: string }): Promise<SpawnedServer> {
  const env = { ...(await engineEnv(options.env)), ...options.env };
  const proc = Bun.spawn(command, { cwd: options.cwd, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  running.add(proc);
  void proc.exited.then(() => running.delete(proc));
  let output = "";
  const decoder = new TextDecoder();
  const waiters = new Set<{ needle: string; resolve: (output: string) => void }>();
  const settleWaiters = () => {
    for (const waiter of waiters) if (output.includes(waiter.needle)) (waiters.delete(waiter), waiter.resolve(output));
  };
  const waitForOutput = (needle: string, timeoutMs = 3000) =>
    new Promise<string>((resolve, reject) => {
      const waiter = { needle, resolve: (text: string) => (clearTimeout(timer), resolve(text)) };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no ${JSON.stringify(needle)} in the output within ${timeoutMs} ms:\n${output}`));
      }, timeoutMs);
      waiters.add(waiter);
      settleWaiters();
    });
  const ready = waitForOutput(options.readyLine ?? " listening on ", 30_000);
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      output += decoder.decode(chunk);
      settleWaiters();
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const exited = proc.exited.then((code) => {
    throw new Error(`${command[0]} exited with ${code} before listening:\n${output}`);
  });
  await Promise.race([ready, exited]);
  exited.catch(() => {});
  ready.catch(() => {});
  return {
    proc,
    output: () => output,
    waitForOutput,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      proc.kill(signal);
      return proc.exited;
    },
  };
}

/** Starts dist/latchkey on a free loopback port with its own DATA_DIR. */
export async function startServer(env: Record<string, string> = {}, dataDir = tempDataDir()): Promise<RunningServer> {
  const port = freePort();
  const server = await spawnServer([BINARY, "serve"], {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, ...env },
  });
  return { ...server, url: `http://127.0.0.1:${port}`, port, dataDir };
}

export function removeDataDir(dataDir: string): void {
  rmSync(dataDir, { recursive: true, force: true });
}

/** Owner uid:gid of every entry under dir (dir itself included, as "."), by relative path; links are not followed. */
export function owners(dir: string): Record<string, string> {
  const result: Record<string, string> = {};
  const walk = (path: string, name: string) => {
    const stat = lstatSync(path);
    result[name] = `${stat.uid}:${stat.gid}`;
    if (stat.isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry), name === "." ? entry : `${name}/${entry}`);
  };
  walk(dir, ".");
  return result;
}

/** Runs a CLI subcommand of the binary to completion. */
export async function runCli(args: string[], env: Record<string, string>, stdin?: string) {
  const proc = Bun.spawn([BINARY, ...args], {
    env: { PATH: process.env.PATH ?? "", ...(await engineEnv(env)), ...env },
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/**
 * startServer with PUBLIC_URL on localhost (a secure context over plain http, and a valid RP ID: what a browser's
 * passkey ceremony needs); `api` is the same server by address, for the test's own calls.
 */
export async function startOnLocalhost(env: Record<string, string> = {}): Promise<{ server: RunningServer; origin: string; api: string }> {
  const port = freePort();
  const origin = `http://localhost:${port}`;
  const server = await startServer({ PORT: String(port), PUBLIC_URL: origin, ...env });
  return { server, origin, api: `http://127.0.0.1:${port}` };
}
