/**
 * The compiled binary in a real browser: Debian's Chromium driven by playwright-core (never a browser download).
 * `make test` installs the `chromium` package when it is missing and it runs as root; without Chromium these
 * tests fail, they do not skip. CHROMIUM_PATH points at another build.
 *
 * Nothing leaves the loopback interface: every request to another host is aborted and recorded, and Chromium's
 * own background traffic is switched off.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { screenshot, sharedChromium } from "../support/browser";
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateHOTP } from "@oslojs/otp";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, startServer, tempDataDir, type RunningServer, type SpawnedServer } from "../support/server";
import { linkIn, makeCertificate, removeCertificate, smtpEnv, startMailCatcher, type MailCatcher, type TestCertificate } from "../support/smtp";
import { openTestDatabase } from "../support/database";

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost"]);
/** A summary of the login route, as the docs UI shows it. */
const LOGIN_SUMMARY = "Sign in with a username or email and a password";

const chromiumForFile = sharedChromium();
beforeAll(() => chromiumForFile.launch());
afterAll(() => chromiumForFile.close());

/** The shared browser, or a failure that says why there is none: these tests never pass without a browser. */
const theBrowser = (): Browser => chromiumForFile.get();

interface Recorded {
  context: BrowserContext;
  /** URLs of requests to any other host, aborted. */
  outside: string[];
}

/** A fresh context whose requests to hosts other than loopback are aborted and recorded. */
async function recordedContext(options: Parameters<Browser["newContext"]>[0] = {}): Promise<Recorded> {
  const context = await theBrowser().newContext(options);
  const outside: string[] = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (LOOPBACK_HOSTS.has(url.hostname)) return route.continue();
    outside.push(url.href);
    return route.abort("blockedbyclient");
  });
  return { context, outside };
}

/** What a page reports: console lines, uncaught errors, every request it made, CSP violations it saw. */
async function watch(page: Page) {
  const seen = { console: [] as string[], errors: [] as string[], requests: [] as string[] };
  page.on("console", (message) => seen.console.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => seen.errors.push(String(error)));
  page.on("request", (request) => seen.requests.push(request.url()));
  // Injected by the browser's debugging protocol, not as an inline script: the page's CSP does not apply to it.
  await page.addInitScript({
    content:
      "window.__cspViolations = [];" +
      "document.addEventListener('securitypolicyviolation', (e) =>" +
      " window.__cspViolations.push({ directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile }));",
  });
  return {
    ...seen,
    /**
     * Violations other than one known probe: Scalar's bundled zod tries `new Function("")` once, inside a
     * try/catch, to learn whether it may compile validators, and falls back when the CSP says no. That probe is
     * the CSP working (the page keeps 'unsafe-eval' out); anything else is a resource the page could not load.
     */
    cspViolations: async () =>
      ((await page.evaluate("window.__cspViolations")) as { directive: string; blocked: string; source: string }[])
        .filter((v) => !(v.directive === "script-src" && v.blocked === "eval" && v.source.endsWith("/docs/scalar.js")))
        .map((v) => `${v.directive} ${v.blocked} (${v.source})`),
  };
}

describe("the API docs page in Chromium", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ RATE_LIMIT: "off" });
  });
  afterAll(async () => {
    await server.stop();
    removeDataDir(server.dataDir);
  });

  test("/docs renders the API reference from the binary alone: no request leaves 127.0.0.1, no CSP violation", async () => {
    const { context, outside } = await recordedContext();
    try {
      const page = await context.newPage();
      const seen = await watch(page);
      const response = await page.goto(`${server.url}/docs`);
      expect(response?.status()).toBe(200);
      // The reference itself, not only its sidebar: the document's title, then the login operation, opened from
      // the sidebar, with its summary as a heading and its error codes in the responses.
      await page.getByRole("heading", { name: "Latchkey", level: 1 }).waitFor({ state: "visible", timeout: 20_000 });
      await page.getByText(LOGIN_SUMMARY, { exact: true }).first().click();
      await page.getByRole("heading", { name: LOGIN_SUMMARY }).waitFor({ state: "visible", timeout: 10_000 });
      await page.getByText("invalid_credentials").first().waitFor({ state: "visible", timeout: 10_000 });
      // Scrolled into view (the sidebar click scrolls smoothly), for a screenshot a person can check.
      await page.waitForFunction(
        (summary) => {
          const heading = [...(globalThis as any).document.querySelectorAll("h1, h2, h3")].find((element: any) => element.textContent.trim() === summary);
          const box = heading?.getBoundingClientRect();
          return box !== undefined && box.top >= 0 && box.bottom <= (globalThis as any).innerHeight;
        },
        LOGIN_SUMMARY,
        { timeout: 10_000 },
      );
      await page.screenshot({ path: join(tmpdir(), "latchkey-docs.png") });

      expect(outside).toEqual([]);
      const offLoopback = seen.requests.filter((url) => {
        const { protocol, hostname } = new URL(url);
        return !(protocol === "data:" || protocol === "blob:" || hostname === "127.0.0.1");
      });
      expect(offLoopback).toEqual([]);
      expect(seen.requests).toContain(`${server.url}/docs/json`);
      expect(await seen.cspViolations()).toEqual([]);
      expect(seen.console.filter((line) => /content security policy|refused to/i.test(line))).toEqual([]);
      // Not even a 404 (the page declares its favicon inline rather than letting the browser ask for /favicon.ico).
      expect(seen.console.filter((line) => line.startsWith("error:"))).toEqual([]);
      expect(seen.errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test("/docs/ and /docs?query render it too (same CSP, absolute spec URL)", async () => {
    const { context, outside } = await recordedContext();
    try {
      for (const path of ["/docs/", "/docs?utm=1"]) {
        const page = await context.newPage();
        const seen = await watch(page);
        expect((await page.goto(`${server.url}${path}`))?.status()).toBe(200);
        await page.getByText(LOGIN_SUMMARY, { exact: true }).first().waitFor({ state: "visible", timeout: 20_000 });
        expect({ path, spec: seen.requests.includes(`${server.url}/docs/json`) }).toEqual({ path, spec: true });
        expect({ path, violations: await seen.cspViolations() }).toEqual({ path, violations: [] });
        await page.close();
      }
      expect(outside).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

describe("the docs over HTTP from the binary", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ RATE_LIMIT: "off", ALLOW_REGISTRATION: "true" });
  });
  afterAll(async () => {
    await server.stop();
    removeDataDir(server.dataDir);
  });

  test("/docs, /docs/ and /docs?x=1 are the page with the docs CSP; /docs/json keeps the JSON CSP", async () => {
    for (const path of ["/docs", "/docs/", "/docs?x=1"]) {
      const response = await fetch(`${server.url}${path}`, { redirect: "manual" });
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
      expect(response.headers.get("content-type")).toContain("text/html");
      expect({ path, csp: response.headers.get("content-security-policy") }).toEqual({ path, csp: expect.stringContaining("script-src 'self'") });
      const html = await response.text();
      expect(html).toContain('src="/docs/scalar.js"');
      expect(html).toContain("&quot;url&quot;:&quot;/docs/json&quot;");
    }
    const spec = await fetch(`${server.url}/docs/json`);
    expect(spec.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
  });

  test("the docs page does not name the framework", async () => {
    const html = await (await fetch(`${server.url}/docs`)).text();
    expect(html).not.toContain("_integration");
    expect(html.toLowerCase()).not.toContain("elysia");
  });

  test("the compiled binary refuses a numeric string for expires_in (422), as the source does", async () => {
    const registered = await fetch(`${server.url}/api/v1/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "docreader", password: "correct horse battery staple" }),
    });
    const { access_token } = (await registered.json()) as { access_token: string };
    for (const expires_in of ["3600", "1e3", "0x100"]) {
      const reply = await fetch(`${server.url}/api/v1/auth/keys`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${access_token}` },
        body: JSON.stringify({ name: `k-${expires_in}`, expires_in }),
      });
      expect({ expires_in, status: reply.status, error: ((await reply.json()) as { error: string }).error }).toEqual({
        expires_in,
        status: 422,
        error: "validation_failed",
      });
    }
  });
});

describe("cookie mode in Chromium", () => {
  let server: SpawnedServer;
  let dataDir: string;
  let origin: string;
  let foreign: ReturnType<typeof Bun.serve>;
  const PASSWORD = "correct horse battery staple";

  beforeAll(async () => {
    const port = freePort();
    origin = `http://127.0.0.1:${port}`;
    dataDir = tempDataDir();
    server = await spawnServer([BINARY, "serve"], {
      env: {
        PATH: process.env.PATH ?? "",
        HOST: "127.0.0.1",
        PORT: String(port),
        DATA_DIR: dataDir,
        TOKEN_DELIVERY: "cookie",
        PUBLIC_URL: origin,
        ALLOW_REGISTRATION: "true",
        RATE_LIMIT: "off",
      },
    });
    // Another site's page, on another loopback port.
    foreign = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response("<!doctype html><title>elsewhere</title><p>Another site.</p>", { headers: { "content-type": "text/html" } }),
    });
  });
  afterAll(async () => {
    foreign?.stop(true);
    await server?.stop();
    if (dataDir) removeDataDir(dataDir);
  });

  /** fetch() from inside the page, with the browser's cookies; answers the status and the body (when readable). */
  const pageFetch = (page: Page, url: string, method: string, body?: unknown) =>
    page.evaluate(
      async ({ url, method, body }) => {
        try {
          const response = await fetch(url, {
            method,
            credentials: "include",
            headers: body === undefined ? {} : { "content-type": "application/json" },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          const text = await response.text();
          return { status: response.status, body: text ? JSON.parse(text) : undefined };
        } catch (error) {
          return { status: 0, body: undefined, failed: String(error) };
        }
      },
      { url, method, body },
    );

  const documentCookie = (page: Page) => page.evaluate("document.cookie") as Promise<string>;

  interface SentCookie {
    name: string;
    /** Why the browser did not send it (empty when it did), e.g. SchemefulSameSiteLax. */
    blockedReasons: string[];
  }

  /**
   * POST /logout from `page`, a page of another origin, twice: a credentialed fetch() (CORS forbids the page to
   * read the answer, so the status and the cookies the browser sent are read through the DevTools protocol), then
   * a plain HTML form (the classic CSRF), whose answer becomes the page and can be read.
   */
  async function foreignLogout(page: Page) {
    const logoutUrl = `${origin}/api/v1/auth/logout`;
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    const urls = new Map<string, string>();
    const sent = new Map<string, { headers: Record<string, string>; associatedCookies: { cookie: { name: string }; blockedReasons: string[] }[] }>();
    const statuses = new Map<string, number>();
    cdp.on("Network.requestWillBeSent", (event) => urls.set(event.requestId, event.request.url));
    cdp.on("Network.requestWillBeSentExtraInfo", (event) => sent.set(event.requestId, event as never));
    cdp.on("Network.responseReceivedExtraInfo", (event) => statuses.set(event.requestId, event.statusCode));

    const inPage = await pageFetch(page, logoutUrl, "POST");
    let requestId: string | undefined;
    for (const deadline = Date.now() + 5_000; Date.now() < deadline; await Bun.sleep(20)) {
      requestId = [...urls].find(([id, url]) => url === logoutUrl && statuses.has(id) && sent.has(id))?.[0];
      if (requestId) break;
    }
    if (!requestId) throw new Error("the browser never sent the logout request");
    const extra = sent.get(requestId)!;
    const header = (name: string) => Object.entries(extra.headers).find(([key]) => key.toLowerCase() === name)?.[1];
    const cookies: SentCookie[] = extra.associatedCookies.map(({ cookie, blockedReasons }) => ({ name: cookie.name, blockedReasons }));
    await cdp.detach();

    const navigation = page.waitForResponse((response) => response.url() === logoutUrl, { timeout: 10_000 });
    await page.evaluate(
      `(() => { const form = document.createElement("form"); form.method = "POST"; form.action = ${JSON.stringify(logoutUrl)}; document.body.append(form); form.submit(); })()`,
    );
    const formResponse = await navigation;
    const formBody = (await formResponse.json()) as { error: string };

    return {
      fetch: { readable: inPage.status !== 0, status: statuses.get(requestId)!, origin: header("origin"), cookies },
      form: { status: formResponse.status(), error: formBody.error },
    };
  }

  const accessCookieOf = (cookies: SentCookie[]) => cookies.find((cookie) => cookie.name === "latchkey_access");

  test("register, HttpOnly cookies, /me, refresh rotation, a foreign page cannot log out, logout clears the jar", async () => {
    // The server's own origin has no HTML page that lets a script connect (/health carries the JSON CSP,
    // default-src 'none'), so the test's fetch() calls run with CSP bypassed. Only CSP: cookies, SameSite,
    // Origin and CORS behave as in any browser.
    const { context, outside } = await recordedContext({ bypassCSP: true });
    try {
      const page = await context.newPage();
      expect((await page.goto(`${origin}/health`))?.status()).toBe(200);

      // Register from the server's own origin: tokens only in cookies, never in the body.
      const registered = await pageFetch(page, "/api/v1/auth/register", "POST", { username: "carol", password: PASSWORD, email: "carol@example.com" });
      expect(registered.status).toBe(201);
      expect(Object.keys(registered.body).sort()).toEqual(["expires_in", "message", "user"]);
      expect(await documentCookie(page)).toBe("");
      const jar = async () => Object.fromEntries((await context.cookies(`${origin}/api/v1/auth/`)).map((cookie) => [cookie.name, cookie]));
      const afterRegister = await jar();
      expect(afterRegister.latchkey_access).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/", secure: false });
      expect(afterRegister.latchkey_refresh).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/api/v1/auth", secure: false });

      const me = await pageFetch(page, "/api/v1/auth/me", "GET");
      expect(me.status).toBe(200);
      expect(me.body.user.username).toBe("carol");

      const refreshed = await pageFetch(page, "/api/v1/auth/refresh", "POST", {});
      expect(refreshed.status).toBe(200);
      expect(refreshed.body.user.username).toBe("carol");
      const afterRefresh = await jar();
      expect(afterRefresh.latchkey_refresh!.value).not.toBe(afterRegister.latchkey_refresh!.value);
      expect(afterRefresh.latchkey_access!.value).not.toBe(afterRegister.latchkey_access!.value);
      expect((await pageFetch(page, "/api/v1/auth/me", "GET")).status).toBe(200);

      // Same site, other origin (127.0.0.1 on another port): SameSite=Lax lets the access cookie go, and the
      // Origin check refuses the request.
      const sameSite = await context.newPage();
      await sameSite.goto(`http://127.0.0.1:${foreign.port}/`);
      const fromSameSite = await foreignLogout(sameSite);
      expect(fromSameSite.fetch.origin).toBe(`http://127.0.0.1:${foreign.port}`);
      expect(accessCookieOf(fromSameSite.fetch.cookies)).toEqual({ name: "latchkey_access", blockedReasons: [] });
      expect(fromSameSite.fetch.status).toBe(403);
      // No CORS grant for that origin: the page cannot even read the refusal.
      expect(fromSameSite.fetch.readable).toBe(false);
      expect(fromSameSite.form).toEqual({ status: 403, error: "csrf_rejected" });
      expect((await pageFetch(page, "/api/v1/auth/me", "GET")).status).toBe(200);

      // Another site (http://localhost:P is not http://127.0.0.1:P's site): SameSite=Lax keeps the cookie home,
      // so the server sees no credential at all.
      const crossSite = await context.newPage();
      await crossSite.goto(`http://localhost:${foreign.port}/`);
      const fromCrossSite = await foreignLogout(crossSite);
      expect(fromCrossSite.fetch.origin).toBe(`http://localhost:${foreign.port}`);
      expect(accessCookieOf(fromCrossSite.fetch.cookies)?.blockedReasons).toEqual(expect.arrayContaining([expect.stringMatching(/SameSiteLax/)]));
      expect(fromCrossSite.fetch.status).toBe(401);
      expect(fromCrossSite.fetch.readable).toBe(false);
      expect(fromCrossSite.form).toEqual({ status: 401, error: "unauthorized" });

      // The session survived both.
      expect((await pageFetch(page, "/api/v1/auth/me", "GET")).status).toBe(200);

      // Logout from the right origin clears both cookies from the browser's jar.
      const loggedOut = await pageFetch(page, "/api/v1/auth/logout", "POST");
      expect(loggedOut.status).toBe(200);
      expect(await context.cookies(`${origin}/api/v1/auth/`)).toEqual([]);
      expect(await context.cookies(origin)).toEqual([]);
      expect((await pageFetch(page, "/api/v1/auth/me", "GET")).status).toBe(401);

      // And signing in again works from the same page.
      const login = await pageFetch(page, "/api/v1/auth/login", "POST", { username: "carol@example.com", password: PASSWORD });
      expect(login.status).toBe(200);
      expect((await pageFetch(page, "/api/v1/auth/me", "GET")).body.user.username).toBe("carol");
      expect(await documentCookie(page)).toBe("");

      expect(outside).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

describe("the sign-in pages' mail and second steps in Chromium (issue 13)", () => {
  const PASSWORD = "correct horse battery staple";
  const NEW_PASSWORD = "a brand new passphrase";
  let server: RunningServer;
  let certificate: TestCertificate;
  let catcher: MailCatcher;
  let origin: string;

  beforeAll(async () => {
    certificate = makeCertificate();
    catcher = await startMailCatcher(certificate);
    const port = freePort();
    origin = `http://127.0.0.1:${port}`;
    const dataDir = tempDataDir();
    for (const name of ["forgetful", "careful", "enroller"])
      expect((await runCli(["user", "add", name, "--email", `${name}@example.test`], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
    // The addresses count as verified (a reset is only mailed to a verified one): as an admin would have set it.
    const db = await openTestDatabase(dataDir, { writable: true });
    await db.run("UPDATE users SET email_verified = TRUE");
    await db.close();
    const spawned = await spawnServer([BINARY, "serve"], {
      env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, PUBLIC_URL: origin, RATE_LIMIT: "off", ...smtpEnv(catcher, certificate) },
    });
    server = { ...spawned, url: origin, port, dataDir };
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
    await catcher.stop();
    removeCertificate(certificate);
  });

  test("forgot password: the sign-in page's link, the mailed link's form, then sign-in with the new password; nothing leaves 127.0.0.1", async () => {
    const { context, outside } = await recordedContext();
    try {
      const page = await context.newPage();
      await page.goto(`${origin}/login`);
      await page.click("text=Forgot your password?");
      await page.fill("#email", "forgetful@example.test");
      await page.click("button[type=submit]");
      await page.waitForSelector("text=Check your mail");
      const mail = await catcher.waitForMail((received) => received.to === "forgetful@example.test" && received.subject.includes("reset your password"));
      await page.goto(linkIn(mail, "/api/v1/auth/password/reset"));
      await screenshot(page, "reset-password");
      await page.fill("input[name=new_password]", NEW_PASSWORD);
      await page.click("button[type=submit]");
      await page.waitForSelector("text=Your password is changed");
      await page.goto(`${origin}/login`);
      await page.fill("#login", "forgetful");
      await page.fill("#password", NEW_PASSWORD);
      await page.click("button[type=submit]");
      await page.waitForURL(`${origin}/account`);
      expect(outside).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test("an account with TOTP: the sign-in page asks for the authenticator's code, then signs in", async () => {
    // Enrolment through the API with a bearer session.
    const login: any = await (await fetch(`${origin}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "careful", password: PASSWORD }) })).json();
    const auth = { authorization: `Bearer ${login.access_token}`, "content-type": "application/json" };
    const started: any = await (await fetch(`${origin}/api/v1/auth/mfa/totp`, { method: "POST", headers: auth })).json();
    const key = decodeBase32IgnorePadding(started.secret);
    const codeAt = (offset: number) => generateHOTP(key, BigInt(Math.floor(Date.now() / 30_000) + offset), 6);
    while (30_000 - (Date.now() % 30_000) < 3000) await Bun.sleep(100);
    // The previous step's code confirms, so the current one is still unused for the sign-in below.
    expect((await fetch(`${origin}/api/v1/auth/mfa/totp/confirm`, { method: "POST", headers: auth, body: JSON.stringify({ code: codeAt(-1) }) })).status).toBe(200);

    const { context, outside } = await recordedContext();
    try {
      const page = await context.newPage();
      await page.goto(`${origin}/login`);
      await page.fill("#login", "careful");
      await page.fill("#password", PASSWORD);
      await page.click("button[type=submit]");
      await page.waitForSelector("text=One more step");
      await screenshot(page, "second-step");
      await page.fill("#code", codeAt(0));
      await page.click("button[type=submit]");
      await page.waitForURL(`${origin}/account`);
      expect(outside).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test("the account page sets up an authenticator (QR, a typo that keeps the same key, the first code, recovery codes on their own page); sign-in then takes a recovery code; the page turns it off", async () => {
    const { context, outside } = await recordedContext();
    try {
      const page = await context.newPage();
      const signIn = async () => {
        await page.goto(`${origin}/login`);
        await page.fill("#login", "enroller");
        await page.fill("#password", PASSWORD);
        await page.click("button[type=submit]");
      };
      await signIn();
      await page.waitForURL(`${origin}/account`);
      await page.click("text=Set up an authenticator app");
      const secret = (await page.textContent("#totp-secret"))!.trim();
      expect(await page.isVisible(".qr img")).toBe(true);
      const qr = await page.getAttribute(".qr img", "src");
      await screenshot(page, "totp-setup");
      // A typo: said beside the code field, and the same key and QR code stay (what the phone scanned).
      const key = decodeBase32IgnorePadding(secret);
      const current = () => generateHOTP(key, BigInt(Math.floor(Date.now() / 30_000)), 6);
      await page.fill("#totp_code", current() === "123456" ? "654321" : "123456");
      await page.click("button:text-is('Turn on')");
      await page.waitForSelector("#two-step [role=alert]");
      expect(await page.textContent("#two-step [role=alert]")).toBe("The code is wrong or was already used.");
      expect((await page.textContent("#totp-secret"))!.trim()).toBe(secret);
      expect(await page.getAttribute(".qr img", "src")).toBe(qr);
      // A visit to the page later shows it still.
      await page.goto(`${origin}/account`);
      expect((await page.textContent("#totp-secret"))!.trim()).toBe(secret);
      while (30_000 - (Date.now() % 30_000) < 3000) await Bun.sleep(100);
      await page.fill("#totp_code", current());
      await page.click("button:text-is('Turn on')");
      await page.waitForURL(`${origin}/account/recovery-codes`);
      const codes = await page.$$eval("#recovery-codes li", (items) => items.map((item) => item.textContent ?? ""));
      expect(codes).toHaveLength(10);
      const download = await page.getAttribute("a[download]", "href");
      expect(decodeURIComponent(download!.slice(download!.indexOf(",") + 1))).toContain(codes.join("\n"));
      await page.click("text=I have saved them");
      await page.waitForURL(`${origin}/account#two-step`);
      expect(await page.textContent("#two-step")).toContain("10 of 10 recovery codes left.");
      // Shown once: the page of codes does not show them again.
      await page.goto(`${origin}/account/recovery-codes`);
      expect(page.url()).toBe(`${origin}/account#two-step`);

      await page.click("nav button:text-is('Sign out')");
      await signIn();
      await page.waitForSelector("text=One more step");
      await page.fill("#recovery_code", codes[0]!);
      await page.click("button[type=submit]");
      await page.waitForURL(`${origin}/account`);
      expect(await page.textContent("#two-step")).toContain("9 of 10 recovery codes left.");

      await page.click("summary:text-is('Turn off two-step sign-in')");
      await page.fill("#totp_password", PASSWORD);
      await page.click("text=Turn off the authenticator");
      await page.waitForSelector("text=Two-step sign-in is off");
      await page.click("nav button:text-is('Sign out')");
      await signIn();
      await page.waitForURL(`${origin}/account`);
      expect(outside).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
