import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { send } from "../support/client";
import { removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";

/**
 * Strangers must not be able to lock the owner out (issue 16): 50 wrong passwords from 10 addresses put an
 * account into the account-wide backstop, but a client that recently signed in to it (its browser holds the
 * device cookie, or it signs in from the address it last succeeded from) is exempt.
 */

const PASSWORD = "a long passphrase";
const USUAL_ADDRESS = "198.51.100.10";

describe("the account-wide backstop spares the owner's own clients", () => {
  let server: RunningServer;
  const login = (password: string, ip: string, cookie?: string, username = "owner") =>
    send(server.url, "POST", "/api/v1/auth/login", {
      json: { username, password },
      headers: { "x-forwarded-for": ip, ...(cookie ? { cookie } : {}) },
    });

  beforeAll(async () => {
    const dataDir = tempDataDir();
    expect((await runCli(["user", "add", "owner"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
    expect((await runCli(["user", "add", "scripter"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
    // A large per-address bucket: only the failure counters are under test.
    // Cookie mode: the API sets the device cookie there (and the sign-in page in every mode).
    server = await startServer({ TOKEN_DELIVERY: "cookie", TRUST_PROXY: "true", RATE_LIMIT_IP: "1000/1m", RATE_LIMIT_IP_BURST: "1000" }, dataDir);
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("after 50 failures from 10 addresses: the device cookie signs in from a new address; a fresh address and a forged cookie wait", async () => {
    // The owner's API client signs in from its usual address; the owner's browser gets a device cookie.
    expect((await login(PASSWORD, USUAL_ADDRESS)).status).toBe(200);
    const browser = await login(PASSWORD, "198.51.100.20");
    expect(browser.status).toBe(200);
    const device = browser.cookies.latchkey_device!;
    expect(device.attributes).toMatchObject({ httponly: true, samesite: "Lax", path: "/", "max-age": String(90 * 86_400) });
    expect(device.value.split(".")[0]).toBe(browser.body.user.id);

    for (let address = 1; address <= 10; address++)
      for (let attempt = 1; attempt <= 5; attempt++) expect((await login("wrong password", `203.0.113.${address}`)).status).toBe(401);

    // A fresh address without the cookie meets the backstop, even with the right password; so does a forged cookie.
    const fresh = await login(PASSWORD, "192.0.2.99");
    expect(fresh.status).toBe(429);
    expect(fresh.body.error).toBe("rate_limited");
    const [id, expiry] = device.value.split(".");
    const forged = await login(PASSWORD, "192.0.2.98", `latchkey_device=${id}.${expiry}.${"A".repeat(43)}`);
    expect(forged.status).toBe(429);
    // The owner's browser, from an address it never used, is recognised by its cookie.
    expect((await login(PASSWORD, "192.0.2.50", `latchkey_device=${device.value}`)).status).toBe(200);
  });

  test("a cookie-less API client is recognised by the address it last signed in from", async () => {
    // Another account: the owner's run above outlives the owner's own sign-in (second-factor-grind.test.ts).
    expect((await login(PASSWORD, USUAL_ADDRESS, undefined, "scripter")).status).toBe(200);
    for (let address = 11; address <= 20; address++)
      for (let attempt = 1; attempt <= 5; attempt++) expect((await login("wrong password", `203.0.113.${address}`, undefined, "scripter")).status).toBe(401);
    expect((await login(PASSWORD, "192.0.2.97", undefined, "scripter")).status).toBe(429);
    const usual = await login(PASSWORD, USUAL_ADDRESS, undefined, "scripter");
    expect(usual.status).toBe(200);
    expect(usual.body.message).toBe("Signed in.");
  });
});
