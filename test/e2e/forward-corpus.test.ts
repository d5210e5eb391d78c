/**
 * The forward-auth corpus (test/support/forward-corpus.ts) through REAL nginx and REAL Caddy, configured with the
 * app blocks of examples/, asking the compiled binary, in front of an upstream that records every request target
 * exactly as it arrived. Requests are written raw on a socket (fetch would resolve dot-segments first). For each
 * request, anonymous and as a signed-in user without roles, the upstream's readings of the path (decoded once,
 * dot-segments resolved; with `//` collapsed; Tomcat's `;params` dropped) must stay out of every path the rules
 * deny that caller, and what reaches it anonymously must resolve inside the bypass prefix.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { appReadings, CORPUS_PATHS, CORPUS_RULES, inside } from "../support/forward-corpus";
import { caddyExampleAppSite, nginxExampleAppBlock, startCaddy, startNginx, type Proxy } from "../support/proxies";
import { apiSignIn } from "../support/pages";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";

const PASSWORD = "correct horse battery staple";

interface Seen {
  method: string;
  target: string;
  headers: Record<string, string>;
}

/** An HTTP/1.1 upstream on a raw socket: records each request line and headers as sent, by the x-corpus-id header. */
function startRecorder() {
  const seen = new Map<string, Seen>();
  const server = Bun.listen<{ buffer: string }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        socket.data = { buffer: "" };
      },
      data(socket, chunk) {
        socket.data.buffer += chunk.toString("latin1");
        const end = socket.data.buffer.indexOf("\r\n\r\n");
        if (end === -1) return;
        const [requestLine, ...lines] = socket.data.buffer.slice(0, end).split("\r\n");
        const [method, target] = requestLine!.split(" ");
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(":");
          headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
        }
        seen.set(headers["x-corpus-id"] ?? "", { method: method!, target: target!, headers });
        const body = "{}";
        socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      },
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, seen, stop: () => server.stop(true) };
}

/** One request written as it is (no URL parsing on our side), answered with its status and body. */
async function raw(port: number, method: string, target: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const { promise, resolve, reject } = Promise.withResolvers<string>();
  let received = "";
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_socket, chunk) {
        received += chunk.toString("latin1");
      },
      close() {
        resolve(received);
      },
      error(_socket, error) {
        reject(error);
      },
    },
  });
  const lines = Object.entries({ host: `127.0.0.1:${port}`, ...headers, connection: "close" }).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.write(`${method} ${target} HTTP/1.1\r\n${lines.join("")}\r\n`);
  const text = await promise;
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), text };
}

let dataDir: string;
let latchkey: SpawnedServer;
let lk: string;
let recorder: ReturnType<typeof startRecorder>;
let bobKey: string;

beforeAll(async () => {
  dataDir = tempDataDir();
  expect((await runCli(["user", "add", "bob", "--email", "bob@example.com"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  writeFileSync(join(dataDir, "rules.toml"), CORPUS_RULES);
  const port = freePort();
  lk = `http://127.0.0.1:${port}`;
  latchkey = await spawnServer([BINARY, "serve"], {
    env: {
      PATH: process.env.PATH ?? "",
      HOST: "127.0.0.1",
      PORT: String(port),
      DATA_DIR: dataDir,
      PUBLIC_URL: lk,
      TRUST_PROXY: "127.0.0.1",
      ACCESS_RULES_FILE: join(dataDir, "rules.toml"),
    },
  });
  bobKey = (await apiSignIn(lk, "bob", PASSWORD, { createKey: "corpus" })).apiKey!;
  recorder = startRecorder();
});

afterAll(async () => {
  recorder?.stop();
  await latchkey?.stop();
  removeDataDir(dataDir);
});

/** The steering headers a client adds, hoping the check reads them instead of the proxy's own. */
const STEERING: Record<string, string>[] = [
  {},
  { "x-original-url": "http://127.0.0.1:1/api/health", "x-original-method": "GET" },
  { "x-forwarded-host": "127.0.0.1:1", "x-forwarded-uri": "/api/health", "x-forwarded-method": "GET", "x-forwarded-proto": "http" },
  { "remote-user": "root", remote_user: "root", "remote-groups": "admin", remote_groups: "admin" },
];

for (const kind of ["nginx", "caddy"] as const) {
  describe(`the corpus behind ${kind}`, () => {
    let proxy: Proxy;
    let port: number;
    beforeAll(async () => {
      proxy =
        kind === "nginx"
          ? await startNginx((p) => nginxExampleAppBlock(p, lk, recorder.url))
          : await startCaddy((p) => caddyExampleAppSite(p, lk, recorder.url));
      port = Number(new URL(proxy.url).port);
    });
    afterAll(async () => {
      await proxy?.stop();
    });

    test("the setup lets through what it should: the bypass anonymously, a signed-in page with a key", async () => {
      expect((await raw(port, "GET", "/api/health", { "x-corpus-id": `${kind}-control-1` })).status).toBe(200);
      expect(recorder.seen.get(`${kind}-control-1`)?.target).toBe("/api/health");
      expect((await raw(port, "GET", "/private/x", { "x-corpus-id": `${kind}-control-2`, "x-api-key": bobKey })).status).toBe(200);
      expect(recorder.seen.get(`${kind}-control-2`)?.headers["remote-user"]).toBe("bob");
      expect((await raw(port, "GET", "/private/x", { "x-corpus-id": `${kind}-control-3` })).status).toBe(401);
      expect(recorder.seen.has(`${kind}-control-3`)).toBe(false);
    });

    test("no request a rule denies reaches the app as a protected path; a bypass resolves inside its prefix", async () => {
      const problems: string[] = [];
      let sent = 0;
      let reached = 0;
      for (const [path] of CORPUS_PATHS)
        for (const [s, steering] of STEERING.entries())
          for (const method of s === 0 ? ["GET", "POST"] : ["GET"])
            for (const who of ["anonymous", "bob"] as const) {
              const id = `${kind}-${sent++}`;
              const headers = { ...steering, "x-corpus-id": id, ...(who === "bob" ? { "x-api-key": bobKey } : {}) };
              const answer = await raw(port, method, path, headers);
              const seen = recorder.seen.get(id);
              if (!seen) continue;
              reached++;
              const label = `${who} ${method} ${path} ${JSON.stringify(steering)} → ${seen.method} ${seen.target} (${answer.status})`;
              const query = seen.target.indexOf("?");
              const readings = appReadings(query === -1 ? seen.target : seen.target.slice(0, query));
              if (!readings) continue; // the app refuses a path it cannot decode: nothing served
              const folded = readings.map((reading) => reading.toLowerCase());
              if (folded.some((reading) => inside("/admin-area", reading) || inside("/blocked", reading))) problems.push(`protected: ${label}`);
              if (who === "anonymous" && (!readings.every((reading) => inside("/api/health", reading)) || seen.method !== "GET"))
                problems.push(`outside the bypass: ${label}`);
              // Whoever asks, the app hears who is signed in from Latchkey only.
              if (seen.headers.remote_user !== undefined || seen.headers.remote_groups !== undefined) problems.push(`Remote_User passed: ${label}`);
              if (![who === "bob" ? "bob" : "", ""].includes(seen.headers["remote-user"] ?? "")) problems.push(`Remote-User ${seen.headers["remote-user"]}: ${label}`);
            }
      expect(problems).toEqual([]);
      // The corpus did go through: most requests (the bob ones on ordinary paths) reached the app.
      expect(sent).toBeGreaterThan(900);
      expect(reached).toBeGreaterThan(150);
    }, 120_000);
  });
}
