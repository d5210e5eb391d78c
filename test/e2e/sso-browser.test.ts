/**
 * Single sign-on in a real browser: Debian's Chromium (playwright-core, never a browser download) against the
 * compiled binary behind Caddy, with two root domains mapped to loopback (--host-resolver-rules): sign in on
 * example.com, reach an app on example.net through the one-time handoff without a password, use the account and
 * admin pages (JavaScript off: they need none), disable a user whose next proxied request is refused, and sign out
 * of everything, in both directions between the domains. Each page is
 * saved as a screenshot in .test-results/screenshots (the README's come from there).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { BrowserContext, Page } from "playwright-core";
import { screenshot, sharedChromium } from "../support/browser";
import { startCaddy, startEcho, type Echo, type Proxy } from "../support/proxies";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";

const PASSWORD = "correct horse battery staple";
/** Every host of this test, all on loopback; a request to any other host is aborted and recorded. */
const HOSTS = new Set(["auth.example.com", "auth.example.net", "photos.example.com", "wiki.example.net"]);

// Two root domains, both on this machine: cookies cannot span them, the handoff must.
const chromiumForFile = sharedChromium(["--host-resolver-rules=MAP *.example.com 127.0.0.1, MAP *.example.net 127.0.0.1"]);
let dataDir: string;
let latchkey: SpawnedServer;
let caddy: Proxy;
let echo: Echo;
let lkPort: number;
let proxyPort: number;
const outside: string[] = [];

const auth = (domain: "com" | "net") => `http://auth.example.${domain}:${lkPort}`;
const app = (host: "photos.example.com" | "wiki.example.net") => `http://${host}:${proxyPort}`;

beforeAll(async () => {
  dataDir = tempDataDir();
  for (const [name, roles] of [["alice", "family"], ["bob", "family"]] as const) {
    expect((await runCli(["user", "add", name, "--email", `${name}@example.com`], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
    expect((await runCli(["user", "roles", name, roles], { DATA_DIR: dataDir })).code).toBe(0);
  }
  expect((await runCli(["user", "add", "root", "--admin"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  lkPort = freePort();
  proxyPort = freePort();
  latchkey = await spawnServer([BINARY, "serve"], {
    env: {
      PATH: process.env.PATH ?? "",
      HOST: "127.0.0.1",
      PORT: String(lkPort),
      DATA_DIR: dataDir,
      PUBLIC_URL: auth("com"),
      SIGN_IN_URLS: auth("net"),
      TRUST_PROXY: "127.0.0.1",
      APP_NAME: "Home Lab",
    },
  });
  echo = startEcho({ html: true });
  const site = (host: string) => `
http://${host}:${proxyPort} {
\tforward_auth 127.0.0.1:${lkPort} {
\t\turi /api/v1/auth/forward
\t\tcopy_headers Remote-User Remote-Groups Remote-Email Remote-Name
\t}
\treverse_proxy ${echo.url.replace("http://", "")}
}`;
  caddy = await startCaddy(() => site("photos.example.com") + site("wiki.example.net"), proxyPort);
  await chromiumForFile.launch();
});

afterAll(async () => {
  await chromiumForFile.close();
  await caddy?.stop();
  echo?.stop();
  await latchkey?.stop();
  removeDataDir(dataDir);
});

/**
 * A fresh browser profile (cookie jar) on a phone-sized or desktop screen, with JavaScript off (the pages need none);
 * requests to other hosts are aborted and recorded.
 */
async function newContext(viewport = { width: 1100, height: 800 }): Promise<BrowserContext> {
  const context = await chromiumForFile.get().newContext({ viewport, javaScriptEnabled: false });
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (HOSTS.has(url.hostname)) return route.continue();
    outside.push(url.href);
    return route.abort("blockedbyclient");
  });
  return context;
}

async function signIn(page: Page, username: string) {
  await page.getByLabel("Username or email").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
}

describe("single sign-on in Chromium", () => {
  let alice: BrowserContext;
  let page: Page;

  test("an app on example.com sends the browser to sign in, then lets it through with Remote-User", async () => {
    alice = await newContext();
    page = await alice.newPage();
    await page.goto(`${app("photos.example.com")}/albums/summer?sort=date`);
    // The other root domain's sign-in host was asked first (it knows no session either), then the form.
    expect(page.url()).toBe(`${auth("com")}/login?handoff=none&rd=${encodeURIComponent(`${app("photos.example.com")}/albums/summer?sort=date`)}`);
    await expect(page.getByRole("heading", { name: "Sign in" }).isVisible()).resolves.toBe(true);
    await screenshot(page, "sign-in");
    await signIn(page, "alice");
    await page.waitForURL(`${app("photos.example.com")}/albums/summer?sort=date`);
    expect(await page.locator("#who").textContent()).toBe("Signed in as alice (family)");
    await screenshot(page, "protected-app");
  });

  test("an app on the other root domain (example.net) signs the browser in through the one-time handoff, no password", async () => {
    const hops: string[] = [];
    page.on("request", (request) => {
      if (request.isNavigationRequest()) hops.push(new URL(request.url()).host + new URL(request.url()).pathname);
    });
    await page.goto(`${app("wiki.example.net")}/pages/home`);
    await page.waitForURL(`${app("wiki.example.net")}/pages/home`);
    expect(await page.locator("#who").textContent()).toBe("Signed in as alice (family)");
    expect(hops).toEqual([
      `wiki.example.net:${proxyPort}/pages/home`,
      `auth.example.net:${lkPort}/login`,
      `auth.example.com:${lkPort}/handoff/start`,
      `auth.example.net:${lkPort}/handoff/accept`,
      `wiki.example.net:${proxyPort}/pages/home`,
    ]);
    const cookies = await alice.cookies();
    const sessionCookies = cookies.filter((cookie) => cookie.name === "latchkey_session").map((cookie) => cookie.domain).sort();
    expect(sessionCookies).toEqual([".example.com", ".example.net"]);
    // The pages' own cookie is host-only on each sign-in host: no app of either domain receives it.
    const pageCookies = cookies.filter((cookie) => cookie.name === "latchkey_session_page").map((cookie) => cookie.domain).sort();
    expect(pageCookies).toEqual(["auth.example.com", "auth.example.net"]);
  });

  test("the other way round too: signed in on example.net first, an example.com app needs no password", async () => {
    const other = await newContext();
    const otherPage = await other.newPage();
    await otherPage.goto(`${app("wiki.example.net")}/start`);
    expect(new URL(otherPage.url()).host).toBe(`auth.example.net:${lkPort}`);
    await signIn(otherPage, "bob");
    await otherPage.waitForURL(`${app("wiki.example.net")}/start`);
    await otherPage.goto(`${app("photos.example.com")}/shared`);
    await otherPage.waitForURL(`${app("photos.example.com")}/shared`);
    expect(await otherPage.locator("#who").textContent()).toBe("Signed in as bob (family)");
    await other.close();
  });

  /**
   * A handoff link for alice's browser, minted with her cookies but not followed, so the code is live and unspent:
   * the first two hops of the handoff (auth.example.net/login, auth.example.com/handoff/start) asked over plain HTTP
   * with the Host each would have. Before, example.net's sessions are forgotten: its domain-wide cookie and
   * auth.example.net's page cookie; the pre-session cookie (latchkey_session_csrf, the browser binding) stays.
   */
  async function heldBackHandoff(path: string): Promise<string> {
    await alice.clearCookies({ name: /^latchkey_session(_page)?$/, domain: /(^|\.)example\.net$/ });
    const hop = async (url: string) => {
      const target = new URL(url);
      const cookie = (await alice.cookies(url)).map((entry) => `${entry.name}=${entry.value}`).join("; ");
      const response = await fetch(`http://127.0.0.1:${lkPort}${target.pathname}${target.search}`, { headers: { host: target.host, cookie }, redirect: "manual" });
      expect(response.headers.getSetCookie()).toEqual([]);
      return response.headers.get("location")!;
    };
    expect((await alice.cookies(auth("net"))).map((entry) => entry.name)).toContain("latchkey_session_csrf");
    const start = await hop(`${auth("net")}/login?rd=${encodeURIComponent(`${app("wiki.example.net")}${path}`)}`);
    expect(start).toStartWith(`${auth("com")}/handoff/start?`);
    const minted = await hop(start);
    expect(minted).toStartWith(`${auth("net")}/handoff/accept?code=`);
    return minted;
  }

  test("a handoff link works once: replayed in the same browser, it leads to the sign-in form, not into the account", async () => {
    const minted = await heldBackHandoff("/once");
    await page.goto(minted);
    await page.waitForURL(`${app("wiki.example.net")}/once`);
    expect(await page.locator("#who").textContent()).toBe("Signed in as alice (family)");
    // The same browser (same binding), signed out of example.net again, replays the spent link.
    await alice.clearCookies({ name: /^latchkey_session(_page)?$/, domain: /(^|\.)example\.net$/ });
    await page.goto(minted);
    expect(new URL(page.url()).pathname).toBe("/login");
    expect(await page.getByRole("heading", { name: "Sign in" }).isVisible()).toBe(true);
  });

  test("a live, unspent handoff link taken to another browser signs that browser in nowhere (bound to the browser)", async () => {
    const minted = await heldBackHandoff("/bound");
    const stranger = await newContext();
    const other = await stranger.newPage();
    // The stranger's browser has a pre-session cookie of its own (it opened the sign-in page): only the binding
    // tells it from alice's.
    await other.goto(`${auth("net")}/login?handoff=none`);
    expect((await stranger.cookies(auth("net"))).map((entry) => entry.name)).toContain("latchkey_session_csrf");
    await other.goto(minted);
    expect(new URL(other.url()).pathname).toBe("/login");
    expect(await other.getByRole("heading", { name: "Sign in" }).isVisible()).toBe(true);
    expect((await stranger.cookies()).filter((cookie) => cookie.name === "latchkey_session")).toEqual([]);
    await stranger.close();
  });

  test("the account page: sessions (sign out another device), a new API key shown once", async () => {
    const phone = await newContext({ width: 390, height: 844 });
    const phonePage = await phone.newPage();
    await phonePage.goto(`${auth("com")}/account`);
    await signIn(phonePage, "alice");
    await phonePage.waitForURL(`${auth("com")}/account`);
    await screenshot(phonePage, "account-phone");

    await page.goto(`${auth("com")}/account`);
    const rows = page.locator("#devices tbody tr");
    expect(await rows.count()).toBeGreaterThanOrEqual(3);
    // The phone's session is the newest one that is not this browser's: the first row with a sign-out button.
    await page.locator("#devices tbody tr a:text-is('Sign out…')").first().click();
    await page.waitForURL(/\/account\/devices\//);
    await page.getByRole("button", { name: "Sign out this device" }).click();
    await page.waitForURL(`${auth("com")}/account#devices`);
    expect(await page.locator("#devices [role=status]").textContent()).toBe("That device is signed out.");
    await phonePage.goto(`${app("photos.example.com")}/`);
    expect(new URL(phonePage.url()).pathname).toBe("/login");
    await phone.close();

    await page.locator("summary", { hasText: "API keys" }).click();
    await page.getByLabel("New key name").fill("photo backup");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = await page.locator("#new-key").textContent();
    expect(secret).toMatch(/^lk_[0-9A-Za-z]{49}$/);
    await screenshot(page, "account");
    const viaKey = await fetch(`http://127.0.0.1:${proxyPort}/`, { headers: { host: `photos.example.com:${proxyPort}`, "x-api-key": secret! } });
    expect(viaKey.status).toBe(200);
  });

  test("the admin page disables a user, whose next proxied request is refused", async () => {
    const bob = await newContext();
    const bobPage = await bob.newPage();
    await bobPage.goto(`${app("photos.example.com")}/`);
    await signIn(bobPage, "bob");
    await bobPage.waitForURL(`${app("photos.example.com")}/`);

    const admin = await newContext();
    const adminPage = await admin.newPage();
    await adminPage.goto(`${auth("com")}/admin`);
    await signIn(adminPage, "root");
    await adminPage.waitForURL(`${auth("com")}/admin`);
    await adminPage.getByLabel("Search by username or email").fill("bob");
    await adminPage.getByRole("button", { name: "Search" }).click();
    await screenshot(adminPage, "admin");
    await adminPage.getByRole("link", { name: "bob", exact: true }).click();
    // Disabling asks first, on a page that names the user.
    await adminPage.getByRole("link", { name: "Disable…" }).click();
    expect(await adminPage.locator("h1").textContent()).toBe("Disable bob?");
    await adminPage.getByRole("button", { name: "Disable bob" }).click();
    expect(await adminPage.getByRole("status").textContent()).toStartWith("bob is disabled");

    const refused = await bobPage.goto(`${app("photos.example.com")}/next`);
    expect(new URL(bobPage.url()).pathname).toBe("/login");
    expect(refused?.status()).toBe(200);
    await signIn(bobPage, "bob");
    expect(await bobPage.getByRole("alert").textContent()).toBe("This account has been disabled.");
    await bob.close();
    await admin.close();
  });

  test("signing out ends the session on both root domains", async () => {
    await page.goto(`${app("wiki.example.net")}/`);
    expect(await page.locator("#who").textContent()).toBe("Signed in as alice (family)");
    await page.goto(`${auth("com")}/account`);
    await page.getByRole("button", { name: "Sign out" }).first().click();
    // Back at the sign-in form, which says so (no handoff: every domain's session ended with this one).
    await page.waitForURL(`${auth("com")}/login?signed_out=1&handoff=none`);
    expect(await page.getByRole("status").textContent()).toBe("You are signed out.");
    await page.goto(`${app("photos.example.com")}/`);
    expect(new URL(page.url()).host).toBe(`auth.example.com:${lkPort}`);
    await page.goto(`${app("wiki.example.net")}/`);
    expect(new URL(page.url()).pathname).toBe("/login");
    expect(outside).toEqual([]);
    await alice.close();
  });
});
