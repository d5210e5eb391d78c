import { describe, expect, test } from "bun:test";
import { DEVICE_TRUST_SECONDS, deviceCookies } from "../../src/limits/device";

/**
 * The device cookie exempts a browser from the account-wide backstop (OWASP device cookies), so it must vouch for
 * exactly the account it was issued for, only until it expires, and only with this server's signature. A mutation
 * run showed the end-to-end tests pass without the account and expiry checks: each is pinned here.
 */

const key = new Uint8Array(32).fill(7);
const cookies = deviceCookies(key);
const now = Date.UTC(2026, 10, 28, 12);
const issued = cookies.issue("user-a", now);

describe("device cookies", () => {
  test("vouch for the account they were issued for, for DEVICE_TRUST_SECONDS (90 days)", () => {
    expect(DEVICE_TRUST_SECONDS).toBe(90 * 86_400);
    expect(issued.split(".")).toHaveLength(3);
    expect(issued).toStartWith(`user-a.${now / 1000 + DEVICE_TRUST_SECONDS}.`);
    expect(cookies.vouchesFor(issued, "user-a", now)).toBe(true);
    expect(cookies.vouchesFor(issued, "user-a", now + (DEVICE_TRUST_SECONDS - 1) * 1000)).toBe(true);
  });

  test("never vouch for another account: one's own cookie does not exempt a guesser on someone else's", () => {
    expect(cookies.vouchesFor(issued, "user-b", now)).toBe(false);
    expect(cookies.vouchesFor(issued, "user-", now)).toBe(false);
    expect(cookies.vouchesFor(issued, "", now)).toBe(false);
  });

  test("stop vouching when they expire", () => {
    expect(cookies.vouchesFor(issued, "user-a", now + DEVICE_TRUST_SECONDS * 1000)).toBe(false);
    expect(cookies.vouchesFor(issued, "user-a", now + (DEVICE_TRUST_SECONDS + 86_400) * 1000)).toBe(false);
  });

  test("a changed account, expiry or signature, another server's key, or garbage vouches for nothing (and never throws)", () => {
    const [id, expiry, signature] = issued.split(".") as [string, string, string];
    const forged = [
      `user-b.${expiry}.${signature}`,
      `${id}.${Number(expiry) + 86_400}.${signature}`,
      `${id}.${expiry}.${signature.slice(0, -1)}${signature.endsWith("A") ? "B" : "A"}`,
      `${id}.${expiry}.`,
      `${id}.${expiry}`,
      deviceCookies(new Uint8Array(32).fill(8)).issue("user-a", now),
      "",
      ".",
      "..",
      "user-a",
      "user-a.not-a-number.sig",
    ];
    for (const value of forged) {
      expect(cookies.vouchesFor(value, "user-a", now)).toBe(false);
      expect(cookies.vouchesFor(value, id, now)).toBe(false);
    }
    expect(cookies.vouchesFor(undefined, "user-a", now)).toBe(false);
  });
});
