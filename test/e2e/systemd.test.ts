/**
 * Issue 14: examples/latchkey.service passes `systemd-analyze verify` (Debian's systemd; make test installs it)
 * against a root folder holding the compiled binary where the unit expects it and the system's own units.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BINARY, removeDataDir, tempDataDir } from "../support/server";

const UNIT = readFileSync(resolve(import.meta.dir, "../../examples/latchkey.service"), "utf8");
const root = tempDataDir();
mkdirSync(join(root, "usr/local/bin"), { recursive: true });
mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
mkdirSync(join(root, "usr/lib/systemd"), { recursive: true });
expect(Bun.spawnSync(["cp", "-a", BINARY, join(root, "usr/local/bin/latchkey")]).exitCode).toBe(0);
expect(Bun.spawnSync(["cp", "-a", "/usr/lib/systemd/system", join(root, "usr/lib/systemd/")]).exitCode).toBe(0);
afterAll(() => removeDataDir(root));

/** Exit code and everything systemd-analyze said: a unit it finds fault with gets a line, even when it exits 0. */
async function verify(unit: string) {
  const path = join(root, "etc/systemd/system/latchkey.service");
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
