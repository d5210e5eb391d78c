/**
 * Issues 14 and 22: started as root, the binary changes user only when PUID is set, and then gives away only
 * DATA_DIR and its own files by name, through no link; without PUID it stays root and says so. CLI commands change
 * no ownership. The suite runs as root (CI does), so these tests start dist/latchkey as root and read the result
 * from /proc and the files' owners.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
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

const PASSWORD = "correct horse battery\n";
const ROOT_LINE =
  'latchkey: running as root (PUID is not set): to run as another user, start it with the systemd unit (README "systemd") or set PUID and PGID\n';

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

async function start(dataDir: string, env: Record<string, string>, prefix: string[] = [], options: { binary?: string; cwd?: string } = {}) {
  const port = freePort();
  server = await spawnServer([...prefix, options.binary ?? BINARY, "serve"], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, ...env },
  });
  const health = await fetch(`http://127.0.0.1:${port}/health`);
  expect(health.status).toBe(200);
  return server;
}

/** The start refused: exit 2 and its one line. */
async function refused(env: Record<string, string>) {
  const result = await runCli(["serve"], { HOST: "127.0.0.1", PORT: String(freePort()), ...env });
  return { code: result.code, stderr: result.stderr };
}

describe.skipIf(!isRoot)("started as root without PUID", () => {
  test("`make run` as root in root's 0700 home folder stays root, says so in one line, and keeps every file root's", async () => {
    // root's home: mode 0700, which uid 1000 cannot enter (the old default switched to it and exited 2).
    const home = rootOwnedDir();
    chmodSync(home, 0o700);
    const binary = join(home, "latchkey");
    copyFileSync(BINARY, binary);
    chmodSync(binary, 0o755);
    // The Makefile's run target: DATA_DIR=./data ./dist/latchkey serve, from the checkout.
    const running = await start("./data", {}, [], { binary, cwd: home });
    expect(running.output().split(ROOT_LINE).length).toBe(2);
    for (const thread of threadIdentities(running.proc.pid)) expect(thread.uid).toBe("0\t0\t0\t0");
    const files = owners(join(home, "data"));
    expect(Object.keys(files).sort()).toEqual([".", "jwt_secret", "latchkey.db", "latchkey.db-shm", "latchkey.db-wal"]);
    for (const [path, owner] of Object.entries(files)) expect(`${path} ${owner}`).toBe(`${path} 0:0`);
    await running.stop();
    // A CLI command afterwards, as root, works there too.
    const added = await runCli(["user", "add", "alice"], { DATA_DIR: join(home, "data") }, PASSWORD);
    expect(added).toEqual({ code: 0, stdout: expect.stringContaining("alice"), stderr: "" });
  });

  test("latchkey backup as root (a nightly cron job) writes into a root-owned 0700 folder", async () => {
    const dataDir = rootOwnedDir();
    expect((await runCli(["user", "add", "alice"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
    const backups = rootOwnedDir();
    chmodSync(backups, 0o700);
    const result = await runCli(["backup", join(backups, "nightly.db")], { DATA_DIR: dataDir });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`backed up ${join(dataDir, "latchkey.db")} to ${join(backups, "nightly.db")}`);
    expect(owners(backups)["nightly.db"]).toBe("0:0");
  });

  test("PGID without PUID stops the start with exit 2", async () => {
    const dataDir = rootOwnedDir();
    expect(await refused({ DATA_DIR: dataDir, PGID: "1000" })).toEqual({
      code: 2,
      stderr: "latchkey: configuration error: PGID is set without PUID: set both (PUID alone also works: PGID defaults to it)\n",
    });
  });
});

describe.skipIf(!isRoot)("started as root with PUID (the image sets PUID=1000 PGID=1000)", () => {
  test("gives an empty root-owned DATA_DIR and root-owned files of its own to PUID:PGID and runs every thread as it, without groups or capabilities", async () => {
    const dataDir = rootOwnedDir();
    // Left by an earlier start as root (without PUID): Latchkey's own file, given to the user by name.
    writeFileSync(join(dataDir, "jwt_secret"), `${"s".repeat(43)}\n`, { mode: 0o600 });
    chownSync(join(dataDir, "jwt_secret"), 0, 0);
    const running = await start(dataDir, { PUID: "1000", PGID: "1000" });
    expect(running.output()).toContain("latchkey: started as root, running as uid 1000 gid 1000 (PUID, PGID), owner of DATA_DIR\n");
    expect(running.output()).not.toContain("running as root");
    const threads = threadIdentities(running.proc.pid);
    expect(threads.length).toBeGreaterThan(1);
    for (const thread of threads)
      expect(thread).toEqual({ uid: "1000\t1000\t1000\t1000", gid: "1000\t1000\t1000\t1000", groups: "", capEff: "0000000000000000", capPrm: "0000000000000000" });
    const files = owners(dataDir);
    expect(Object.keys(files).sort()).toEqual([".", "jwt_secret", "latchkey.db", "latchkey.db-shm", "latchkey.db-wal"]);
    for (const [path, owner] of Object.entries(files)) expect(`${path} ${owner}`).toBe(`${path} 1000:1000`);
  });

  test("PUID alone chooses the user and the group", async () => {
    const running = await start(rootOwnedDir(), { PUID: "1234" });
    for (const thread of threadIdentities(running.proc.pid)) {
      expect(thread.uid).toBe("1234\t1234\t1234\t1234");
      expect(thread.gid).toBe("1234\t1234\t1234\t1234");
    }
  });

  test("a DATA_DIR holding files Latchkey does not know is refused (exit 2 naming them) and nothing changes owner", async () => {
    const dataDir = rootOwnedDir();
    mkdirSync(join(dataDir, "old"));
    writeFileSync(join(dataDir, "old", "notes.txt"), "x");
    writeFileSync(join(dataDir, "photo.jpg"), "x");
    writeFileSync(join(dataDir, "jwt_secret"), "x".repeat(44));
    expect(await refused({ DATA_DIR: dataDir, PUID: "1000" })).toEqual({
      code: 2,
      stderr:
        `latchkey: configuration error: DATA_DIR=${dataDir} holds files Latchkey does not know: old, photo.jpg; it gives DATA_DIR to ` +
        "PUID=1000 PGID=1000, so DATA_DIR must be a folder of its own: move them out or choose another folder\n",
    });
    for (const [path, owner] of Object.entries(owners(dataDir))) expect(`${path} ${owner}`).toBe(`${path} 0:0`);
  });

  test.each([
    ["jwt_secret", "a root-owned file"],
    ["latchkey.db-wal", "a root-owned folder"],
  ])("the chown race: %s planted as a symbolic link to %s is refused and nothing outside DATA_DIR changes owner", async (name, kind) => {
    const dataDir = rootOwnedDir();
    chownSync(dataDir, 1000, 1000); // the folder a local uid 1000 could plant links in
    const outside = rootOwnedDir();
    mkdirSync(join(outside, "etc"));
    writeFileSync(join(outside, "etc", "shadow"), "root's");
    const target = kind === "a root-owned file" ? join(outside, "etc", "shadow") : join(outside, "etc");
    symlinkSync(target, join(dataDir, name));
    const before = owners(outside);
    expect(await refused({ DATA_DIR: dataDir, PUID: "1000" })).toEqual({
      code: 2,
      stderr: `latchkey: configuration error: DATA_DIR=${dataDir} holds ${name} as a symbolic link: Latchkey creates it as a plain file; remove the link\n`,
    });
    expect(owners(outside)).toEqual(before);
    for (const owner of Object.values(before)) expect(owner).toBe("0:0");
    expect(owners(dataDir)[name]).toBe("0:0");
  });

  test("a DATA_DIR that is itself a symbolic link is refused", async () => {
    const real = rootOwnedDir();
    const parent = rootOwnedDir();
    symlinkSync(real, join(parent, "data"));
    expect(await refused({ DATA_DIR: join(parent, "data"), PUID: "1000" })).toEqual({
      code: 2,
      stderr: `latchkey: configuration error: DATA_DIR=${join(parent, "data")} is a symbolic link: set DATA_DIR to the folder it points to\n`,
    });
    expect(owners(real)["."]).toBe("0:0");
  });

  test.each(["/", "/usr", "/var/lib", "/etc"])("DATA_DIR=%s (a system folder) is refused", async (dir) => {
    expect(await refused({ DATA_DIR: dir, PUID: "1000" })).toEqual({
      code: 2,
      stderr: `latchkey: configuration error: DATA_DIR=${dir} is a system folder: PUID=1000 PGID=1000 would be given it; choose a folder of Latchkey's own, such as /var/lib/latchkey\n`,
    });
  });

  test("a DATA_DIR in root's 0700 home folder stops the start naming the user and the way out", async () => {
    const home = rootOwnedDir();
    chmodSync(home, 0o700);
    const dataDir = join(home, "data");
    expect(await refused({ DATA_DIR: dataDir, PUID: "1000" })).toEqual({
      code: 2,
      stderr:
        `latchkey: configuration error: DATA_DIR=${dataDir}: uid 1000 (PUID=1000 PGID=1000) cannot use it (EACCES): a folder above it is closed to that user ` +
        "(root's home folder is 0700); choose a DATA_DIR that user can reach, such as /var/lib/latchkey, or unset PUID to run as root\n",
    });
  });

  test("a root-owned 0600 ADMIN_PASSWORD_FILE is refused with the user it runs as and the fix", async () => {
    const secrets = rootOwnedDir();
    chmodSync(secrets, 0o755);
    const file = join(secrets, "admin-password");
    writeFileSync(file, "a long admin passphrase\n", { mode: 0o600 });
    const result = await refused({ DATA_DIR: rootOwnedDir(), PUID: "1000", ADMIN_USERNAME: "admin", ADMIN_PASSWORD_FILE: file });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      new RegExp(
        `^latchkey: configuration error: ADMIN_PASSWORD_FILE=${file} cannot be read by uid 1000( \\([^)]+\\))?, the user Latchkey runs as: make it readable by that user \\(chown or chmod ${file}\\)`,
      ),
    );
  });

  test("a root-owned 0600 ACCESS_RULES_FILE is refused the same way", async () => {
    const secrets = rootOwnedDir();
    chmodSync(secrets, 0o755);
    const file = join(secrets, "rules.toml");
    writeFileSync(file, '[[rule]]\npolicy = "deny"\n', { mode: 0o600 });
    const result = await refused({ DATA_DIR: rootOwnedDir(), PUID: "1000", ACCESS_RULES_FILE: file });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      new RegExp(`^latchkey: configuration error: ACCESS_RULES_FILE=${file} cannot be read by uid 1000( \\([^)]+\\))?, the user Latchkey runs as: make it readable by that user`),
    );
  });

  test("latchkey backup with PUID into a root-owned folder names the user it runs as and the ways out", async () => {
    const dataDir = rootOwnedDir();
    await start(dataDir, { PUID: "1000" });
    await server!.stop();
    server = undefined;
    const backups = rootOwnedDir();
    chmodSync(backups, 0o700);
    const target = join(backups, "nightly.db");
    const result = await runCli(["backup", target], { DATA_DIR: dataDir, PUID: "1000" });
    expect({ code: result.code, stderr: result.stderr.replace(/uid 1000 \([^)]+\)/, "uid 1000") }).toEqual({
      code: 1,
      stderr: `latchkey: backup to ${target} failed: uid 1000, the user Latchkey runs as, cannot write in ${backups} (EACCES): choose a folder that user can write, or unset PUID to run the backup as root\n`,
    });
    expect(existsSync(target)).toBe(false);
  });

  test("a CLI command as root changes no ownership: it runs as PUID in the folder the server gave it, and refuses one it did not", async () => {
    const dataDir = rootOwnedDir();
    // docker exec ... latchkey user add, after the server gave DATA_DIR to 1000: everything stays 1000's.
    await start(dataDir, { PUID: "1000" });
    await server!.stop();
    server = undefined;
    const added = await runCli(["user", "add", "alice"], { DATA_DIR: dataDir, PUID: "1000" }, PASSWORD);
    expect(added.code).toBe(0);
    for (const [path, owner] of Object.entries(owners(dataDir))) expect(`${path} ${owner}`).toBe(`${path} 1000:1000`);

    // A root-owned DATA_DIR is not given away by a CLI command.
    const rootsDir = rootOwnedDir();
    expect((await runCli(["user", "add", "bob"], { DATA_DIR: rootsDir }, PASSWORD)).code).toBe(0);
    const before = owners(rootsDir);
    const refusedCli = await runCli(["user", "add", "carol"], { DATA_DIR: rootsDir, PUID: "1000" }, PASSWORD);
    expect(refusedCli).toEqual({
      code: 2,
      stdout: "",
      stderr:
        `latchkey: configuration error: DATA_DIR=${rootsDir}: uid 1000 (PUID=1000 PGID=1000) cannot use it (EACCES): ` +
        "start the server once with this PUID (it gives DATA_DIR to that user), or unset PUID to run the command as root\n",
    });
    expect(owners(rootsDir)).toEqual(before);
    for (const owner of Object.values(before)) expect(owner).toBe("0:0");
  });

  test("PUID=0 keeps root, quietly", async () => {
    const running = await start(rootOwnedDir(), { PUID: "0" });
    expect(running.output()).not.toContain("started as root");
    expect(running.output()).not.toContain("running as root");
    for (const thread of threadIdentities(running.proc.pid)) expect(thread.uid).toBe("0\t0\t0\t0");
  });

  test.each([["PUID", "abc"], ["PUID", "-1"], ["PGID", "4294967295"], ["PGID", "1.5"]])("%s=%s stops the start with exit 2 naming it", async (name, bad) => {
    const dataDir = rootOwnedDir();
    const result = await refused({ DATA_DIR: dataDir, PUID: "1000", [name]: bad });
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
    expect(running.output()).not.toContain("running as root");
    for (const thread of threadIdentities(running.proc.pid)) expect(thread.uid).toBe("1000\t1000\t1000\t1000");
    for (const [path, owner] of Object.entries(owners(dataDir))) expect(`${path} ${owner}`).toBe(`${path} 1000:1000`);
    expect(existsSync(join(dataDir, "latchkey.db"))).toBe(true);
  });
});
