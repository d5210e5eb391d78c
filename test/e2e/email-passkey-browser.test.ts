/**
 * A passwordless account changes its email address in a real browser: Debian's Chromium (playwright-core) with the
 * DevTools virtual authenticator, against the binary and the suite's SMTP server. The account page links to
 * /account/email, which asks a passkey sign-in older than 5 minutes to go through the passkey step first (its script
 * runs the ceremony) and back, where the address is sent (no password asked) and then confirmed with the mailed code.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Page } from "playwright-core";
import { registerPasskeyInBrowser, SCREENSHOTS, screenshot, sharedChromium, withVirtualAuthenticator } from "../support/browser";
import { AUTH, Client } from "../support/client";
import { layoutProblems } from "../support/page-checks";
import { minus, openTestDatabase } from "../support/database";
import { removeDataDir, startOnLocalhost, type RunningServer } from "../support/server";
import { codeIn, mailCatcherForFile, smtpEnv } from "../support/smtp";

const PASSWORD = "a long passphrase";
const chromiumForFile = sharedChromium();
const smtp = mailCatcherForFile();

let server: RunningServer;
/** localhost: a secure context over http, and a valid RP ID. */
let origin: string;
/** The same server by address, for the API calls of the test itself. */
let api: string;

beforeAll(async () => {
  await chromiumForFile.launch();
  ({ server, origin, api } = await startOnLocalhost({ ...smtpEnv(smtp.catcher, smtp.certificate), ALLOW_REGISTRATION: "true", RATE_LIMIT_IP_BURST: "1000" }));
});
afterAll(async () => {
  await chromiumForFile.close();
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

/** Registers `username`, adds a passkey on this browser's authenticator, and removes the password. */
async function passwordlessAccount(page: Page, username: string) {
  const client = new Client(api, "bearer", { origin });
  expect((await client.register(username, PASSWORD, `${username}@example.test`)).status).toBe(201);
  expect((await registerPasskeyInBrowser(page, client, origin)).status).toBe(201);
  expect((await client.request("DELETE", `${AUTH}/password`, { json: { current_password: PASSWORD } })).status).toBe(200);
}

/** Every session of `username` signed in 6 minutes earlier than it was. */
async function ageSessions(username: string) {
  const db = await openTestDatabase(server.dataDir, { writable: true });
  try {
    await db.run(`UPDATE sessions SET auth_time = ${minus("auth_time", 6 * 60_000)} WHERE user_id = (SELECT id FROM users WHERE username = ?)`, username);
  } finally {
    await db.close();
  }
}

describe("a passwordless account changes its address in Chromium", () => {
  test("an older passkey sign-in confirms the passkey on the step page first, comes back to /account/email, sends without a password, and confirms the code", async () => {
    const { context, page, errors } = await withVirtualAuthenticator(chromiumForFile.get(), { autofill: false });
    try {
      await passwordlessAccount(page, "dora");
      await page.goto(`${origin}/login`);
      const signIn = page.locator("#passkey-button");
      await signIn.waitFor({ state: "visible" });
      await Promise.all([page.waitForURL(`${origin}/account`), signIn.click()]);

      await ageSessions("dora");
      await Promise.all([page.waitForURL(`${origin}/account/email`), page.click("a:has-text('Change email address')")]);
      // Asked for the passkey before any address is typed: nothing typed is lost on the way through the step.
      expect(await page.locator("#new_email").count()).toBe(0);
      await screenshot(page, "account-email-change-confirm-first");
      expect(await layoutProblems(page)).toEqual([]);
      // The same page on a phone, dark: this state is not in the pages walk (its account has a password).
      await page.setViewportSize({ width: 390, height: 844 });
      await page.emulateMedia({ colorScheme: "dark" });
      await screenshot(page, "account-email-change-confirm-first-phone-dark");
      expect(await layoutProblems(page)).toEqual([]);
      await page.setViewportSize({ width: 1280, height: 720 });
      await page.emulateMedia({ colorScheme: "light" });
      await Promise.all([page.waitForURL((url) => url.pathname === "/login/passkey-step"), page.click("a:has-text('Confirm with your passkey')")]);
      expect(new URL(page.url()).searchParams.get("rd")).toBe("/account/email");
      const confirm = page.locator("#passkey-button");
      await confirm.waitFor({ state: "visible" });
      await Promise.all([page.waitForURL(`${origin}/account/email`), confirm.click()]);

      expect(await page.textContent("main")).toContain("You confirmed with your passkey: type the new address and send it within 5 minutes.");
      expect(await page.locator("#email_password").count()).toBe(0);
      await screenshot(page, "account-email-change-passkey");
      // The README shows this page (Passwordless accounts).
      const docs = resolve(import.meta.dir, "../../docs/screenshots");
      mkdirSync(docs, { recursive: true });
      copyFileSync(join(SCREENSHOTS, "account-email-change-passkey.png"), join(docs, "email-change-passkey.png"));
      expect(await layoutProblems(page)).toEqual([]);
      await page.fill("#new_email", "dora@new.example.test");
      await Promise.all([page.waitForURL(`${origin}/account/email/confirm`), page.click("button:has-text('Send a code to the new address')")]);
      const mail = await smtp.catcher.waitForMail((m) => m.to === "dora@new.example.test" && m.subject.includes("confirm your new email"));
      await page.fill("#code", codeIn(mail));
      await Promise.all([page.waitForURL(`${origin}/account#profile`), page.click("button:has-text('Confirm')")]);
      expect(await page.textContent("#profile")).toContain("Your email address is now dora@new.example.test.");
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
