/**
 * With TRUST_PROXY, only a trusted peer's proxy headers describe the request. A client that is not the proxy sends
 * each header family alone (issue 23: sent together, the mix was refused for the mix, and the trust check behind
 * it was never reached): with rules in force it is denied, never given the bypass its headers ask for.
 * In-process there is no peer address at all, so no peer is trusted.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { deriveSecrets } from "../../src/secrets";

const dir = mkdtempSync(join(tmpdir(), "latchkey-untrusted-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const rulesFile = join(dir, "rules.toml");
writeFileSync(rulesFile, '[[rule]]\nname = "health"\npaths = ["/api/health"]\npolicy = "bypass"\n');

const db = openDatabase(":memory:");
migrate(db);
const app = createApp(
  loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", PUBLIC_URL: "https://auth.example.com", TRUST_PROXY: "192.0.2.10", ACCESS_RULES_FILE: rulesFile }),
  db,
  deriveSecrets("k".repeat(32)),
);
const forward = (headers: Record<string, string>) => app.handle(new Request("https://auth.example.com/api/v1/auth/forward", { headers }));

test("X-Forwarded-* alone from a client that is not the trusted proxy: denied, not the bypass it names", async () => {
  const response = await forward({ "x-forwarded-proto": "https", "x-forwarded-host": "app.example.com", "x-forwarded-uri": "/api/health", "x-forwarded-method": "GET" });
  expect(response.status).toBe(403);
});

test("X-Original-URL alone from a client that is not the trusted proxy: denied, not the bypass it names", async () => {
  const response = await forward({ "x-original-url": "https://app.example.com/api/health", "x-original-method": "GET" });
  expect(response.status).toBe(403);
});
