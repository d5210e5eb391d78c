/**
 * Debian's Chromium, driven by playwright-core (which never downloads a browser), one per test file. The browser
 * tests fail without it, they do not skip: `make test` installs the chromium package when run as root, and
 * CHROMIUM_PATH points at another build.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type Browser, type BrowserContextOptions, type Page } from "playwright-core";
import { AUTH, type Client } from "./client";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Headless, and quiet: without the background-networking flags it keeps calling Google's hosts, refused here. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * A browser for one file: `launch()` in beforeAll, `close()` in afterAll, and `get()` in each test, which fails
 * saying why when there is no browser. Playwright gives it a fresh temporary profile; each context is a fresh jar.
 */
export function sharedChromium(extraArgs: string[] = []) {
  let browser: Browser | undefined;
  let problem: string | undefined;
  return {
    async launch(): Promise<void> {
      if (!existsSync(CHROMIUM)) {
        problem = `Chromium is not installed at ${CHROMIUM}: apt-get install chromium (make test does it as root), or set CHROMIUM_PATH.`;
        return;
      }
      try {
        browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs], timeout: 30_000 });
      } catch (error) {
        problem = `Chromium at ${CHROMIUM} did not start: ${(error as Error).message}`;
      }
    },
    get(): Browser {
      if (!browser) throw new Error(problem ?? "Chromium was not launched");
      return browser;
    },
    async close(): Promise<void> {
      await browser?.close();
    },
  };
}

/** Where the browser suites leave a screenshot of each page they reach (the README's are copies of these). */
export const SCREENSHOTS = resolve(import.meta.dir, "../../.test-results/screenshots");

/** A full-page screenshot of `page` as .test-results/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/**
 * A new context of `browser` with a DevTools virtual platform authenticator (CTAP2, resident keys) that verifies
 * its user, as a fingerprint or PIN would, and the page's errors collected (the browser's own request for
 * /favicon.ico, a 404, is not the page's doing). `autofill: false`: the browser offers no conditional mediation,
 * so a sign-in page's passkey button is what runs the ceremony. `context`: the context's options (a viewport, a
 * colour scheme).
 */
export async function withVirtualAuthenticator(browser: Browser, { autofill = true, context: contextOptions = {} }: { autofill?: boolean; context?: BrowserContextOptions } = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("console", (message) => message.type() === "error" && !message.location().url.endsWith("/favicon.ico") && errors.push(message.text()));
  if (!autofill) await page.addInitScript({ content: "PublicKeyCredential.isConditionalMediationAvailable = async () => false;" });
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { context, page, cdp, errors, authenticatorId };
}

/**
 * A real registration ceremony in `page` (navigator.credentials.create on the page's authenticator) for the
 * signed-in `client`, at `origin`; answers the API's reply to the credential.
 */
export async function registerPasskeyInBrowser(page: Page, client: Client, origin: string) {
  const options = await client.request("POST", `${AUTH}/passkeys/register/options`);
  if (options.status !== 200) throw new Error(`passkey options: ${options.status} ${JSON.stringify(options.body)}`);
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
