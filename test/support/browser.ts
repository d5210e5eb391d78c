/**
 * Debian's Chromium, driven by playwright-core (which never downloads a browser), one per test file. The browser
 * tests fail without it, they do not skip: `make test` installs the chromium package when run as root, and
 * CHROMIUM_PATH points at another build.
 */
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

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
