/**
 * Issue 22, in process: what /metrics counts and who may read it on the main listener, the Grafana dashboard's
 * queries against the registry's names, and the configuration. A real Prometheus scrapes the binary in
 * test/e2e/metrics.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { ConfigError } from "../../src/errors";
import { createOutbox } from "../../src/mail/outbox";
import { createMetrics } from "../../src/modules/metrics/service";
import { deriveSecrets } from "../../src/secrets";
import { waitFor } from "../support/client";

const TOKEN = "t".repeat(40);
const PASSWORD = "correct horse battery staple";

function appWith(env: Record<string, string> = {}) {
  const db = openDatabase(":memory:");
  migrate(db);
  const config = loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", ALLOW_REGISTRATION: "true", METRICS_TOKEN: TOKEN, ...env });
  return createApp(config, db, deriveSecrets("k".repeat(32)));
}

type App = ReturnType<typeof appWith>;
const get = (app: App, path: string, headers: Record<string, string> = {}) => app.handle(new Request(`http://localhost${path}`, { headers }));
const post = (app: App, path: string, body: unknown) =>
  app.handle(new Request(`http://localhost${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }));

/** The exposition's samples, "name{labels}" → value. */
function samples(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

async function scrape(app: App): Promise<Map<string, number>> {
  const response = await get(app, "/metrics", { authorization: `Bearer ${TOKEN}` });
  expect(response.status).toBe(200);
  return samples(await response.text());
}

describe("/metrics on the main listener (METRICS_TOKEN)", () => {
  test("answers Prometheus's text format for the token only; 401 invalid_metrics_token otherwise", async () => {
    const app = appWith();
    const ok = await get(app, "/metrics", { authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(ok.headers.get("cache-control")).toBe("no-store");
    expect(await ok.text()).toContain('latchkey_build_info{version="');
    for (const authorization of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Basic ${btoa(`x:${TOKEN}`)}`, TOKEN]) {
      const refused = await get(app, "/metrics", authorization ? { authorization } : {});
      expect({ authorization, status: refused.status }).toEqual({ authorization, status: 401 });
      expect(refused.headers.get("www-authenticate")).toBe('Bearer realm="metrics"');
      expect(await refused.json()).toEqual({ error: "invalid_metrics_token", message: "Send Authorization: Bearer with METRICS_TOKEN." });
    }
  });

  test("without METRICS_TOKEN the main listener has no /metrics, and without METRICS_ADDR either nothing is counted", async () => {
    const app = appWith({ METRICS_TOKEN: "" });
    expect((await get(app, "/metrics", { authorization: `Bearer ${TOKEN}` })).status).toBe(404);
    expect(app.metrics).toBeUndefined();
    expect(appWith({ METRICS_TOKEN: "", METRICS_ADDR: "127.0.0.1:9464" }).metrics).toBeDefined();
  });
});

describe("what is counted", () => {
  test("forward auth: allow, redirect, deny and unauthorized, each with its latency observed", async () => {
    const app = appWith();
    const registered = await post(app, "/api/v1/auth/register", { username: "fwd", password: PASSWORD });
    expect(registered.status).toBe(201);
    const bearer = { authorization: `Bearer ${((await registered.json()) as { access_token: string }).access_token}` };
    expect((await get(app, "/api/v1/auth/forward", bearer)).status).toBe(200);
    expect((await get(app, "/api/v1/auth/forward", bearer)).status).toBe(200);
    // ?roles= on the forward URL restricts it: a user without the role is denied.
    expect((await get(app, "/api/v1/auth/forward?roles=admin", bearer)).status).toBe(403);
    expect((await get(app, "/api/v1/auth/forward", { accept: "text/html" })).status).toBe(302);
    expect((await get(app, "/api/v1/auth/forward")).status).toBe(401);
    const scraped = await scrape(app);
    for (const [decision, count] of [["allow", 2], ["redirect", 1], ["deny", 1], ["unauthorized", 1]] as const) {
      expect({ decision, total: scraped.get(`latchkey_forward_auth_decisions_total{decision="${decision}"}`) }).toEqual({ decision, total: count });
      expect({ decision, count: scraped.get(`latchkey_forward_auth_duration_seconds_count{decision="${decision}"}`) }).toEqual({ decision, count });
      expect(scraped.get(`latchkey_forward_auth_duration_seconds_bucket{decision="${decision}",le="+Inf"}`)).toBe(count);
      expect(scraped.get(`latchkey_forward_auth_duration_seconds_sum{decision="${decision}"}`)).toBeGreaterThan(0);
    }
    // Buckets are cumulative and end at the count.
    const buckets = [...scraped].filter(([name]) => name.startsWith('latchkey_forward_auth_duration_seconds_bucket{decision="allow"')).map(([, value]) => value);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
    expect(buckets.at(-1)).toBe(2);
  });

  test("sign-ins by method and result, second-factor answers, and sessions revoked by sign-outs", async () => {
    const app = appWith();
    expect((await post(app, "/api/v1/auth/register", { username: "ann", password: PASSWORD })).status).toBe(201);
    const signedIn = await post(app, "/api/v1/auth/login", { username: "ann", password: PASSWORD });
    expect(signedIn.status).toBe(200);
    expect((await post(app, "/api/v1/auth/login", { username: "ann", password: "wrong wrong wrong" })).status).toBe(401);
    expect((await post(app, "/api/v1/auth/login", { username: "nobody", password: "wrong wrong wrong" })).status).toBe(401);
    const access = ((await signedIn.json()) as { access_token: string }).access_token;
    const logout = await app.handle(new Request("http://localhost/api/v1/auth/logout", { method: "POST", headers: { authorization: `Bearer ${access}` } }));
    expect(logout.status).toBe(200);
    // The second step of a sign-in, as the audit log hears it (a TOTP sign-in end to end is in test/e2e/mfa.test.ts).
    app.metrics!.recorder.audited({ event: "login_succeeded", userId: "u", detail: { second_factor: "totp" } });
    app.metrics!.recorder.audited({ event: "login_succeeded", userId: "u", detail: { second_factor: "totp_enrollment", via: "browser" } });
    app.metrics!.recorder.audited({ event: "login_succeeded", userId: "u", detail: { second_factor: "recovery_code" } });
    app.metrics!.recorder.audited({ event: "mfa_challenge_failed", userId: "u", detail: { methods: ["totp"] } });
    const scraped = await scrape(app);
    expect(scraped.get('latchkey_sign_ins_total{method="password",result="success"}')).toBe(1);
    expect(scraped.get('latchkey_sign_ins_total{method="password",result="invalid_credentials"}')).toBe(2);
    expect(scraped.get('latchkey_sign_ins_total{method="password",result="account_disabled"}')).toBe(0);
    expect(scraped.get('latchkey_sign_ins_total{method="totp",result="success"}')).toBe(2);
    expect(scraped.get('latchkey_sign_ins_total{method="recovery_code",result="success"}')).toBe(1);
    expect(scraped.get('latchkey_second_factor_total{result="success"}')).toBe(3);
    expect(scraped.get('latchkey_second_factor_total{result="failure"}')).toBe(1);
    expect(scraped.get("latchkey_sessions_revoked_total")).toBe(1);
  });

  test("rate-limit refusals, each one (the audit trail keeps one row a minute per address)", async () => {
    const app = appWith({ RATE_LIMIT: "on", RATE_LIMIT_IP: "1/1h", RATE_LIMIT_IP_BURST: "1" });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(app, "/api/v1/auth/login", { username: "nobody", password: "wrong wrong wrong" })).status);
    expect(statuses).toEqual([401, 429, 429]);
    const scraped = await scrape(app);
    expect(scraped.get('latchkey_rate_limited_total{scope="ip"}')).toBe(2);
    expect(scraped.get('latchkey_rate_limited_total{scope="account"}')).toBe(0);
  });

  test("the mail queue's depth, failed attempts and dropped mails", async () => {
    const db = openDatabase(":memory:");
    migrate(db);
    const metrics = createMetrics(loadConfig({ DATA_DIR: "/nonexistent" }), db);
    const dropped: string[] = [];
    const outbox = createOutbox(
      db,
      async () => {
        throw new Error("550 no such mailbox");
      },
      { retryInterval: 1, maxAttempts: 1, dataKey: new Uint8Array(32) },
      async (mail) => {
        metrics.recorder.mailDropped();
        dropped.push(mail.error);
      },
      metrics.recorder.mailAttempted,
    );
    await outbox.enqueue("verify_email", null, { to: "a@example.test", subject: "s", text: "t", html: "<p>t</p>" });
    const before = samples((await metrics.render()).body);
    expect(before.get("latchkey_mail_queue_depth")).toBe(1);
    outbox.start();
    await waitFor(async () => dropped.length, (count) => count === 1);
    await outbox.stop();
    const after = samples((await metrics.render()).body);
    expect(after.get("latchkey_mail_queue_depth")).toBe(0);
    expect(after.get("latchkey_mail_failures_total")).toBe(1);
    expect(after.get("latchkey_mail_sent_total")).toBe(0);
    expect(after.get("latchkey_mail_dropped_total")).toBe(1);
    expect(after.get("latchkey_database_pool_size")).toBe(1);
  });
});

describe("examples/grafana/latchkey.json", () => {
  const dashboard = JSON.parse(readFileSync(join(import.meta.dir, "../../examples/grafana/latchkey.json"), "utf8"));
  /** Every PromQL expression in the dashboard: panel targets and template variable queries. */
  const expressions: string[] = [];
  (function walk(node: unknown) {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === "object")
      for (const [key, value] of Object.entries(node)) {
        if ((key === "expr" || key === "definition") && typeof value === "string") expressions.push(value);
        else walk(value);
      }
  })(dashboard);
  const db = openDatabase(":memory:");
  migrate(db);
  const names = new Set(createMetrics(loadConfig({ DATA_DIR: "/nonexistent" }), db).names());
  const HISTOGRAM_SERIES = /_(bucket|sum|count)$/;

  test("every metric name its queries use is one the server exposes", () => {
    expect(expressions.length).toBeGreaterThan(10);
    const used = new Set(expressions.flatMap((expression) => expression.match(/\blatchkey_[a-z0-9_]+/g) ?? []));
    const unknown = [...used].filter((name) => !names.has(name) && !(HISTOGRAM_SERIES.test(name) && names.has(name.replace(HISTOGRAM_SERIES, ""))));
    expect(unknown).toEqual([]);
  });

  test("it shows every metric the server exposes", () => {
    const text = expressions.join("\n");
    expect([...names].filter((name) => !new RegExp(`\\b${name}(_bucket|_sum|_count)?\\b`).test(text))).toEqual([]);
  });
});

describe("configuration", () => {
  const load = (env: Record<string, string>) => loadConfig({ DATA_DIR: "/nonexistent", ...env });

  test("METRICS_ADDR: host:port, an IPv6 address in brackets; off by default", () => {
    expect(load({}).metrics).toEqual({ listen: undefined, token: undefined });
    expect(load({ METRICS_ADDR: "127.0.0.1:9464" }).metrics.listen).toEqual({ host: "127.0.0.1", port: 9464 });
    expect(load({ METRICS_ADDR: "[::1]:9464" }).metrics.listen).toEqual({ host: "::1", port: 9464 });
    expect(load({ METRICS_ADDR: "metrics.internal:9464" }).metrics.listen).toEqual({ host: "metrics.internal", port: 9464 });
    for (const bad of ["9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:9464", "[localhost]:9464", "a b:1", "http://127.0.0.1:9464"])
      expect(() => load({ METRICS_ADDR: bad })).toThrow(new ConfigError(`METRICS_ADDR=${JSON.stringify(bad)} is invalid: expected host:port, e.g. 127.0.0.1:9464 or [::1]:9464`));
  });

  test("METRICS_TOKEN: at least 32 token characters", () => {
    expect(load({ METRICS_TOKEN: TOKEN }).metrics.token).toBe(TOKEN);
    for (const bad of ["short", "x".repeat(31), `${"x".repeat(32)} y`, `${"x".repeat(32)}"`])
      expect(() => load({ METRICS_TOKEN: bad })).toThrow("METRICS_TOKEN is invalid");
  });
});
