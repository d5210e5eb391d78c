import { expect, test } from "bun:test";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { addressGroup } from "../../src/lib/ip";
import { createTokenBuckets } from "../../src/limits/token-bucket";
import { deriveSecrets } from "../../src/secrets";

test("a token bucket refuses past its capacity with the seconds until the next token, and the map stays bounded under a flood", () => {
  const buckets = createTokenBuckets(2, 60_000, 100);
  const now = 1_000_000;
  expect(buckets.take("attacker", now).allowed).toBe(true);
  expect(buckets.take("attacker", now).allowed).toBe(true);
  expect(buckets.take("attacker", now)).toEqual({ allowed: false, retryAfter: 30 });
  for (let n = 0; n < 10_000; n++) buckets.take(`flood-${n}`, now);
  expect(buckets.size()).toBeLessThanOrEqual(100);
});

test("per-address limits count an IPv4 address, or an IPv6 /64", () => {
  expect(addressGroup("203.0.113.7")).toBe("203.0.113.7");
  expect(addressGroup("::ffff:203.0.113.7")).toBe("203.0.113.7");
  expect(addressGroup("2001:db8:1:2::1")).toBe(addressGroup("2001:db8:1:2:ffff:ffff:ffff:ffff"));
  expect(addressGroup("2001:db8:1:2::1")).not.toBe(addressGroup("2001:db8:1:3::1"));
  expect(addressGroup("2001:db8:1:2::1")).toBe("20010db800010002::/64");
});

test("/health answers 503 once the database is gone", async () => {
  const db = openDatabase(":memory:");
  migrate(db);
  const app = createApp(loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off" }), db, deriveSecrets("k".repeat(32)));
  const health = async () => {
    const response = await app.handle(new Request("http://localhost/health"));
    return { status: response.status, body: await response.json() };
  };
  expect(await health()).toEqual({ status: 200, body: { status: "ok", version: expect.any(String), commit: expect.any(String) } });
  db.$client.close();
  expect(await health()).toEqual({ status: 503, body: { status: "unavailable", version: expect.any(String), commit: expect.any(String) } });
});
