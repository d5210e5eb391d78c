/**
 * OpenID Connect in a real browser: Debian's Chromium (playwright-core, never a download) opens a tiny relying
 * party (an openid-client app on loopback), is sent to Latchkey, signs in on the real sign-in page with a
 * password and a TOTP code (issue 13's second step), consents, and comes back signed in with the right claims.
 * The consent page's screenshot is kept in .test-results/screenshots/.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateHOTP } from "@oslojs/otp";
import * as oidcClient from "openid-client";
import { screenshot, sharedChromium } from "../support/browser";
import { startRelyingParty } from "../support/oidc";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";

const PASSWORD = "correct horse battery staple";

const chromiumForFile = sharedChromium();
let latchkey: SpawnedServer;
let rp: ReturnType<typeof Bun.serve>;
let issuer: string;
let dataDir: string;
let totpSecret: string;

/** The TOTP code `offset` steps from now (RFC 6238: 30 s, 6 digits, SHA-1). */
const totp = (offset = 0) => generateHOTP(decodeBase32IgnorePadding(totpSecret), BigInt(Math.floor(Date.now() / 30_000) + offset), 6);

/** alice turns on TOTP through the API, as she would from her account. */
async function enrolTotp(): Promise<void> {
  const login = await fetch(`${issuer}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: PASSWORD }) });
  expect(login.status).toBe(200);
  const auth = { authorization: `Bearer ${((await login.json()) as { access_token: string }).access_token}` };
  const started = await fetch(`${issuer}/api/v1/auth/mfa/totp`, { method: "POST", headers: auth });
  expect(started.status).toBe(200);
  totpSecret = ((await started.json()) as { secret: string }).secret;
  const confirmed = await fetch(`${issuer}/api/v1/auth/mfa/totp/confirm`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ code: totp() }) });
  expect(confirmed.status).toBe(200);
}

beforeAll(async () => {
  dataDir = tempDataDir();
  expect((await runCli(["user", "add", "alice", "--email", "alice@example.com"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  expect((await runCli(["user", "roles", "alice", "family"], { DATA_DIR: dataDir })).code).toBe(0);
  const rpPort = freePort();
  const added = await runCli(["oidc", "client", "add", "photos", "--redirect-uri", `http://localhost:${rpPort}/callback`, "--json"], { DATA_DIR: dataDir });
  expect(added.code).toBe(0);
  const { client_secret: secret } = JSON.parse(added.stdout) as { client_secret: string };
  // Latchkey and the relying party are different hosts to the browser (127.0.0.1 and localhost): cookies stay apart.
  const port = freePort();
  issuer = `http://127.0.0.1:${port}`;
  latchkey = await spawnServer([BINARY, "serve"], { env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, PUBLIC_URL: issuer } });
  rp = await startRelyingParty({
    issuer,
    clientId: "photos",
    secret,
    port: rpPort,
    redirectHost: "localhost",
    scope: "openid profile email groups",
    async show(tokens, config) {
      const claims = tokens.claims()!;
      const info = await oidcClient.fetchUserInfo(config, tokens.access_token, claims.sub);
      return { id_token: { preferred_username: claims.preferred_username, email: claims.email, groups: claims.groups }, userinfo: { preferred_username: info.preferred_username, email: info.email, groups: info.groups } };
    },
  });
  await enrolTotp();
  await chromiumForFile.launch();
});

afterAll(async () => {
  await chromiumForFile.close();
  rp?.stop(true);
  await latchkey?.stop();
  removeDataDir(dataDir);
});

test("Chromium signs in to a relying party through Latchkey: sign-in page, consent, back with the right claims", async () => {
  const context = await chromiumForFile.get().newContext();
  const page = await context.newPage();
  try {
    await page.goto(`http://localhost:${rp.port}/`);
    // Sent to Latchkey's sign-in page, with the authorization request as its destination.
    await page.waitForURL((url) => url.pathname === "/login");
    expect(new URL(page.url()).searchParams.get("rd")).toStartWith("/oidc/authorize?");
    await page.fill("#login", "alice");
    await page.fill("#password", PASSWORD);
    await page.click("button[type=submit]");
    // The second step: the TOTP code (the next step's, so that it cannot be the enrolment's code replayed).
    await page.waitForSelector("#code");
    await page.fill("#code", totp(1));
    await page.click('form[action="/login/verify"] button[type=submit]');
    // The consent page: the client is not trusted.
    await page.waitForSelector('form[action="/oidc/authorize/consent"]');
    expect(await page.textContent("h1")).toBe("Allow photos to sign you in?");
    expect(await page.textContent("ul")).toContain("alice@example.com");
    await screenshot(page, "oidc-consent");
    await page.click('button[value="allow"]');
    await page.waitForURL((url) => url.host === `localhost:${rp.port}` && url.pathname === "/callback");
    expect(await page.textContent("h1")).toBe("Signed in as alice");
    const shown = JSON.parse((await page.textContent("#claims"))!);
    expect(shown).toEqual({
      id_token: { preferred_username: "alice", email: "alice@example.com", groups: ["family"] },
      userinfo: { preferred_username: "alice", email: "alice@example.com", groups: ["family"] },
    });
    // Consent is remembered: a second sign-in to the app goes straight back, with no page in between.
    await page.goto(`http://localhost:${rp.port}/`);
    await page.waitForURL((url) => url.pathname === "/callback");
    expect(await page.textContent("h1")).toBe("Signed in as alice");

    // The account page lists the application; withdrawing consent makes it ask again.
    await page.goto(`${issuer}/account`);
    expect(await page.textContent("#applications td")).toBe("photos");
    await page.click('#applications button[type="submit"]');
    await page.waitForURL((url) => url.pathname === "/account" && url.hash === "#applications");
    expect(await page.textContent("#applications")).toContain("No application has asked to sign you in yet.");
    await page.goto(`http://localhost:${rp.port}/`);
    await page.waitForSelector('form[action="/oidc/authorize/consent"]');
    await page.click('button[value="deny"]');
    await page.waitForURL((url) => url.pathname === "/callback");
    expect(await page.textContent("body")).toContain("access_denied");
  } finally {
    await context.close();
  }
});
