/**
 * Issue 14: started as root, the binary gives DATA_DIR to PUID:PGID (1000:1000 by default) and becomes that user
 * before it opens the database or listens; started as anyone else it changes nothing. The suite runs as root (CI
 * does), so these tests start dist/latchkey as root and read the result from /proc and the files' owners.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chownSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, freePort, owners, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";

const isRoot = process.getuid!() === 0;
let server: SpawnedServer | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await server?.stop();
  server = undefined;
  for (const dir of dirs.splice(0)) removeDataDir(dir);
});

/** An empty folder owned by root:root, as Docker creates a missing bind-mount source. */
function rootOwnedDir(): string {
  const dir = tempDataDir();
  dirs.push(dir);
  chownSync(dir, 0, 0);
  return dir;
}

/** Real, effective, saved and filesystem ids, supplementary groups and capabilities of every thread. */
function threadIdentities(pid: number) {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
    const field = (name: string) => status.match(new RegExp(`^${name}:\\t(.*)$`, "m"))![1]!.trim();
    return { uid: field("Uid"), gid: field("Gid"), groups: field("Groups"), capEff: field("CapEff"), capPrm: field("CapPrm") };
  });
}

async function start(dataDir: string, env: Record<string, string>, prefix: string[] = []) {
  const port = freePort();
  server = await spawnServer([...prefix, BINARY, "serve"], {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, ...env },
  });
  const health = await fetch(`http://127.0.0.1:${port}/health`);
  expect(health.status).toBe(200);
  return server;
}

describe.skipIf(!isRoot)("started as root", () => {
  test("gives an empty root-owned DATA_DIR to 1000:1000 and runs every thread as 1000 without groups or capabilities", async () => {
    const dataDir = rootOwnedDir();
    // Left by an earlier run as root: given to 1000 as well.
    mkdirSync(join(dataDir, "old"));
    writeFileSync(join(dataDir, "old", "notes.txt"), "x");
    chownSync(join(dataDir, "old"), 0, 0);
    chownSync(join(dataDir, "old", "notes.txt"), 0, 0);
    const running = await start(dataDir, { PUID: "" });
    expect(running.output()).toContain("latchkey: started as root, running as uid 1000 gid 1000 (PUID, PGID), owner of DATA_DIR\n");
    const threads = threadIdentities(running.proc.pid);
    expect(threads.length).toBeGreaterThan(1);
    for (const thread of threads)
      expect(thread).toEqual({ uid: "1000\t1000\t1000\t1000", gid: "1000\t1000\t1000\t1000", groups: "", capEff: "0000000000000000", capPrm: "0000000000000000" });
    const files = owners(dataDir);
    expect(Object.keys(files).sort()).toEqual([".", "jwt_secret", "latchkey.db", "latchkey.db-shm", "latchkey.db-wal", "old", "old/notes.txt"].sort());
    for (const owner of Object.values(files)) expect(owner).toBe("1000:1000");
  });

  test("PUID and PGID choose the user; a symbolic link in DATA_DIR is not followed", async () => {
    const dataDir = rootOwnedDir();
    const outside = rootOwnedDir();
    writeFileSync(join(outside, "system-file"), "root's");
    chownSync(join(outside, "system-file"), 0, 0);
    symlinkSync(join(outside, "system-file"), join(dataDir, "link"));
    const running = await start(dataDir, { PUID: "1234", PGID: "2345" });
    for (const thread of threadIdentities(running.proc.pid)) {
      expect(thread.uid).toBe("1234\t1234\t1234\t1234");
      expect(thread.gid).toBe("2345\t2345\t2345\t2345");
    }
    expect(owners(dataDir)["latchkey.db"]).toBe("1234:2345");
    expect(owners(dataDir)["link"]).toBe("1234:2345");
    expect(owners(outside)["system-file"]).toBe("0:0");
  });

  test("a CLI command run as root (docker exec) leaves nothing root-owned behind", async () => {
    const dataDir = rootOwnedDir();
    const result = await runCli(["user", "add", "alice"], { DATA_DIR: dataDir, PUID: "" }, "correct horse battery\n");
    expect(result.code).toBe(0);
    for (const [path, owner] of Object.entries(owners(dataDir))) expect(`${path} ${owner}`).toBe(`${path} 1000:1000`);
  });

  test("PUID=0 keeps root", async () => {
    const running = await start(rootOwnedDir(), { PUID: "0" });
    expect(running.output()).not.toContain("started as root");
    for (const thread of threadIdentities(running.proc.pid)) expect(thread.uid).toBe("0\t0\t0\t0");
  });

  test.each([["PUID", "abc"], ["PUID", "-1"], ["PGID", "4294967295"], ["PGID", "1.5"]])("%s=%s stops the start with exit 2 naming it", async (name, bad) => {
    const dataDir = rootOwnedDir();
    const result = await runCli(["serve"], { DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: String(freePort()), [name]: bad });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`latchkey: configuration error: ${name}=${JSON.stringify(bad)} is invalid: expected a whole number from 0 to 4294967294\n`);
    expect(readdirSync(dataDir)).toEqual([]);
  });
});

describe.skipIf(!isRoot)("started as another user (--user 1000:1000)", () => {
  test("runs as that user and ignores PUID/PGID", async () => {
    const dataDir = rootOwnedDir();
    chownSync(dataDir, 1000, 1000);
    const running = await start(dataDir, { PUID: "2000", PGID: "2000" }, ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"]);
    expect(running.output()).not.toContain("started as root");
    for (const thread of threadIdentities(running.proc.pid)) expect(thread.uid).toBe("1000\t1000\t1000\t1000");
    for (const [path, owner] of Object.entries(owners(dataDir))) expect(`${path} ${owner}`).toBe(`${path} 1000:1000`);
  });
});
