/**
 * A real PostgreSQL server for the suite, from Debian's `postgresql` package: a fresh cluster in a temporary
 * folder (initdb), listening on a free loopback port (pg_ctl), run as an unprivileged user (PostgreSQL refuses
 * root: as root the suite runs it as `nobody`), with trust authentication on loopback only. `make test` installs
 * the package when it is missing and it runs as root.
 */
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { freePort } from "./server";

const NOBODY = 65534;

/** Debian puts each major version's programs in /usr/lib/postgresql/<major>/bin (the newest one wins). */
function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  const majors = existsSync(root) ? readdirSync(root).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a)) : [];
  const bin = majors.map((major) => join(root, major, "bin")).find((dir) => existsSync(join(dir, "initdb")));
  if (!bin) throw new Error("PostgreSQL is not installed: apt-get install postgresql (make test does it as root)");
  return bin;
}

export interface TestPostgres {
  url: string;
  stop(): Promise<void>;
  /** Shuts the server down (as an outage would: its clients' connections are cut) and keeps its data. */
  pause(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  resume(): Promise<void>;
  /** Creates an empty database on this server; its URL. */
  createDatabase(name: string): Promise<string>;
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBin();
  const dir = mkdtempSync(join(tmpdir(), "latchkey-postgres-"));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, NOBODY, NOBODY);
  const run = async (command: string[]) => {
    const argv = asRoot ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--", ...command] : command;
    const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "", LC_ALL: "C" } });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`${command.join(" ")} failed (${code}): ${out}${err}`);
  };
  const data = join(dir, "data");
  const port = freePort();
  await run([join(bin, "initdb"), "-D", data, "-U", "latchkey", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]);
  // fsync off: a test cluster is thrown away; the socket stays in the test's folder, TCP on loopback only.
  const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  const start = () => run([join(bin, "pg_ctl"), "-D", data, "-o", options, "-l", join(dir, "server.log"), "-w", "-t", "60", "start"]);
  try {
    await start();
  } catch (error) {
    const log = existsSync(join(dir, "server.log")) ? readFileSync(join(dir, "server.log"), "utf8") : "";
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}\n${log}`);
  }
  const url = `postgres://latchkey@127.0.0.1:${port}/postgres`;
  return {
    url,
    async stop() {
      await run([join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"]);
      rmSync(dir, { recursive: true, force: true });
    },
    pause: () => run([join(bin, "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"]),
    resume: start,
    async createDatabase(name) {
      const admin = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`create database ${name}`);
      } finally {
        await admin.end();
      }
      return url.replace(/\/postgres$/, `/${name}`);
    },
  };
}
