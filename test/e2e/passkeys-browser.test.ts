/**
 * Passkeys in a real browser: Debian's Chromium (playwright-core) with the DevTools virtual authenticator
 * (WebAuthn.addVirtualAuthenticator: a CTAP2 platform authenticator with resident keys), against the binary.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { BrowserContext, CDPSession, Page } from "playwright-core";
import { screenshot, sharedChromium } from "../support/browser";
import { AUTH, Client } from "../support/client";
import { freePort, removeDataDir, startServer, type RunningServer } from "../support/server";

const PASSWORD = "a long passphrase";
const chromiumForFile = sharedChromium();

describe("passkeys in Chromium with a virtual authenticator", () => {
  let server: RunningServer;
  let origin: string;
  let api: string;
  beforeAll(async () => {
    await chromiumForFile.launch();
    const port = freePort();
    // localhost is a secure context over http, and a valid RP ID.
    origin = `http://localhost:${port}`;
    api = `http://127.0.0.1:${port}`;
    server = await startServer({ PORT: String(port), PUBLIC_URL: origin, ALLOW_REGISTRATION: "true", RATE_LIMIT_IP_BURST: "1000" });
  });
  afterAll(async () => {
    await chromiumForFile.close();
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  /** A context with a virtual platform authenticator that verifies its user (as a fingerprint or PIN would). */
  async function withAuthenticator(): Promise<{ context: BrowserContext; page: Page; cdp: CDPSession; errors: string[] }> {
    const context = await chromiumForFile.get().newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    // The browser's own request for /favicon.ico (a 404) is not the page's doing.
    page.on("console", (message) => message.type() === "error" && !message.location().url.endsWith("/favicon.ico") && errors.push(message.text()));
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable", { enableUI: false });
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    return { context, page, cdp, errors };
  }

  /** A real registration ceremony in the page (navigator.credentials.create), through the API of a signed-in client. */
  async function registerInBrowser(page: Page, client: Client) {
    const options = await client.request("POST", `${AUTH}/passkeys/register/options`);
    expect(options.status).toBe(200);
    // A page without the sign-in script (whose autofill request would take the new passkey at once).
    await page.goto(`${origin}/health`);
    const credential = await page.evaluate(async (json) => {
      // In the page (the test is type-checked without the DOM library).
      const page = globalThis as any;
      const made = await page.navigator.credentials.create({ publicKey: page.PublicKeyCredential.parseCreationOptionsFromJSON(json) });
      return made.toJSON();
    }, options.body);
    return client.request("POST", `${AUTH}/passkeys/register/verify`, { json: { credential } });
  }

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
    const { context, page, errors } = await withAuthenticator();
    try {
      expect((await registerInBrowser(page, client)).status).toBe(201);
      await page.addInitScript({ content: "PublicKeyCredential.isConditionalMediationAvailable = async () => false;" });
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
});
