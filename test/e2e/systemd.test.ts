/**
 * Issue 14: examples/latchkey.service passes `systemd-analyze verify` (Debian's systemd; make test installs it)
 * against a root folder holding the compiled binary where the unit expects it and the system's own units.
 * Issue 22: so does the packaged variant (examples/packaged/: a static user from sysusers.d, an optional
 * environment file), and the README's one-off command runs as that user with that file.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BINARY, removeDataDir, tempDataDir } from "../support/server";

const EXAMPLES = resolve(import.meta.dir, "../../examples");
const UNIT = readFileSync(join(EXAMPLES, "latchkey.service"), "utf8");
const PACKAGED = readFileSync(join(EXAMPLES, "packaged/latchkey.service"), "utf8");
const README = readFileSync(resolve(import.meta.dir, "../../README.md"), "utf8");
const root = tempDataDir();
mkdirSync(join(root, "usr/local/bin"), { recursive: true });
mkdirSync(join(root, "usr/bin"), { recursive: true });
mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
mkdirSync(join(root, "usr/lib/systemd"), { recursive: true });
expect(Bun.spawnSync(["cp", "-a", BINARY, join(root, "usr/local/bin/latchkey")]).exitCode).toBe(0);
expect(Bun.spawnSync(["cp", "-a", BINARY, join(root, "usr/bin/latchkey")]).exitCode).toBe(0);
expect(Bun.spawnSync(["cp", "-a", "/usr/lib/systemd/system", join(root, "usr/lib/systemd/")]).exitCode).toBe(0);
afterAll(() => removeDataDir(root));

/** Exit code and everything systemd-analyze said: a unit it finds fault with gets a line, even when it exits 0. */
async function verify(unit: string, name = "latchkey.service") {
  const path = join(root, "etc/systemd/system", name);
  writeFileSync(path, unit);
  const proc = Bun.spawn(["systemd-analyze", "verify", "--man=no", `--root=${root}`, path], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, output: stdout + stderr };
}

describe("examples/latchkey.service", () => {
  test("systemd-analyze verify finds nothing to say", async () => {
    expect(await verify(UNIT)).toEqual({ code: 0, output: "" });
  });

  test("the check can fail: a misspelt value is reported", async () => {
    const result = await verify(UNIT.replace("NoNewPrivileges=yes", "NoNewPrivileges=maybe"));
    expect(result.output).toContain("Failed to parse boolean value");
  });

  test("has the hardening the issue names", () => {
    for (const line of [
      "ExecStart=/usr/local/bin/latchkey serve",
      "DynamicUser=yes",
      "StateDirectory=latchkey",
      "Environment=DATA_DIR=/var/lib/latchkey",
      "EnvironmentFile=/etc/latchkey/latchkey.env",
      "ProtectSystem=strict",
      "NoNewPrivileges=yes",
      "PrivateTmp=yes",
      "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
      "SystemCallFilter=@system-service",
      "KillSignal=SIGTERM",
    ])
      expect(UNIT.split("\n")).toContain(line);
  });
});

/** The service lines that differ between the two variants; everything else (the hardening) is the same. */
const OWN_LINES = /^(ExecStart|DynamicUser|User|Group|EnvironmentFile)=/;
const serviceLines = (unit: string) => unit.split("\n").filter((line) => /^[A-Z]\w+=/.test(line) && !OWN_LINES.test(line));

describe("examples/packaged: the unit a distribution package installs", () => {
  test("systemd-analyze verify finds nothing to say", async () => {
    expect(await verify(PACKAGED)).toEqual({ code: 0, output: "" });
  });

  test("a static latchkey user, the binary in /usr/bin, an optional environment file; the rest as the hand-installed unit", () => {
    const lines = PACKAGED.split("\n");
    for (const line of ["ExecStart=/usr/bin/latchkey serve", "User=latchkey", "Group=latchkey", "EnvironmentFile=-/etc/latchkey/latchkey.env"])
      expect(lines).toContain(line);
    expect(lines.filter((line) => line.startsWith("DynamicUser="))).toEqual([]);
    expect(serviceLines(PACKAGED)).toEqual(serviceLines(UNIT));
  });

  test("systemd-sysusers creates the latchkey system user from latchkey.sysusers: no shell, its home the state directory", async () => {
    const target = tempDataDir();
    try {
      mkdirSync(join(target, "etc"));
      const proc = Bun.spawn(["systemd-sysusers", `--root=${target}`, join(EXAMPLES, "packaged/latchkey.sysusers")], { stdout: "pipe", stderr: "pipe" });
      const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      expect({ code, stderr }).toEqual({ code: 0, stderr: expect.stringContaining("latchkey") });
      const entry = readFileSync(join(target, "etc/passwd"), "utf8").split("\n").find((line) => line.startsWith("latchkey:"))!;
      const [, , uid, gid, , home, shell] = entry.split(":");
      // A system user (below SYS_UID_MAX, 999 on Debian) with a group of its own.
      expect({ system: Number(uid) < 1000, ownGroup: readFileSync(join(target, "etc/group"), "utf8").includes(`latchkey:x:${gid}:`), home, shell })
        .toEqual({ system: true, ownGroup: true, home: "/var/lib/latchkey", shell: "/usr/sbin/nologin" });
    } finally {
      removeDataDir(target);
    }
  });

  test("the README's one-off command runs as the unit's user with its environment file and data folder, and claims no state directory", async () => {
    const command = README.match(/sudo systemd-run (.+?) \/usr\/bin\/latchkey user add admin --admin/s)?.[1]?.replace(/\\\n\s*/g, " ");
    expect(command).toBeDefined();
    const words = command!.split(/\s+/);
    const properties = words.flatMap((word, at) => (words[at - 1] === "-p" ? [word] : []));
    const environment = words.flatMap((word, at) => (words[at - 1] === "-E" ? [`Environment=${word}`] : []));
    expect(properties.sort()).toEqual(["EnvironmentFile=-/etc/latchkey/latchkey.env", "Group=latchkey", "User=latchkey"]);
    // The same user, group, file and DATA_DIR as the service.
    for (const line of [...properties, ...environment]) expect(PACKAGED.split("\n")).toContain(line);
    // The command's transient unit, written out: systemd accepts it.
    const transient = `[Service]\nType=oneshot\n${[...properties, ...environment].join("\n")}\nExecStart=/usr/bin/latchkey user add admin --admin\n`;
    expect(await verify(transient, "latchkey-admin.service")).toEqual({ code: 0, output: "" });
  });
});
