/**
 * Requiring a passkey, in a real browser: Debian's Chromium (playwright-core) with the DevTools virtual
 * authenticator, against the binary. A forward-auth rule `require = "passkey"` behind real Caddy sends a
 * password session through the passkey step and then lets it in; an OpenID Connect client registered with
 * `--require passkey` (an openid-client relying party) does the same, and its ID token says amr hwk and acr phr.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { registerPasskeyInBrowser, screenshot, sharedChromium, withVirtualAuthenticator } from "../support/browser";
import { Client } from "../support/client";
import { startRelyingParty } from "../support/oidc";
import { startCaddy, startEcho, type Echo, type Proxy } from "../support/proxies";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";

const PASSWORD = "a long passphrase";
const chromiumForFile = sharedChromium();

let dataDir: string;
let latchkey: SpawnedServer;
let caddy: Proxy;
let echo: Echo;
let rp: ReturnType<typeof Bun.serve>;
/** localhost: a secure context over http, and a valid RP ID; a host-only cookie there covers every port. */
let origin: string;
/** The same server by address, for the API calls of the test itself. */
let api: string;
let app: string;

beforeAll(async () => {
  dataDir = tempDataDir();
  for (const name of ["alice", "carol"]) expect((await runCli(["user", "add", name], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  const rpPort = freePort();
  const added = await runCli(["oidc", "client", "add", "vault", "--redirect-uri", `http://127.0.0.1:${rpPort}/callback`, "--trusted", "--require", "passkey", "--json"], { DATA_DIR: dataDir });
  expect(added.code).toBe(0);
  const { client_secret: secret } = JSON.parse(added.stdout) as { client_secret: string };
  const rules = join(dataDir, "rules.toml");
  writeFileSync(rules, '[[rule]]\nname = "the vault"\npaths = ["/vault"]\nrequire = "passkey"\n');
  const port = freePort();
  const proxyPort = freePort();
  origin = `http://localhost:${port}`;
  api = `http://127.0.0.1:${port}`;
  app = `http://localhost:${proxyPort}`;
  latchkey = await spawnServer([BINARY, "serve"], {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, PUBLIC_URL: origin, TRUST_PROXY: "127.0.0.1", ACCESS_RULES_FILE: rules, RATE_LIMIT_IP_BURST: "1000" },
  });
  echo = startEcho({ html: true });
  caddy = await startCaddy(
    () => `
http://localhost:${proxyPort} {
\tforward_auth 127.0.0.1:${port} {
\t\turi /api/v1/auth/forward
\t\tcopy_headers Remote-User Remote-Groups Remote-Email Remote-Name
\t}
\treverse_proxy ${echo.url.replace("http://", "")}
}`,
    proxyPort,
  );
  rp = await startRelyingParty({
    issuer: origin,
    clientId: "vault",
    secret,
    port: rpPort,
    redirectHost: "127.0.0.1",
    scope: "openid profile",
    show: async (tokens) => {
      const claims = tokens.claims()!;
      return { preferred_username: claims.preferred_username, amr: claims.amr, acr: claims.acr };
    },
  });
  await chromiumForFile.launch();
});

afterAll(async () => {
  await chromiumForFile.close();
  rp?.stop(true);
  await caddy?.stop();
  echo?.stop();
  await latchkey?.stop();
  removeDataDir(dataDir);
});

/** A context whose virtual platform authenticator verifies its user; no autofill (the password form is used). */
const withAuthenticator = () => withVirtualAuthenticator(chromiumForFile.get(), { autofill: false });

/** Signs in on the sign-in page the browser is on, with the password. */
async function passwordSignIn(page: Page, username: string) {
  await page.fill("#login", username);
  await page.fill("#password", PASSWORD);
  await page.click('form[action="/login"] button[type=submit]');
}

/** The user adds a passkey on this browser's authenticator (the registration ceremony in a page of Latchkey's origin). */
async function addPasskey(page: Page, username: string) {
  const client = new Client(api, "bearer", { origin });
  expect((await client.login(username, PASSWORD)).status).toBe(200);
  expect((await registerPasskeyInBrowser(page, client, origin)).status).toBe(201);
}

/** The passkey step-up page: the button runs the ceremony with this account's passkeys and posts the answer. */
async function confirmWithPasskey(page: Page) {
  expect(new URL(page.url()).pathname).toBe("/login/passkey-step");
  expect(await page.textContent("main")).toContain("This app asks you to confirm with a passkey.");
  const button = page.locator("#passkey-button");
  await button.waitFor({ state: "visible" });
  await button.click();
}

describe("a passkey required in Chromium", () => {
  test('forward auth behind Caddy: require = "passkey" sends a password session to the passkey step, then lets it in', async () => {
    const { context, page, errors } = await withAuthenticator();
    try {
      await page.goto(`${app}/vault/notes`);
      await page.waitForURL((url) => url.pathname === "/login");
      await passwordSignIn(page, "alice");
      // Signed in with a password: another path is open, the vault asks for the passkey step, which has none to offer yet.
      await page.waitForURL((url) => url.pathname === "/login/passkey-step");
      expect(new URL(page.url()).searchParams.get("rd")).toBe(`${app}/vault/notes`);
      expect(await page.textContent("main")).toContain("your account has none yet");
      expect(await page.getAttribute('a[href="/account/passkeys/add"]', "href")).toBe("/account/passkeys/add");
      await page.goto(`${app}/open`);
      expect(await page.textContent("#who")).toBe("Signed in as alice ()");

      await addPasskey(page, "alice");
      await page.goto(`${app}/vault/notes`);
      await page.waitForURL((url) => url.pathname === "/login/passkey-step");
      await screenshot(page, "passkey-step-up");
      await confirmWithPasskey(page);
      await page.waitForURL(`${app}/vault/notes`);
      expect(await page.textContent("#who")).toBe("Signed in as alice ()");
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test("an OpenID Connect client registered with --require passkey: the passkey step, then an ID token with amr hwk and acr phr", async () => {
    const { context, page, errors } = await withAuthenticator();
    try {
      await page.goto(`${origin}/login`);
      await passwordSignIn(page, "carol");
      await page.waitForURL(`${origin}/account`);
      await addPasskey(page, "carol");

      await page.goto(`http://127.0.0.1:${rp.port}/`);
      await page.waitForURL((url) => url.pathname === "/login/passkey-step");
      expect(new URL(page.url()).searchParams.get("rd")).toStartWith("/oidc/authorize?");
      await confirmWithPasskey(page);
      await page.waitForURL((url) => url.host === `127.0.0.1:${rp.port}` && url.pathname === "/callback");
      const claims = JSON.parse((await page.textContent("#claims"))!);
      expect(claims).toEqual({ preferred_username: "carol", amr: ["pwd", "hwk", "user", "mfa"], acr: "phr" });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
