/**
 * A real relying party: Apache httpd with Debian's mod_auth_openidc (test/support/apache.ts, README's worked
 * example) and Latchkey, both on loopback, driven by headless Chromium: sign-in and claims, RP-initiated logout,
 * and back-channel logout ending the Apache session when the user signs out of Latchkey.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { startApache, type ApacheRelyingParty } from "../support/apache";
import { screenshot, sharedChromium } from "../support/browser";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";

const PASSWORD = "correct horse battery staple";

const chromiumForFile = sharedChromium();
let latchkey: SpawnedServer;
let apache: ApacheRelyingParty;
let issuer: string;
let dataDir: string;

beforeAll(async () => {
  dataDir = tempDataDir();
  expect((await runCli(["user", "add", "alice", "--email", "alice@example.com"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  expect((await runCli(["user", "roles", "alice", "family,photos"], { DATA_DIR: dataDir })).code).toBe(0);
  const apachePort = freePort();
  const redirectUri = `http://localhost:${apachePort}/protected/redirect_uri`;
  const added = await runCli(
    [
      "oidc", "client", "add", "apache", "--trusted",
      "--redirect-uri", redirectUri,
      "--post-logout-redirect-uri", `http://localhost:${apachePort}/signed-out.html`,
      "--backchannel-logout-uri", `http://127.0.0.1:${apachePort}/protected/redirect_uri?logout=backchannel`,
      "--json",
    ],
    { DATA_DIR: dataDir },
  );
  expect(added.code).toBe(0);
  const port = freePort();
  issuer = `http://127.0.0.1:${port}`;
  latchkey = await spawnServer([BINARY, "serve"], { env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, PUBLIC_URL: issuer } });
  apache = await startApache({ issuer, clientId: "apache", clientSecret: (JSON.parse(added.stdout) as { client_secret: string }).client_secret, port: apachePort });
  expect(apache.redirectUri).toBe(redirectUri);
  await chromiumForFile.launch();
});

afterAll(async () => {
  await chromiumForFile.close();
  await apache?.stop();
  await latchkey?.stop();
  removeDataDir(dataDir);
});

/** Opens Apache's protected page; signs in on Latchkey's page when sent there. Returns the page shown. */
async function openProtected(page: Page): Promise<void> {
  await page.goto(`${apache.url}/protected/index.shtml`);
  if (page.url().startsWith(`${issuer}/login`)) {
    await page.fill('input[name="login"]', "alice");
    await page.fill('input[name="password"]', PASSWORD);
    await Promise.all([page.waitForURL(`${apache.url}/protected/index.shtml`), page.click('button[type="submit"]')]);
  }
  expect(page.url()).toBe(`${apache.url}/protected/index.shtml`);
}

/** Whether Apache still has a session for this browser: its protected page answers without a trip to Latchkey. */
async function apacheSignedIn(page: Page): Promise<boolean> {
  const response = await page.context().request.get(`${apache.url}/protected/index.shtml`, { maxRedirects: 0 });
  return response.status() === 200;
}

test("Chromium signs in to Apache (mod_auth_openidc) through Latchkey: the app sees the user and the claims", async () => {
  const context = await chromiumForFile.get().newContext();
  const page = await context.newPage();
  try {
    await page.goto(`${apache.url}/protected/index.shtml`);
    expect(page.url()).toStartWith(`${issuer}/login?rd=`);
    await openProtected(page);
    expect(await page.textContent("#user")).toBe("alice");
    expect(await page.textContent("#email")).toBe("alice@example.com");
    expect(await page.textContent("#groups")).toBe("family,photos");
    await screenshot(page, "oidc-apache-signed-in");
  } finally {
    await context.close();
  }
});

test("RP-initiated logout from Apache: Latchkey signs the browser out (the ID token names the user) and sends it back to Apache's page", async () => {
  const context = await chromiumForFile.get().newContext();
  const page = await context.newPage();
  try {
    await openProtected(page);
    const back = `${apache.url}/signed-out.html`;
    await page.goto(`${apache.redirectUri}?logout=${encodeURIComponent(back)}`);
    expect(page.url()).toBe(back);
    expect(await page.textContent("h1")).toBe("Signed out of Apache");
    expect(await apacheSignedIn(page)).toBe(false);
    // Latchkey's session ended too: the next visit asks for the password again.
    await page.goto(`${apache.url}/protected/index.shtml`);
    expect(page.url()).toStartWith(`${issuer}/login?rd=`);
  } finally {
    await context.close();
  }
});

test("back-channel logout: signing out of Latchkey ends the Apache session (a logout token POSTed to ?logout=backchannel)", async () => {
  const context = await chromiumForFile.get().newContext();
  const page = await context.newPage();
  try {
    await openProtected(page);
    expect(await apacheSignedIn(page)).toBe(true);
    // Sign out on Latchkey's own account page: Apache is not involved in the browser at all.
    await page.goto(`${issuer}/account`);
    await Promise.all([page.waitForURL(`${issuer}/login?signed_out=1&handoff=none`), page.click('form[action="/logout"] button[type="submit"]')]);
    // The notice goes out through the outbox at once; Apache's session ends when it has been delivered.
    const deadline = Date.now() + 15_000;
    while (await apacheSignedIn(page)) {
      if (Date.now() > deadline) throw new Error(`Apache is still signed in; its log:\n${apache.log()}`);
      await Bun.sleep(100);
    }
    expect(apache.log()).not.toContain("oidc_handle_logout_backchannel: error");
  } finally {
    await context.close();
  }
});
