import { expect, test } from "bun:test";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { createSecretCheckLimiter } from "../../src/limits";
import { DEVICE_TRUST_SECONDS } from "../../src/limits/device";

/**
 * A cookie-less client is exempt from the account-wide backstop at the address it last signed in from, for
 * DEVICE_TRUST_SECONDS: only that account, only that address (IPv6: its /64), only until it expires. A mutation
 * run showed every test passes with the expiry check removed; this pins it (and the account and address binding).
 */

function setUp() {
  const db = openDatabase(":memory:");
  migrate(db);
  const limiter = createSecretCheckLimiter(db, loadConfig({ DATA_DIR: "/nonexistent" }).rateLimit);
  return { db, limiter };
}

test("a successful sign-in makes its address trusted for that account only, and IPv6 by its /64", async () => {
  const { limiter } = setUp();
  expect(await limiter.signedInFrom("owner", "203.0.113.7")).toBe(false);
  await limiter.trustAddress("owner", "203.0.113.7");
  expect(await limiter.signedInFrom("owner", "203.0.113.7")).toBe(true);
  expect(await limiter.signedInFrom("owner", "203.0.113.8")).toBe(false);
  expect(await limiter.signedInFrom("someone-else", "203.0.113.7")).toBe(false);
  await limiter.trustAddress("owner", "2001:db8:1:2::1");
  expect(await limiter.signedInFrom("owner", "2001:db8:1:2::ffff")).toBe(true);
  expect(await limiter.signedInFrom("owner", "2001:db8:1:3::1")).toBe(false);
});

test("the trust lasts DEVICE_TRUST_SECONDS and ends with it", async () => {
  const { db, limiter } = setUp();
  const before = Date.now();
  await limiter.trustAddress("owner", "203.0.113.7");
  const { expires_at: expiresAt } = db.$client.query("SELECT expires_at FROM trusted_sign_ins").get() as { expires_at: number };
  expect(expiresAt).toBeGreaterThanOrEqual(before + DEVICE_TRUST_SECONDS * 1000);
  expect(expiresAt).toBeLessThanOrEqual(Date.now() + DEVICE_TRUST_SECONDS * 1000);
  // The same row, its 90 days over (written as time would have): the address is no longer trusted.
  db.$client.query("UPDATE trusted_sign_ins SET expires_at = ?").run(Date.now() - 1000);
  expect(await limiter.signedInFrom("owner", "203.0.113.7")).toBe(false);
  // A new success renews it.
  await limiter.trustAddress("owner", "203.0.113.7");
  expect(await limiter.signedInFrom("owner", "203.0.113.7")).toBe(true);
});
