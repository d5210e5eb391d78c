/**
 * The README's JWKS examples, run as written against the binary (JWT_ALG=RS256): the Node one with jose (by
 * Bun), the Python one with Debian's python3-jwt (`make test` installs it as root). Only the issuer URL is
 * replaced, and a line calling the function with a real access token is added.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";

const ROOT = resolve(import.meta.dir, "../..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const SCRATCH = join(ROOT, ".test-results");
const PASSWORD = "correct horse battery staple";
const PYTHON = "/usr/bin/python3";

/** The first fenced block of `language` after `heading` in the README. */
function example(heading: string, language: string): string {
  const start = README.indexOf(heading);
  expect(start).toBeGreaterThan(-1);
  const match = new RegExp("```" + language + "\\n([\\s\\S]*?)```").exec(README.slice(start));
  return match![1]!;
}

let server: SpawnedServer;
let url: string;
let dataDir: string;
let token: string;
let userId: string;

beforeAll(async () => {
  dataDir = tempDataDir();
  expect((await runCli(["user", "add", "alice"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  const port = freePort();
  url = `http://127.0.0.1:${port}`;
  server = await spawnServer([BINARY, "serve"], { env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, PUBLIC_URL: url, JWT_ALG: "RS256" } });
  const login = await fetch(`${url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: PASSWORD }) });
  const body = (await login.json()) as { access_token: string; user: { id: string } };
  token = body.access_token;
  userId = body.user.id;
  mkdirSync(SCRATCH, { recursive: true });
});

afterAll(async () => {
  await server.stop();
  removeDataDir(dataDir);
});

async function run(command: string[]) {
  const proc = Bun.spawn(command, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

test("the Node (jose) example verifies a Latchkey access token from the JWKS, and refuses a tampered one", async () => {
  const code = example("Verifying an access token in Node", "js").replace("https://auth.example.com", url);
  const file = join(SCRATCH, "readme-node-example.mjs");
  writeFileSync(file, `${code}\nconsole.log(JSON.stringify(await verifyAccessToken(process.argv[2]).catch((error) => ({ refused: error.code }))));\n`);
  const good = await run([process.execPath, file, token]);
  expect(good.stderr).toBe("");
  expect(JSON.parse(good.stdout)).toEqual({ userId, sessionId: expect.any(String) });
  const [header, , signature] = token.split(".");
  const tampered = `${header}.${Buffer.from(JSON.stringify({ sub: "someone-else", iss: url, exp: 9_999_999_999 })).toString("base64url")}.${signature}`;
  expect(JSON.parse((await run([process.execPath, file, tampered])).stdout)).toEqual({ refused: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" });
});

test("the Python (PyJWT) example verifies a Latchkey access token from the JWKS", async () => {
  const code = example("In Python with [PyJWT]", "python").replace("https://auth.example.com", url);
  const file = join(SCRATCH, "readme-python-example.py");
  writeFileSync(file, `${code}\nimport json, sys\nprint(json.dumps(verify_access_token(sys.argv[1])))\n`);
  const result = await run([PYTHON, file, token]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  expect(JSON.parse(result.stdout)).toEqual({ user_id: userId, session_id: expect.any(String) });
});
