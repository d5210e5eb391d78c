import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir } from "../support/server";

/**
 * What a new self-hoster meets first (issue 16): the README's quick start, run as written against the built
 * binary (only the port is this test's own), and the hints the server prints at its first start.
 */

const README = readFileSync(resolve(import.meta.dir, "../../README.md"), "utf8");

/** The fenced sh blocks of the README's Quick start section. */
function quickStartBlocks(): string[] {
  const section = README.slice(README.indexOf("## Quick start"), README.indexOf("\n## ", README.indexOf("## Quick start") + 1));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

describe("the README's quick start", () => {
  test("starts the server as written, and its curl commands register, sign in and reach /me", async () => {
    const [start, calls] = quickStartBlocks();
    // `ALLOW_REGISTRATION=true ./dist/latchkey`, run from a fresh folder: its data lands in ./data there.
    const serverLine = start!.split("\n").find((line) => line.includes("./dist/latchkey"))!;
    const assignments = Object.fromEntries(
      serverLine.split("#")[0]!.trim().split(/\s+/).filter((word) => /^[A-Z_]+=/.test(word)).map((word) => word.split("=") as [string, string]),
    );
    expect(assignments).toEqual({ ALLOW_REGISTRATION: "true" });
    const cwd = tempDataDir();
    const port = freePort();
    const server = await spawnServer([BINARY], { cwd, env: { PATH: process.env.PATH ?? "", ...assignments, PORT: String(port) } });
    try {
      expect(server.output()).toContain("registration open");
      const script = calls!.replaceAll("localhost:3000", `localhost:${port}`);
      const run = Bun.spawnSync(["bash", "-euo", "pipefail", "-c", script], { env: { PATH: process.env.PATH ?? "" } });
      const stdout = run.stdout.toString();
      expect({ code: run.exitCode, stderr: run.stderr.toString() }).toEqual({ code: 0, stderr: "" });
      // The last command's answer: who is signed in.
      const me = JSON.parse(stdout.slice(stdout.lastIndexOf('{"user"')));
      expect(me.user).toMatchObject({ username: "alice", email: "alice@example.com" });
      expect(readFileSync(join(cwd, "data", "latchkey.db")).byteLength).toBeGreaterThan(0);
    } finally {
      await server.stop();
      removeDataDir(cwd);
    }
  });
});

describe("start-up hints", () => {
  const start = async (env: Record<string, string>) => {
    const dataDir = tempDataDir();
    const port = freePort();
    const server = await spawnServer([BINARY, "serve"], { env: { PATH: process.env.PATH ?? "", PORT: String(port), DATA_DIR: dataDir, ...env } });
    const output = server.output();
    expect(await server.stop()).toBe(0);
    removeDataDir(dataDir);
    return { output, port };
  };
  const NO_USERS =
    'latchkey: no users yet: create the first admin with "latchkey user add <name> --admin" (it reads the password from standard input), or start with ALLOW_REGISTRATION=true';

  test("a closed instance with no user says how to create the first one; an open one does not", async () => {
    expect((await start({ HOST: "127.0.0.1" })).output).toContain(NO_USERS);
    expect((await start({ HOST: "127.0.0.1", ALLOW_REGISTRATION: "true" })).output).not.toContain("no users yet");
  });

  test("HOST=::1 is printed as a URL: http://[::1]:PORT", async () => {
    const { output, port } = await start({ HOST: "::1" });
    expect(output).toContain(`listening on http://[::1]:${port} `);
  });

  test("cookie mode on a non-loopback address with PUBLIC_URL left at localhost warns that browsers on other names are refused", async () => {
    const warning = "latchkey: warning: TOKEN_DELIVERY=cookie with PUBLIC_URL=http://localhost:";
    expect((await start({ HOST: "0.0.0.0", TOKEN_DELIVERY: "cookie" })).output).toContain(warning);
    expect((await start({ HOST: "127.0.0.1", TOKEN_DELIVERY: "cookie" })).output).not.toContain(warning);
    expect((await start({ HOST: "0.0.0.0", TOKEN_DELIVERY: "cookie", PUBLIC_URL: "https://auth.example.test" })).output).not.toContain(warning);
  });
});

describe("the command line in words a person needs", () => {
  const cli = (args: string[], env: Record<string, string> = {}, stdin?: string) => runCli(args, env, stdin);

  test("--help names every environment variable the server reads (the binary travels without the README)", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    const source = readFileSync(resolve(import.meta.dir, "../../src/config.ts"), "utf8");
    const variables = [...new Set([...source.matchAll(/env, "([A-Z_]+)"/g)].map((match) => match[1]!))];
    expect(variables.length).toBeGreaterThan(40);
    expect(variables.filter((name) => !new RegExp(`\\b${name}\\b`).test(help.stdout))).toEqual([]);
  });

  test("user --help lists the user subcommands; a bare `user` points to it", async () => {
    const help = await cli(["user", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("usage: latchkey user add <username> [--email E] [--admin]");
    expect(help.stdout).toContain("usage: latchkey user delete <username>");
    const bare = await cli(["user"]);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toEndWith("see latchkey user --help\n");
  });

  test("serve --port is told that settings are environment variables (PORT=)", async () => {
    for (const args of [["serve", "--port", "8080"], ["--port=8080"]]) {
      const result = await cli(args);
      expect(result).toEqual({
        code: 1,
        stdout: "",
        stderr: "latchkey: settings are environment variables, not options: PORT=... latchkey serve; see latchkey --help\n",
      });
    }
  });

  test("migrate on a new folder says it created the database; again, that it is up to date", async () => {
    const dataDir = tempDataDir();
    try {
      const path = join(dataDir, "latchkey.db");
      expect(await cli(["migrate"], { DATA_DIR: dataDir })).toEqual({ code: 0, stdout: `created the database ${path} and applied every migration\n`, stderr: "" });
      expect(await cli(["migrate"], { DATA_DIR: dataDir })).toEqual({ code: 0, stdout: `database ${path} is up to date\n`, stderr: "" });
    } finally {
      removeDataDir(dataDir);
    }
  });

  test("an empty password on standard input is named as such, and no user is created", async () => {
    const dataDir = tempDataDir();
    try {
      const result = await cli(["user", "add", "bob"], { DATA_DIR: dataDir }, "");
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`latchkey: no password on standard input: pipe it in, e.g. printf '%s' "$PASSWORD" | latchkey ...\n`);
      expect((await cli(["user", "list"], { DATA_DIR: dataDir })).stdout).not.toContain("bob");
    } finally {
      removeDataDir(dataDir);
    }
  });
});
