/**
 * Passkeys in a real browser: Debian's Chromium (playwright-core) with the DevTools virtual authenticator
 * (WebAuthn.addVirtualAuthenticator: a CTAP2 platform authenticator with resident keys), against the binary.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateHOTP } from "@oslojs/otp";
import type { BrowserContext, CDPSession, Page } from "playwright-core";
import { copyFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { registerPasskeyInBrowser, SCREENSHOTS, screenshot, sharedChromium, withVirtualAuthenticator } from "../support/browser";
import { axeViolations, layoutProblems } from "../support/page-checks";
import { openTestDatabase } from "../support/database";
import { SoftwareAuthenticator } from "../support/passkeys";
import { AUTH, Client } from "../support/client";
import { freePort, removeDataDir, startOnLocalhost, startServer, type RunningServer } from "../support/server";

const PASSWORD = "a long passphrase";
const COUNTER_SENTENCE = "This passkey's authenticator may have been copied, so it was refused. Sign in another way and check your passkeys.";
/**
 * Two sign-in hosts under one RP ID (home.test) for the test of a passkey used across hosts: the names map to
 * loopback, and plain http on them counts as a secure context (WebAuthn needs one) for this browser only.
 */
const HOSTS_PORT = freePort();
const FIRST_HOST = `http://one.home.test:${HOSTS_PORT}`;
const SECOND_HOST = `http://two.home.test:${HOSTS_PORT}`;
const chromiumForFile = sharedChromium(["--host-resolver-rules=MAP *.home.test 127.0.0.1", `--unsafely-treat-insecure-origin-as-secure=${FIRST_HOST},${SECOND_HOST}`]);

describe("passkeys in Chromium with a virtual authenticator", () => {
  let server: RunningServer;
  let origin: string;
  let api: string;
  beforeAll(async () => {
    await chromiumForFile.launch();
    ({ server, origin, api } = await startOnLocalhost({ ALLOW_REGISTRATION: "true", RATE_LIMIT_IP_BURST: "1000" }));
  });
  afterAll(async () => {
    await chromiumForFile.close();
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  /** A context with a virtual platform authenticator that verifies its user (as a fingerprint or PIN would). */
  const withAuthenticator = (options?: Parameters<typeof withVirtualAuthenticator>[1]) => withVirtualAuthenticator(chromiumForFile.get(), options);

  /**
   * The authenticator stops verifying its user (no PIN, no fingerprint: user presence only), and the sign-in
   * page's options are rewritten on their way to the script to ask for none ("discouraged"): Chromium refuses a
   * "preferred" request outright when verification fails, while other browsers and security keys sign in without
   * it. The server decides by the UV flag the authenticator signed, never by what it asked.
   */
  async function withoutUserVerification(page: Page, cdp: CDPSession, authenticatorId: string) {
    await cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified: false });
    await page.route("**/api/v1/auth/login/passkey/options", async (route) => {
      const answer = await route.fetch();
      await route.fulfill({ response: answer, json: { ...(await answer.json()), userVerification: "discouraged" } });
    });
  }
  /** A real registration ceremony in the page (navigator.credentials.create), through the API of a signed-in client. */
  const registerInBrowser = (page: Page, client: Client, at = origin) => registerPasskeyInBrowser(page, client, at);

  async function account(username: string) {
    const client = new Client(api, "bearer", { origin });
    expect((await client.register(username, PASSWORD)).status).toBe(201);
    return client;
  }

  test("register, then sign in by autofill: the username field's passkey request (conditional mediation) signs in on its own, usernameless", async () => {
    const client = await account("chromium-autofill");
    const { context, page, errors } = await withAuthenticator();
    try {
      expect((await registerInBrowser(page, client)).status).toBe(201);
      // The virtual authenticator answers the autofill request at once, as a person picking the passkey would.
      await Promise.all([page.waitForURL(`${origin}/account`), page.goto(`${origin}/login`)]);
      expect(await page.textContent("header")).toContain("chromium-autofill");
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test("in a browser without autofill, the button signs in usernameless; the page's one script is allowed by its hash", async () => {
    const client = await account("chromium-button");
    const { context, page, errors } = await withAuthenticator({ autofill: false });
    try {
      expect((await registerInBrowser(page, client)).status).toBe(201);
      await page.goto(`${origin}/login`);
      expect(await page.getAttribute("#login", "autocomplete")).toBe("username webauthn");
      const button = page.locator("#passkey-button");
      await button.waitFor({ state: "visible" });
      await screenshot(page, "passkey-sign-in");
      expect(page.url()).toBe(`${origin}/login`);
      await Promise.all([page.waitForURL(`${origin}/account`), button.click()]);
      expect(await page.textContent("header")).toContain("chromium-button");
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test("without JavaScript the sign-in page offers the password, and no passkey button", async () => {
    const context = await chromiumForFile.get().newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      await page.goto(`${origin}/login`);
      expect(await page.isVisible("#password")).toBe(true);
      expect(await page.isVisible("#passkey-button")).toBe(false);
    } finally {
      await context.close();
    }
  });

  /** The sign-in page's autofill request off (a browser without conditional mediation): only the button asks. */
  /** The password form of the sign-in page; `then` is where it leads (the account page, or the second step's). */
  async function passwordSignIn(page: Page, username: string, then = `${origin}/account`, at = origin) {
    await page.goto(`${at}/login`);
    await page.fill("#login", username);
    await page.fill("#password", PASSWORD);
    await Promise.all([page.waitForURL(then), page.click('form[action="/login"] button[type=submit]')]);
  }

  const listed = async (client: Client) => ((await client.request("GET", `${AUTH}/passkeys`)).body.passkeys as { name: string }[]).map((passkey) => passkey.name);

  test("register on the account page: \"Add a passkey\", one button, back to the list with its name; the same authenticator again is refused in one plain sentence", async () => {
    const client = await account("pages-register");
    const { context, page, errors } = await withAuthenticator({ autofill: false });
    try {
      await passwordSignIn(page, "pages-register");
      expect(await page.textContent("#passkeys")).toContain("No passkeys yet.");
      await Promise.all([page.waitForURL(`${origin}/account/passkeys/add`), page.click('#passkeys a:text-is("Add a passkey")')]);
      expect(await page.textContent("h1")).toBe("Add a passkey");
      await page.locator("#passkey-button").waitFor({ state: "visible" });
      expect(await page.isVisible("#passkey-needs-script")).toBe(false);
      await Promise.all([page.waitForURL(`${origin}/account#passkeys`), page.click("#passkey-button")]);
      expect(await page.textContent("#passkeys [role=status]")).toBe("Passkey added. It is called “Passkey”: rename it if you like.");
      expect(await page.locator("#passkeys tbody tr").count()).toBe(1);
      expect(await listed(client)).toEqual(["Passkey"]);
      expect(errors).toEqual([]);

      // excludeCredentials: the authenticator that holds this account's passkey refuses to make another.
      await page.goto(`${origin}/account/passkeys/add`);
      await page.click("#passkey-button");
      await page.waitForSelector("#passkey-status:not(:empty)");
      expect(await page.textContent("#passkey-status")).toBe("This device already holds a passkey for your account: you can sign in with it already.");
      expect(page.url()).toBe(`${origin}/account/passkeys/add`);
      expect(await listed(client)).toEqual(["Passkey"]);
    } finally {
      await context.close();
    }
  });

  test("rename on the passkey's page; delete after the confirmation page, and then that passkey no longer signs in", async () => {
    const client = await account("pages-manage");
    const { context, page, errors } = await withAuthenticator({ autofill: false });
    try {
      expect((await registerInBrowser(page, client)).status).toBe(201);
      await page.goto(`${origin}/login`);
      await Promise.all([page.waitForURL(`${origin}/account`), page.click("#passkey-button")]);
      await Promise.all([page.waitForURL(/\/rename$/), page.click('#passkeys a[aria-label="Rename Passkey"]')]);
      await page.fill("#passkey_name", "Work laptop");
      await Promise.all([page.waitForURL(`${origin}/account#passkeys`), page.click('button:text-is("Save the name")')]);
      expect(await page.textContent("#passkeys [role=status]")).toBe("The passkey is now called “Work laptop”.");
      expect(await listed(client)).toEqual(["Work laptop"]);

      await Promise.all([page.waitForURL(/\/delete$/), page.click('#passkeys a[aria-label="Delete Work laptop"]')]);
      expect(await page.textContent("h1")).toBe("Delete this passkey?");
      expect(await page.textContent("main strong")).toBe("Work laptop");
      expect(await listed(client)).toEqual(["Work laptop"]);
      await Promise.all([page.waitForURL(`${origin}/account#passkeys`), page.click('button:text-is("Delete the passkey")')]);
      expect(await page.textContent("#passkeys [role=status]")).toBe("The passkey is deleted: it no longer signs you in.");
      expect(await listed(client)).toEqual([]);
      expect(errors).toEqual([]);

      // Signed out, the authenticator still offers the passkey; the server no longer knows it.
      await Promise.all([page.waitForURL(/\/login\?signed_out=1/), page.click('nav button:text-is("Sign out")')]);
      await Promise.all([page.waitForURL(`${origin}/login/passkey`), page.click("#passkey-button")]);
      expect(await page.textContent("[role=alert]")).toBe("This passkey is not registered here: it may have been deleted. Sign in another way.");
    } finally {
      await context.close();
    }
  });

  test("a cloned authenticator: a passkey whose signature counter went back is refused in one sentence, audited, and not signed in", async () => {
    const client = await account("pages-clone");
    const { context, page, cdp, errors, authenticatorId } = await withAuthenticator({ autofill: false });
    try {
      expect((await registerInBrowser(page, client)).status).toBe(201);
      await page.goto(`${origin}/login`);
      await Promise.all([page.waitForURL(`${origin}/account`), page.click("#passkey-button")]);
      // The server now holds the counter of that sign-in. A copy of the key made before it (the same private key,
      // an older counter) is what a clone is: the authenticator's credential put back with its counter at 0.
      const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
      expect(credentials).toHaveLength(1);
      const [held] = credentials;
      expect(held!.signCount).toBeGreaterThan(0);
      await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: held!.credentialId });
      await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: { ...held!, signCount: 0 } });
      expect(errors).toEqual([]);
      await Promise.all([page.waitForURL(/\/login\?signed_out=1/), page.click('nav button:text-is("Sign out")')]);
      // The refusal is answered 401 (the browser logs the status as a failed load: not the page's error).

      await Promise.all([page.waitForURL(`${origin}/login/passkey`), page.click("#passkey-button")]);
      expect(await page.textContent("[role=alert]")).toBe(COUNTER_SENTENCE);
      expect(await page.textContent("header")).not.toContain("pages-clone");
      await page.goto(`${origin}/account`);
      expect(new URL(page.url()).pathname).toBe("/login");
      const db = await openTestDatabase(server.dataDir);
      try {
        const rows = await db.all<{ detail: string | object }>("SELECT detail FROM audit_events WHERE event = ?", "passkey_counter_regression");
        const details = rows.map((row) => (typeof row.detail === "string" ? JSON.parse(row.detail) : row.detail));
        expect(details).toContainEqual({ passkey_id: expect.any(String), stored: held!.signCount, received: 1 });
      } finally {
        await db.close();
      }
    } finally {
      await context.close();
    }
  });

  test("a prompt the person cancels (the authenticator refuses: NotAllowedError) is one sentence beside the button, on the add page, the sign-in page and the second step", async () => {
    const client = await account("pages-cancel");
    const { context, page, cdp, authenticatorId } = await withAuthenticator({ autofill: false });
    try {
      await passwordSignIn(page, "pages-cancel");
      // The fingerprint is not recognised, or the person closes the prompt: the browser answers NotAllowedError.
      await cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified: false });
      await page.goto(`${origin}/account/passkeys/add`);
      await page.click("#passkey-button");
      await page.waitForSelector("#passkey-status:not(:empty)");
      expect(await page.textContent("#passkey-status")).toBe("Adding the passkey was cancelled or timed out. Try again when you are ready.");
      expect(await listed(client)).toEqual([]);

      await cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified: true });
      expect((await registerInBrowser(page, client)).status).toBe(201);
      await cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified: false });
      await Promise.all([page.waitForURL(/\/login\?signed_out=1/), page.goto(`${origin}/account`).then(() => page.click('nav button:text-is("Sign out")'))]);
      await page.click("#passkey-button");
      await page.waitForSelector("#passkey-status:not(:empty)");
      expect(await page.textContent("#passkey-status")).toBe("The passkey request was cancelled or timed out. Try again, or sign in with your password.");
      expect(page.url()).toContain("/login?signed_out=1");

      await passwordSignIn(page, "pages-cancel", `${origin}/login`);
      await page.click("#passkey-button");
      await page.waitForSelector("#passkey-status:not(:empty)");
      expect(await page.textContent("#passkey-status")).toBe("The passkey request was cancelled or timed out. Try again.");
    } finally {
      await context.close();
    }
  });

  test("user verification off: the passkey is one factor, and the account's second step (TOTP) follows it; the passkey is not offered again", async () => {
    const client = await account("pages-no-uv");
    const { context, page, cdp, errors, authenticatorId } = await withAuthenticator({ autofill: false });
    try {
      expect((await registerInBrowser(page, client)).status).toBe(201);
      await withoutUserVerification(page, cdp, authenticatorId);
      const { secret } = (await client.request("POST", `${AUTH}/mfa/totp`)).body;
      // A code is taken once per 30-second step: the sign-in answers with the next step's (within the allowed drift).
      const code = (ahead = 0) => generateHOTP(decodeBase32IgnorePadding(secret), BigInt(Math.floor(Date.now() / 30_000) + ahead), 6);
      expect((await client.request("POST", `${AUTH}/mfa/totp/confirm`, { json: { code: code() } })).status).toBe(200);

      await page.goto(`${origin}/login`);
      await Promise.all([page.waitForURL(`${origin}/login/passkey`), page.click("#passkey-button")]);
      expect(await page.textContent("h1")).toBe("One more step");
      expect(await page.textContent("main p")).toBe("Enter the 6-digit code from your authenticator app.");
      expect(await page.locator("#passkey-button").count()).toBe(0);
      await page.fill("#code", code(1));
      await Promise.all([page.waitForURL(`${origin}/account`), page.click('button:text-is("Continue")')]);
      expect(await page.textContent("header")).toContain("pages-no-uv");
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test("a passkey as the second step after a password: the second-step page's \"Use a passkey\" button", async () => {
    const client = await account("pages-second-step");
    const { context, page, errors } = await withAuthenticator({ autofill: false });
    try {
      expect((await registerInBrowser(page, client)).status).toBe(201);
      await passwordSignIn(page, "pages-second-step", `${origin}/login`);
      expect(await page.textContent("h1")).toBe("One more step");
      expect(await page.textContent("main p")).toBe("Use your passkey to finish signing in.");
      await page.locator("#passkey-button").waitFor({ state: "visible" });
      expect(await page.isVisible("#passkey-needs-script")).toBe(false);
      await screenshot(page, "passkey-second-step");
      await Promise.all([page.waitForURL(`${origin}/account`), page.click("#passkey-button")]);
      expect(await page.textContent("header")).toContain("pages-second-step");
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  /** The amr of the browser session whose `latchkey_session` cookie this context holds, and its account's name. */
  async function browserSession(context: BrowserContext, dataDir: string) {
    const cookie = (await context.cookies()).find((each) => each.name === "latchkey_session");
    expect(cookie).toBeDefined();
    const db = await openTestDatabase(dataDir);
    try {
      const hash = new Bun.CryptoHasher("sha256").update(cookie!.value).digest("hex");
      const row = await db.get<{ amr: string; username: string }>("SELECT s.amr, u.username FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.browser_token_hash = ?", hash);
      return row && { username: row.username, amr: JSON.parse(row.amr) as string[] };
    } finally {
      await db.close();
    }
  }

  // Issue 25's owed test: the second step's script asks the API for its options (POST /api/v1/auth/login/verify/options,
  // JSON, the challenge id of the page's form), and under TOKEN_DELIVERY=cookie the API guards cookie-borne requests
  // against cross-site forgery: the same journey must still sign in. `header` too: its API reads its own header.
  for (const mode of ["cookie", "header"] as const)
    test(`TOKEN_DELIVERY=${mode}: the second step's "Use a passkey" after a password signs in on /account, session amr pwd, hwk, mfa`, async () => {
      const port = freePort();
      const at = `http://localhost:${port}`;
      const own = await startServer({ PORT: String(port), PUBLIC_URL: at, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true", RATE_LIMIT_IP_BURST: "1000" });
      const { context, page, errors } = await withAuthenticator({ autofill: false });
      try {
        const username = `second-step-${mode}`;
        const client = new Client(`http://127.0.0.1:${port}`, mode, { origin: at });
        expect((await client.register(username, PASSWORD)).status).toBe(201);
        expect((await registerInBrowser(page, client, at)).status).toBe(201);
        await passwordSignIn(page, username, `${at}/login`, at);
        expect(await page.textContent("h1")).toBe("One more step");
        await page.locator("#passkey-button").waitFor({ state: "visible" });
        const [options] = await Promise.all([page.waitForResponse(`${at}/api/v1/auth/login/verify/options`), page.click("#passkey-button")]);
        // A refused request for options would leave the page where it is, saying "This sign-in has expired".
        expect(options.status()).toBe(200);
        // Resolves at once if the form's post has already arrived there.
        await page.waitForURL(`${at}/account`);
        expect(await page.textContent("header")).toContain(username);
        expect(await browserSession(context, own.dataDir)).toEqual({ username, amr: ["pwd", "hwk", "mfa"] });
        expect(errors).toEqual([]);
      } finally {
        await context.close();
        expect(await own.stop()).toBe(0);
        removeDataDir(own.dataDir);
      }
    });

  test("without JavaScript the add page says that adding a passkey needs it, and shows no button", async () => {
    await account("pages-no-script");
    const context = await chromiumForFile.get().newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      await passwordSignIn(page, "pages-no-script");
      await page.goto(`${origin}/account/passkeys/add`);
      expect(await page.textContent("#passkey-needs-script")).toBe("Adding a passkey needs JavaScript, which is off in this browser. Turn it on for this site, or use another browser.");
      expect(await page.isVisible("#passkey-needs-script")).toBe(true);
      expect(await page.isVisible("#passkey-button")).toBe(false);
    } finally {
      await context.close();
    }
  });

  test("a passkey made on one sign-in host signs in on another host of the same RP ID (SIGN_IN_URLS under PASSKEY_RP_ID)", async () => {
    const [first, second] = [FIRST_HOST, SECOND_HOST];
    const hosts = await startServer({ PORT: String(HOSTS_PORT), PUBLIC_URL: first, SIGN_IN_URLS: second, PASSKEY_RP_ID: "home.test", ALLOW_REGISTRATION: "true", RATE_LIMIT_IP_BURST: "1000" });
    const { context, page, errors } = await withAuthenticator({ autofill: false });
    try {
      const client = new Client(`http://127.0.0.1:${HOSTS_PORT}`, "bearer", { origin: first });
      expect((await client.register("two-hosts", PASSWORD)).status).toBe(201);
      expect((await registerInBrowser(page, client, first)).status).toBe(201);
      // The other host's sign-in form at once (no handoff: this browser is signed in nowhere).
      await page.goto(`${second}/login?handoff=none`);
      await Promise.all([page.waitForURL(`${second}/account`), page.click("#passkey-button")]);
      expect(await page.textContent("header")).toContain("two-hosts");
      expect(errors).toEqual([]);
    } finally {
      await context.close();
      expect(await hosts.stop()).toBe(0);
      removeDataDir(hosts.dataDir);
    }
  });

  /** Screenshots the README shows (docs/screenshots), from the run below: `<shot>` → file. */
  const README_SHOTS: Record<string, string> = {
    "passkeys-account-desktop-light": "passkeys-account.png",
    "passkeys-account-phone-dark": "passkeys-account-phone-dark.png",
    "passkey-add-phone-light": "passkey-add-phone.png",
    "passkey-add-desktop-dark": "passkey-add-dark.png",
    "passkey-sign-in-phone-dark": "passkey-sign-in-phone-dark.png",
    "passkey-sign-in-desktop-light": "passkey-sign-in.png",
  };

  test("the passkey pages at a phone's and a desktop's size, light and dark: screenshots (the README's), accessibility and layout", async () => {
    const client = await account("grandma");
    // Two passkeys made elsewhere (their AAGUIDs name them); the first one used once since.
    const keys = ["fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "ee882879-721c-4913-9775-3dfcce97072a"].map((aaguid) => new SoftwareAuthenticator({ rpId: "localhost", origin, aaguid }));
    for (const key of keys) {
      const options = await client.request("POST", `${AUTH}/passkeys/register/options`);
      expect((await client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential: key.register(options.body) } })).status).toBe(201);
    }
    expect(await listed(client)).toEqual(["iCloud Keychain", "YubiKey 5"]);
    const shots: string[] = [];
    for (const size of ["phone", "desktop"] as const)
      for (const scheme of ["light", "dark"] as const) {
        const viewport = size === "phone" ? { width: 390, height: 844 } : { width: 1280, height: 800 };
        // bypassCSP only so that axe-core can be injected (the pages' CSP is tested above and in browser.test.ts).
        const { context, page } = await withAuthenticator({ autofill: false, context: { viewport, colorScheme: scheme, bypassCSP: true } });
        /** Screenshot, then pages-walk's promises: no serious axe-core violation, no horizontal scroll, no word broken. */
        const shot = async (page: Page, name: string) => {
          const taken = `${name}-${size}-${scheme}`;
          await screenshot(page, taken);
          shots.push(taken);
          expect({ page: taken, problems: await layoutProblems(page), violations: await axeViolations(page) }).toEqual({ page: taken, problems: [], violations: [] });
        };
        try {
          await page.goto(`${origin}/login`);
          await page.locator("#passkey-button").waitFor({ state: "visible" });
          await shot(page, "passkey-sign-in");
          // The password, then the second step her passkeys make owed, answered by the iCloud Keychain one (the
          // software key, outside the browser) through the page's own passkey form.
          await passwordSignIn(page, "grandma", `${origin}/login`);
          await page.locator("#passkey-button").waitFor({ state: "visible" });
          await shot(page, "passkey-second-step");
          const challengeId = await page.inputValue("#passkey-form input[name=challenge_id]");
          const options = await client.request("POST", `${AUTH}/login/verify/options`, { json: { challenge_id: challengeId } });
          expect(options.status).toBe(200);
          await page.locator("#passkey-form input[name=credential]").evaluate((field, json) => ((field as unknown as { value: string }).value = json), JSON.stringify(keys[0]!.assert(options.body)));
          await Promise.all([page.waitForURL(`${origin}/account`), page.locator("#passkey-form").evaluate((form) => (form as unknown as { submit(): void }).submit())]);
          await shot(page, "account-with-passkeys");
          // The README shows the section alone.
          mkdirSync(SCREENSHOTS, { recursive: true });
          await page.locator("#passkeys").screenshot({ path: join(SCREENSHOTS, `passkeys-account-${size}-${scheme}.png`) });
          shots.push(`passkeys-account-${size}-${scheme}`);
          await page.goto(`${origin}/account/passkeys/add`);
          await page.locator("#passkey-button").waitFor({ state: "visible" });
          await shot(page, "passkey-add");
          // The rename form and the deletion's confirmation (looked at, not in the README).
          await page.goto(`${origin}/account`);
          await Promise.all([page.waitForURL(/\/rename$/), page.click('#passkeys a[aria-label="Rename YubiKey 5"]')]);
          await shot(page, "passkey-rename");
          await page.goto(`${origin}/account`);
          await Promise.all([page.waitForURL(/\/delete$/), page.click('#passkeys a[aria-label="Delete YubiKey 5"]')]);
          await shot(page, "passkey-delete");
          // And the confirmation before signing another device out (the software key's sign-in is one).
          await page.goto(`${origin}/account`);
          await Promise.all([page.waitForURL(/\/account\/devices\//), page.locator("#devices a:text-is('Sign out…')").first().click()]);
          await shot(page, "device-sign-out");
        } finally {
          await context.close();
        }
      }
    const docs = resolve(import.meta.dir, "../../docs/screenshots");
    mkdirSync(docs, { recursive: true });
    for (const [shot, file] of Object.entries(README_SHOTS)) {
      expect(shots).toContain(shot);
      copyFileSync(join(SCREENSHOTS, `${shot}.png`), join(docs, file));
    }
  });
});
