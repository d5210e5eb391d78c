/**
 * Real reverse proxies on loopback for the forward-auth tests: Debian's nginx (auth_request) and caddy
 * (forward_auth), each in its own temporary directory, plus a tiny upstream app that echoes what it was told
 * about the user. `make test` installs nginx and caddy when missing (as root); without them these tests fail.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, spawnServer, type SpawnedServer } from "./server";

export const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((path) => existsSync(path)) ?? "nginx";
export const CADDY = ["/usr/bin/caddy", "/usr/local/bin/caddy"].find((path) => existsSync(path)) ?? "caddy";

export interface Echo {
  url: string;
  stop(): void;
}

/**
 * The protected app: answers every request with the method, path and Remote-* headers it received, as JSON, or
 * with `html`, as a small page (for the browser tests' screenshots) whose #who says who it was told signed in.
 */
export function startEcho(options: { html?: boolean } = {}): Echo {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      const url = new URL(request.url);
      const header = (name: string) => request.headers.get(name);
      const seen = {
        method: request.method,
        path: url.pathname + url.search,
        remote_user: header("remote-user"),
        remote_groups: header("remote-groups"),
        remote_email: header("remote-email"),
        remote_name: header("remote-name"),
        // What a CGI, WSGI or PHP app would also read as Remote-User / Remote-Groups.
        remote_user_underscore: header("remote_user"),
        remote_groups_underscore: header("remote_groups"),
      };
      if (!options.html) return Response.json(seen);
      const text = (value: string | null) => (value ?? "").replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
      return new Response(
        `<!doctype html><html><head><meta charset="utf-8"><title>${text(url.hostname)}</title></head>` +
          `<body style="font:18px system-ui;margin:2rem"><h1>${text(url.hostname)}</h1>` +
          `<p id="who">Signed in as ${text(seen.remote_user)} (${text(seen.remote_groups)})</p><p>${text(seen.path)}</p></body></html>`,
        { headers: { "content-type": "text/html; charset=utf-8" } },
      );
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}

export interface Proxy {
  url: string;
  stop(): Promise<void>;
  output(): string;
}

/** Resolves once something accepts TCP connections on the port (the proxies print nothing when ready). */
async function listening(port: number, proxy: SpawnedServer, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      socket.end();
      return;
    } catch {
      if (proxy.proc.exitCode !== null || Date.now() > deadline) throw new Error(`proxy did not listen on ${port}:\n${proxy.output()}`);
      await Bun.sleep(25);
    }
  }
}

/** spawnServer waits for a "listening" line; the proxies print none, so start them through a shell that does. */
async function spawnQuiet(command: string[], env: Record<string, string>): Promise<SpawnedServer> {
  const script = `echo " listening on "; exec "$@"`;
  return spawnServer(["/bin/sh", "-c", script, "sh", ...command], { env: { PATH: process.env.PATH ?? "", ...env } });
}

/**
 * nginx in front of `upstream`, asking Latchkey at `latchkey` with auth_request; `config` is the server
 * block's body (see examples/nginx for the same directives with comments).
 */
export async function startNginx(serverBlock: (port: number) => string): Promise<Proxy> {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-nginx-"));
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, sub));
  const port = freePort();
  const conf = `
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${serverBlock(port)}
}`;
  writeFileSync(join(dir, "nginx.conf"), conf);
  const proc = await spawnQuiet([NGINX, "-p", dir, "-c", join(dir, "nginx.conf")], {});
  await listening(port, proc);
  return {
    url: `http://127.0.0.1:${port}`,
    output: proc.output,
    async stop() {
      await proc.stop("SIGQUIT");
    },
  };
}

/** Caddy with `caddyfile(port)` as its whole configuration; no admin endpoint, no automatic HTTPS. */
export async function startCaddy(caddyfile: (port: number) => string, port = freePort()): Promise<Proxy> {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-caddy-"));
  writeFileSync(join(dir, "Caddyfile"), `{\n\tadmin off\n\tauto_https off\n}\n${caddyfile(port)}`);
  const proc = await spawnQuiet([CADDY, "run", "--adapter", "caddyfile", "--config", join(dir, "Caddyfile")], {
    HOME: dir,
    XDG_DATA_HOME: join(dir, "data"),
    XDG_CONFIG_HOME: join(dir, "config"),
  });
  await listening(port, proc);
  return {
    url: `http://127.0.0.1:${port}`,
    output: proc.output,
    async stop() {
      await proc.stop("SIGTERM");
    },
  };
}

const EXAMPLES = join(import.meta.dir, "../../examples");

/** The text from `start` through its matching closing brace. */
function braceBlock(text: string, start: number): string {
  let depth = 0;
  for (let i = text.indexOf("{", start); i < text.length; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) return text.slice(start, i + 1);
  }
  throw new Error("unbalanced braces");
}

/**
 * The protected app's server block of examples/nginx/latchkey.conf, as it is, moved to loopback ports: it listens on
 * `port`, asks Latchkey at `latchkey` and proxies to `upstream` (origins like http://127.0.0.1:1234).
 */
export function nginxExampleAppBlock(port: number, latchkey: string, upstream: string): string {
  const conf = readFileSync(join(EXAMPLES, "nginx/latchkey.conf"), "utf8");
  const start = conf.lastIndexOf("server {", conf.indexOf("auth_request /"));
  return braceBlock(conf, start)
    .replace("listen 80;", `listen 127.0.0.1:${port};`)
    .replaceAll("http://127.0.0.1:3000", latchkey)
    .replaceAll("http://127.0.0.1:8080", upstream);
}

/** The protected app's site of examples/caddy/Caddyfile, as it is, moved to loopback ports (see nginxExampleAppBlock). */
export function caddyExampleAppSite(port: number, latchkey: string, upstream: string): string {
  const caddyfile = readFileSync(join(EXAMPLES, "caddy/Caddyfile"), "utf8");
  return braceBlock(caddyfile, caddyfile.indexOf("app.example.com {"))
    .replace("app.example.com", `http://127.0.0.1:${port}`)
    .replaceAll("127.0.0.1:3000", latchkey.replace("http://", ""))
    .replaceAll("127.0.0.1:8080", upstream.replace("http://", ""));
}
