/**
 * Every page in Debian's Chromium (playwright-core, never a browser download) against the compiled binary, at a
 * phone's size (390×844) and a desktop's (1280×800), light and dark: each page gets a screenshot, axe-core's
 * accessibility rules (no serious or critical violation), and a layout check (no word of a table cell broken
 * across lines, no horizontal scroll). Then the flows a family trips over, end to end in the browser: a typo
 * while setting up an authenticator, the mailed code typed on its page, the enrolment a role requires.
 *
 * The README's screenshots are copied from this run into docs/screenshots/ (README_SHOTS below).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateHOTP } from "@oslojs/otp";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { SCREENSHOTS, screenshot, sharedChromium } from "../support/browser";
import { axeViolations, layoutProblems } from "../support/page-checks";
import { freePort, removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";
import { mailCatcherForFile, smtpEnv } from "../support/smtp";

const PASSWORD = "correct horse battery staple";
const HOSTS = new Set(["auth.home.test", "app.home.test"]);
const chromiumForFile = sharedChromium(["--host-resolver-rules=MAP *.home.test 127.0.0.1"]);
const mail = mailCatcherForFile();
const DOCS = resolve(import.meta.dir, "../../docs/screenshots");
/** Walk screenshots that the README shows: `<walk name>` → `docs/screenshots/<file>`. */
const README_SHOTS: Record<string, string> = {
  "login-desktop-light": "sign-in.png",
  "account-desktop-light": "account.png",
  "account-phone-light": "account-phone.png",
  "account-phone-dark": "account-phone-dark.png",
  "admin-users-desktop-light": "admin.png",
  "admin-user-desktop-light": "admin-user.png",
  "admin-confirm-delete-phone-light": "confirm-delete.png",
  "admin-audit-desktop-dark": "audit.png",
  "account-totp-desktop-light": "totp-setup.png",
  "recovery-codes-phone-light": "recovery-codes.png",
  "enrolment-phone-dark": "second-step.png",
  "forbidden-desktop-light": "forbidden.png",
  "reset-link-desktop-light": "reset-password.png",
};

let server: RunningServer;
let origin: string;

beforeAll(async () => {
  await chromiumForFile.launch();
  const dataDir = tempDataDir();
  const users: [string, string, string][] = [
    ["root", "admin", "root@example.com"],
    ["alice", "family", "alice@example.com"],
    ["sam", "secure", "sam@example.com"],
    ["bob", "family", "bob@example.com"],
    ["emily-with-a-rather-long-name", "family,media,photos", "emily.with.a.rather.long.address@example.com"],
  ];
  for (const [name, roles, email] of users) {
    expect((await runCli(["user", "add", name, "--email", email], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
    expect((await runCli(["user", "roles", name, roles], { DATA_DIR: dataDir })).code).toBe(0);
  }
  const port = freePort();
  origin = `http://auth.home.test:${port}`;
  server = await startServer(
    {
      PORT: String(port),
      PUBLIC_URL: origin,
      MFA_REQUIRED_ROLES: "secure",
      RATE_LIMIT_IP: "10000/1m",
      RATE_LIMIT_IP_BURST: "10000",
      ...smtpEnv(mail.catcher, mail.certificate),
    },
    dataDir,
  );
});

afterAll(async () => {
  await chromiumForFile.close();
  await server?.stop();
  if (server) removeDataDir(server.dataDir);
});

const VARIANTS = [
  { size: "phone", viewport: { width: 390, height: 844 }, scheme: "light" },
  { size: "phone", viewport: { width: 390, height: 844 }, scheme: "dark" },
  { size: "desktop", viewport: { width: 1280, height: 800 }, scheme: "light" },
  { size: "desktop", viewport: { width: 1280, height: 800 }, scheme: "dark" },
] as const;
type Variant = (typeof VARIANTS)[number];

const outside: string[] = [];

/**
 * A fresh browser profile for one variant. bypassCSP only so that axe-core can be injected as a script (the
 * pages' CSP allows none); the CSP itself is tested in browser.test.ts.
 */
async function newContext(variant: Variant, userAgent?: string, javaScriptEnabled = true): Promise<BrowserContext> {
  const browser: Browser = chromiumForFile.get();
  const context = await browser.newContext({ viewport: variant.viewport, colorScheme: variant.scheme, bypassCSP: true, javaScriptEnabled, userAgent });
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (HOSTS.has(url.hostname) || url.protocol === "data:") return route.continue();
    outside.push(url.href);
    return route.abort("blockedbyclient");
  });
  return context;
}

async function signIn(page: Page, username: string, password = PASSWORD) {
  await page.goto(`${origin}/login`);
  await page.fill("#login", username);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
}


const walked: string[] = [];

/** Screenshot, accessibility and layout of the page now shown, as `name` in this variant. */
async function check(page: Page, variant: Variant, name: string) {
  const shot = `${name}-${variant.size}-${variant.scheme}`;
  await screenshot(page, shot);
  walked.push(shot);
  expect({ page: shot, problems: await layoutProblems(page) }).toEqual({ page: shot, problems: [] });
  expect({ page: shot, violations: await axeViolations(page) }).toEqual({ page: shot, violations: [] });
}

const totpNow = (secret: string, offset = 0) => generateHOTP(decodeBase32IgnorePadding(secret), BigInt(Math.floor(Date.now() / 30_000) + offset), 6);

/** Waits out the last seconds of a TOTP step, so that a code typed now is still current when it arrives. */
async function freshStep() {
  while (30_000 - (Date.now() % 30_000) < 4000) await Bun.sleep(100);
}

describe("every page, phone and desktop, light and dark", () => {
  let aliceId: string;
  let inviteLink: string;
  let revokeHref: string;

  beforeAll(async () => {
    // Something in every table: another device of root's, an API key, an application, a failed sign-in.
    const variant = VARIANTS[2];
    const phone = await newContext(variant, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1");
    const page = await phone.newPage();
    await signIn(page, "root");
    await page.waitForURL(`${origin}/account#profile`.replace("#profile", ""));
    await page.click("summary:has-text('API keys')");
    await page.fill("#key_name", "nas backup script");
    await page.click("button:text-is('Create key')");
    await page.waitForSelector("#new-key");
    await page.goto(`${origin}/admin/applications`);
    await page.fill("#client_id", "photos");
    await page.fill("#redirect_uris", "https://photos.home.test/oauth/callback https://photos.home.test/very/long/path/that/goes/on/and/on/callback");
    await page.click("button:text-is('Register')");
    await page.waitForSelector("#client-secret");
    // An invitation (mailed: its page shows the pinned address), to list and to open.
    await page.goto(`${origin}/admin/invitations`);
    await page.fill("#invite_email", "grandma.with.a.long.address@example.com");
    await page.fill("#invite_roles", "family, photos");
    await page.fill("#invite_uses", "3");
    await page.click("button:text-is('Create invitation link')");
    inviteLink = (await page.textContent("#invitation-link"))!.trim();
    revokeHref = (await page.getAttribute("a:text-is('Revoke…')", "href"))!;
    await page.goto(`${origin}/admin?q=alice`);
    aliceId = new URL(await page.getAttribute("a:has-text('alice')", "href").then((href) => `${origin}${href}`)).pathname.split("/").pop()!;
    await phone.close();
    const stranger = await newContext(variant);
    await signIn(await stranger.newPage(), "alice", "wrong password");
    await stranger.close();
  });

  for (const variant of VARIANTS) {
    test(`${variant.size}, ${variant.scheme}`, async () => {
      // Signed out.
      const anonymous = await newContext(variant);
      let page = await anonymous.newPage();
      await page.goto(`${origin}/login`);
      await check(page, variant, "login");
      await page.goto(`${origin}/login?rd=${encodeURIComponent("http://app.home.test/photos/2024")}`);
      expect(await page.textContent("main")).toContain("Sign in to continue to app.home.test");
      await page.fill("#login", "alice");
      await page.fill("#password", "not the password");
      await page.click("button[type=submit]");
      await page.waitForSelector("[role=alert]");
      // The cursor waits in the password field, and rd is kept.
      expect(await page.evaluate("document.activeElement.id")).toBe("password");
      expect(await page.inputValue("input[name=rd]")).toBe("http://app.home.test/photos/2024");
      await check(page, variant, "login-wrong-password");
      await page.goto(`${origin}/password/forgot`);
      await check(page, variant, "forgot-password");
      await page.goto(`${origin}/password/reset/code`);
      await check(page, variant, "reset-code");
      await page.goto(`${origin}/verify-email`);
      await check(page, variant, "verify-email");
      // The mailed reset link's form (it shows for any token; the token is checked when the form is posted).
      await page.goto(`${origin}/api/v1/auth/password/reset?token=from-the-mail`);
      await check(page, variant, "reset-link");
      // An invitation's sign-up page, a dead link's page, and /signup while registration is closed.
      await page.goto(inviteLink);
      expect(await page.inputValue("#email")).toBe("grandma.with.a.long.address@example.com");
      await check(page, variant, "invite");
      expect((await page.goto(`${origin}/invite/no-such-token`))!.status()).toBe(404);
      await check(page, variant, "invite-unknown");
      expect((await page.goto(`${origin}/signup`))!.status()).toBe(404);
      await check(page, variant, "signup-closed");
      await page.goto(`${origin}/no/such/page`);
      expect(await page.textContent("h1")).toBe("Page not found");
      await check(page, variant, "not-found");
      // MFA_REQUIRED_ROLES: sam sets up an authenticator before the sign-in completes, and sees the QR code.
      await signIn(page, "sam");
      await page.waitForSelector("text=One more step");
      expect(await page.isVisible(".qr img")).toBe(true);
      await check(page, variant, "enrolment");
      await anonymous.close();

      // Alice, not an admin, on an admin page: who she is, and how to switch.
      const alice = await newContext(variant);
      page = await alice.newPage();
      await signIn(page, "alice");
      await page.waitForURL(/\/account/);
      const forbidden = await page.goto(`${origin}/admin`);
      expect(forbidden!.status()).toBe(403);
      expect(await page.textContent("main")).toContain("Signed in as alice.");
      await check(page, variant, "forbidden");
      await page.click("text=Switch account");
      await check(page, variant, "switch-account");
      await alice.close();

      // Root: the account page and its states, the admin pages.
      const root = await newContext(variant);
      page = await root.newPage();
      await signIn(page, "root");
      await page.waitForURL(/\/account/);
      await check(page, variant, "account");
      await page.click("text=Set up an authenticator app");
      await page.waitForSelector(".qr img");
      await page.click("summary:has-text(\"Can't scan?\")");
      await page.fill("#totp_code", "000000");
      await page.click("button:text-is('Turn on')");
      await page.waitForSelector("#two-step [role=alert]");
      await check(page, variant, "account-totp");
      await page.click("#two-step button:has-text('Cancel')");
      await page.waitForSelector("text=Set-up cancelled");
      await page.goto(`${origin}/account/email/verify`);
      await check(page, variant, "account-email-verify");
      await page.goto(`${origin}/account/email`);
      await check(page, variant, "account-email-change");
      await page.goto(`${origin}/admin`);
      await check(page, variant, "admin-users");
      await page.goto(`${origin}/admin/users/new`);
      await check(page, variant, "admin-new-user");
      await page.goto(`${origin}/admin/users/${aliceId}`);
      await check(page, variant, "admin-user");
      for (const confirm of ["delete", "disable", "password", "second-factors"]) {
        await page.goto(`${origin}/admin/users/${aliceId}/${confirm}`);
        expect(await page.textContent("h1")).toContain("alice");
        if (confirm === "delete" || confirm === "disable") await check(page, variant, `admin-confirm-${confirm}`);
      }
      await page.goto(`${origin}/admin/audit`);
      await check(page, variant, "admin-audit");
      await page.goto(`${origin}/admin/applications`);
      await check(page, variant, "admin-applications");
      await page.goto(`${origin}/admin/invitations`);
      await check(page, variant, "admin-invitations");
      await page.goto(`${origin}${revokeHref}`);
      expect(await page.textContent("main .facts")).toContain("grandma.with.a.long.address@example.com");
      await check(page, variant, "admin-confirm-revoke-invitation");
      await page.click("nav button:text-is('Sign out')");
      await page.waitForSelector("text=You are signed out.");
      await check(page, variant, "signed-out");
      await root.close();

      // Bob: recovery codes on their page of their own (his authenticator is set up in the phone, light run).
      const bob = await newContext(variant);
      page = await bob.newPage();
      await signIn(page, "bob");
      if (page.url().endsWith("/account") || page.url().includes("/account#")) {
        await page.click("text=Set up an authenticator app");
        const secret = (await page.textContent("#totp-secret"))!.replace(/\s/g, "");
        await freshStep();
        await page.fill("#totp_code", totpNow(secret));
        await page.click("button:text-is('Turn on')");
        await page.waitForURL(`${origin}/account/recovery-codes`);
        bobSecret = secret;
      } else {
        await page.waitForSelector("text=One more step");
        await page.fill("#recovery_code", bobCodes.pop()!);
        await page.click("button[type=submit]");
        await page.waitForURL(/\/account/);
        await page.click("text=Make new recovery codes");
        await page.waitForURL(`${origin}/account/recovery-codes`);
      }
      bobCodes = await page.$$eval("#recovery-codes li", (items) => items.map((item) => item.textContent ?? ""));
      expect(bobCodes).toHaveLength(10);
      await check(page, variant, "recovery-codes");
      await bob.close();
    }, 120_000);
  }

  let bobSecret: string | undefined;
  let bobCodes: string[] = [];

  test("MFA_REQUIRED_ROLES: the sign-in's enrolment shows the QR code; a typo keeps the same key; the scanned key then signs in", async () => {
    const context = await newContext(VARIANTS[0]);
    const page = await context.newPage();
    await signIn(page, "sam");
    await page.waitForSelector("text=One more step");
    const secret = (await page.textContent("#totp-secret"))!.replace(/\s/g, "");
    const qr = await page.getAttribute(".qr img", "src");
    expect(qr).toStartWith("data:image/svg+xml;base64,");
    await page.fill("#code", totpNow(secret) === "123456" ? "654321" : "123456");
    await page.click("button:text-is('Continue')");
    await page.waitForSelector("[role=alert]");
    expect(await page.textContent("[role=alert]")).toBe("That code is wrong or was already used.");
    expect((await page.textContent("#totp-secret"))!.replace(/\s/g, "")).toBe(secret);
    expect(await page.getAttribute(".qr img", "src")).toBe(qr);
    await freshStep();
    await page.fill("#code", totpNow(secret));
    await page.click("button:text-is('Continue')");
    await page.waitForSelector("#recovery-codes");
    expect(await page.$$eval("#recovery-codes li", (items) => items.length)).toBe(10);
    await page.click("text=I have saved them");
    await page.waitForURL(/\/account/);
    expect(await page.textContent("#two-step")).toContain("10 of 10 recovery codes left.");
    await context.close();
  });

  test("with JavaScript off: an admin adds a user, opens their page, and deletes them through the confirmation page; the key under Can't scan? opens without script", async () => {
    const context = await newContext(VARIANTS[2], undefined, false);
    const page = await context.newPage();
    await signIn(page, "root");
    await page.waitForURL(/\/account/);
    await page.goto(`${origin}/admin`);
    await page.click("text=Add a user");
    await page.fill("#new_username", "zoe");
    await page.fill("#new_password", PASSWORD);
    await page.click("button:text-is('Add the user')");
    await page.waitForSelector("text=zoe is added.");
    await page.click("text=Delete…");
    expect(await page.textContent("h1")).toBe("Delete zoe?");
    await page.click("button:text-is('Delete zoe')");
    await page.waitForURL(`${origin}/admin`);
    expect(await page.textContent("[role=status]")).toBe("zoe is deleted.");
    // The "Can't scan?" key opens without script (<details>).
    await page.goto(`${origin}/account`);
    await page.click("text=Set up an authenticator app");
    expect(await page.isVisible("#totp-secret")).toBe(false);
    await page.click("summary:has-text(\"Can't scan?\")");
    expect(await page.isVisible("#totp-secret")).toBe(true);
    await page.click("#two-step button:has-text('Cancel')");
    await page.waitForSelector("text=Set-up cancelled");
    await context.close();
  });

  test("the README's screenshots are this run's", () => {
    mkdirSync(DOCS, { recursive: true });
    for (const [shot, file] of Object.entries(README_SHOTS)) {
      expect(walked).toContain(shot);
      copyFileSync(join(SCREENSHOTS, `${shot}.png`), join(DOCS, file));
    }
    expect(bobSecret).toBeString();
    expect(outside).toEqual([]);
  });
});
