import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAccessRules, policyFor } from "../../src/modules/forward/rules";

const EXAMPLES = join(import.meta.dir, "../../examples");

test("the Traefik compose file parses, and its middleware asks forward auth and copies the Remote-* headers", () => {
  const compose = Bun.YAML.parse(readFileSync(join(EXAMPLES, "traefik/docker-compose.yml"), "utf8")) as {
    services: Record<string, { labels?: string[]; environment?: Record<string, string> }>;
  };
  const labels = Object.fromEntries(compose.services.latchkey!.labels!.map((label) => label.split(/=(.*)/s).slice(0, 2) as [string, string]));
  expect(labels["traefik.http.middlewares.latchkey.forwardauth.address"]).toBe("http://latchkey:3000/api/v1/auth/forward");
  expect(labels["traefik.http.middlewares.latchkey.forwardauth.authResponseHeaders"]!.split(",")).toEqual([
    "Remote-User",
    "Remote-Groups",
    "Remote-Email",
    "Remote-Name",
  ]);
  expect(compose.services.whoami!.labels).toContain("traefik.http.routers.app.middlewares=latchkey-strip,latchkey");
  expect(compose.services.latchkey!.environment!.TRUST_PROXY).toBeDefined();
  // Traefik must set X-Forwarded-* itself (trustForwardHeader=true would pass a client's own on to the check)...
  expect(labels["traefik.http.middlewares.latchkey.forwardauth.trustForwardHeader"]).toBe("false");
  // ...and remove a client's Remote-* headers, with their underscore spellings, before the app sees them.
  for (const name of ["Remote-User", "Remote-Groups", "Remote-Email", "Remote-Name", "Remote_User", "Remote_Groups", "Remote_Email", "Remote_Name", "X-Original-URL", "X-Original-Method"])
    expect(labels[`traefik.http.middlewares.latchkey-strip.headers.customrequestheaders.${name}`]).toBe("");
});

test("the nginx example sets X-Original-* itself and clears the other family's headers in the check", () => {
  const conf = readFileSync(join(EXAMPLES, "nginx/latchkey.conf"), "utf8");
  for (const line of [
    "proxy_set_header X-Original-URL $scheme://$http_host$request_uri;",
    "proxy_set_header X-Original-Method $request_method;",
    'proxy_set_header X-Forwarded-Host "";',
    'proxy_set_header X-Forwarded-Uri "";',
    'proxy_set_header X-Forwarded-Method "";',
    "underscores_in_headers off;",
    "error_page 403 /latchkey-auth;",
  ])
    expect(conf).toContain(line);
});

test("the Caddyfile copies the same headers Traefik's example does", () => {
  const caddyfile = readFileSync(join(EXAMPLES, "caddy/Caddyfile"), "utf8");
  expect(caddyfile).toContain("copy_headers Remote-User Remote-Groups Remote-Email Remote-Name");
  for (const name of ["Remote-User", "Remote-Groups", "Remote-Email", "Remote-Name", "Remote_User", "Remote_Groups", "Remote_Email", "Remote_Name"])
    expect(caddyfile).toContain(`request_header -${name}\n`);
  expect(caddyfile).toContain("header_up -X-Original-URL\n");
  expect(caddyfile).toContain("header_up -X-Original-Method\n");
  expect(caddyfile).toContain("uri /api/v1/auth/forward");
});

test("examples/access-rules.toml is valid and says what its comments say", () => {
  const rules = parseAccessRules(readFileSync(join(EXAMPLES, "access-rules.toml"), "utf8"), "access-rules.toml");
  const at = (host: string, path: string, ip = "203.0.113.9", method = "GET") => policyFor(rules, { host, path, method, ip }).kind;
  expect(at("wiki.example.com", "/api/health")).toBe("bypass");
  expect(at("wiki.example.com", "/api/health", undefined, "POST")).toBe("signed_in");
  expect(at("admin.example.com", "/", "192.168.1.7")).toBe("restricted");
  expect(at("admin.example.com", "/")).toBe("deny");
  expect(at("photos.example.com", "/album")).toBe("restricted");
  expect(at("wiki.example.com", "/page")).toBe("signed_in");
  expect(policyFor(rules, { host: "vault.example.com", path: "/", method: "GET", ip: "203.0.113.9" })).toEqual({ kind: "signed_in", passkey: true });
});
