/**
 * The account's passkey pages in-process (app.handle), with the software authenticator of test/support/passkeys.ts:
 * adding one through the page routes (options behind the page form's token, the answer posted as a form), the
 * default name from the AAGUID, renaming, deleting after the confirmation page, and the second-step page's
 * passkey. Malformed answers posted to the page routes get a page that says so, never a 500. The real ceremonies
 * in Chromium are in test/e2e/passkeys-browser.test.ts.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { auditEvents, passkeys, users } from "../../src/db/schema";
import { createPasswordHasher } from "../../src/lib/passwords";
import { deriveSecrets } from "../../src/secrets";
import { eq } from "drizzle-orm";
import { describeEvent } from "../../src/modules/pages/audit";
import { inProcessBrowser, postForms, type InProcessBrowser } from "../support/in-process";
import { SoftwareAuthenticator } from "../support/passkeys";

const ORIGIN = "https://auth.example.com";
const PASSWORD = "correct horse battery staple";
const ICLOUD = "fbfc3007-154e-4ecc-8c0b-6e020557d7bd";
const adaKey = new SoftwareAuthenticator({ rpId: "auth.example.com", origin: ORIGIN, aaguid: ICLOUD });

const config = loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", PUBLIC_URL: ORIGIN });
const db = openDatabase(":memory:");
migrate(db);
const app = createApp(config, db, deriveSecrets("p".repeat(32)));

beforeAll(async () => {
  const hash = await createPasswordHasher(config.passwordHash).hash(PASSWORD);
  for (const name of ["ada", "bea", "cyd"]) db.insert(users).values({ id: `u-${name}`, username: name, email: null, emailVerified: false, passwordHash: hash, roles: [] }).run();
});

/** The form of `html` that posts to `action`. */
function formOf(html: string, action: string) {
  const form = postForms(html).find((candidate) => candidate.action === action);
  if (!form) throw new Error(`no form for ${action}`);
  return form;
}

/** Each user's browser, signed in once (with a passkey, a password sign-in owes a second step). */
const browsers = new Map<string, InProcessBrowser>();

async function signedIn(login: string): Promise<InProcessBrowser> {
  if (browsers.has(login)) return browsers.get(login)!;
  const browser = inProcessBrowser(app, ORIGIN);
  browsers.set(login, browser);
  const page = await browser.get("/login");
  const signIn = await browser.post("/login", { ...formOf(page.html, "/login").fields, login, password: PASSWORD });
  expect(signIn.status).toBe(303);
  return browser;
}

/** The add page's two forms: the options (JSON) and the answer. */
async function addPasskey(browser: InProcessBrowser, authenticator: SoftwareAuthenticator) {
  const page = await browser.get("/account/passkeys/add");
  expect(page.status).toBe(200);
  const options = await browser.post("/account/passkeys/add/options", formOf(page.html, "/account/passkeys/add/options").fields);
  expect(options.status).toBe(200);
  const credential = authenticator.register((await options.json()) as { challenge: string; user: { id: string } });
  return browser.post("/account/passkeys/add", { ...formOf(page.html, "/account/passkeys/add").fields, credential: JSON.stringify(credential) });
}

const rowsOf = (userId: string) => db.select().from(passkeys).where(eq(passkeys.userId, userId)).all();
const messageOn = async (browser: InProcessBrowser, path: string) => /class="message (?:notice|error)"[^>]*>([^<]*)</.exec((await browser.get(path)).html)?.[1];

describe("adding a passkey on the account's pages", () => {
  test("options, then the answer: the passkey is stored under the AAGUID's name, the account page lists it and says so", async () => {
    const ada = await signedIn("ada");
    const added = await addPasskey(ada, adaKey);
    expect({ status: added.status, location: added.headers.get("location") }).toEqual({ status: 303, location: "/account#passkeys" });
    expect(rowsOf("u-ada").map((row) => row.name)).toEqual(["iCloud Keychain"]);
    const account = await ada.get("/account");
    expect(account.html).toContain("Passkey added. It is called “iCloud Keychain”: rename it if you like.");
    expect(account.html).toMatch(/<section id="passkeys"[\s\S]*iCloud Keychain[\s\S]*<\/section>/);
    // A passkey is already the second step after a password: the two-step section says so (not "Off").
    expect(account.html).toContain('<span class="badge ok">On</span> After your password, sign-in asks for one of your passkeys.');
  });

  test("the add page allows its one script by its hash, and says without it that it needs JavaScript; the account page allows none", async () => {
    const ada = await signedIn("ada");
    const add = await ada.get("/account/passkeys/add");
    expect(add.headers.get("content-security-policy")).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'; connect-src 'self'$/);
    expect(add.html).toContain('<script src="/passkey.js" integrity="sha256-');
    expect(add.html).toContain("Adding a passkey needs JavaScript, which is off in this browser.");
    expect((await ada.get("/account")).headers.get("content-security-policy")).not.toContain("script-src");
  });

  test("an answer that is not a WebAuthn credential gets the add page's plain sentence, not a 500, and stores nothing", async () => {
    const bea = await signedIn("bea");
    const page = await bea.get("/account/passkeys/add");
    for (const credential of ["", "not json", "{}", "[]", '{"id":"a","rawId":"a","type":"public-key","clientExtensionResults":{},"response":{}}']) {
      const posted = await bea.post("/account/passkeys/add", { ...formOf(page.html, "/account/passkeys/add").fields, credential });
      expect({ credential, status: posted.status, location: posted.headers.get("location") }).toEqual({ credential, status: 303, location: "/account/passkeys/add" });
      expect(await messageOn(bea, "/account/passkeys/add")).toBe("The passkey could not be added. Try again.");
    }
    expect(rowsOf("u-bea")).toEqual([]);
  });

  test("the same options answered twice: the second is refused in a person's words", async () => {
    const bea = await signedIn("bea");
    const page = await bea.get("/account/passkeys/add");
    const options = await bea.post("/account/passkeys/add/options", formOf(page.html, "/account/passkeys/add/options").fields);
    const json = (await options.json()) as { challenge: string; user: { id: string } };
    const first = new SoftwareAuthenticator({ rpId: "auth.example.com", origin: ORIGIN }).register(json);
    const second = new SoftwareAuthenticator({ rpId: "auth.example.com", origin: ORIGIN }).register(json);
    const fields = formOf(page.html, "/account/passkeys/add").fields;
    expect((await bea.post("/account/passkeys/add", { ...fields, credential: JSON.stringify(first) })).headers.get("location")).toBe("/account#passkeys");
    expect((await bea.post("/account/passkeys/add", { ...fields, credential: JSON.stringify(second) })).headers.get("location")).toBe("/account/passkeys/add");
    expect(await messageOn(bea, "/account/passkeys/add")).toBe("That took too long, or the page was sent twice. Try again.");
    expect(rowsOf("u-bea").map((row) => row.name)).toEqual(["Passkey"]);
  });
});

describe("renaming and deleting", () => {
  test("rename: the small form on the passkey's page; the new name is listed and audited", async () => {
    const cyd = await signedIn("cyd");
    expect((await addPasskey(cyd, new SoftwareAuthenticator({ rpId: "auth.example.com", origin: ORIGIN }))).status).toBe(303);
    const [row] = rowsOf("u-cyd");
    const account = await cyd.get("/account");
    expect(account.html).toContain(`href="/account/passkeys/${row!.id}/rename"`);
    const page = await cyd.get(`/account/passkeys/${row!.id}/rename`);
    const renamed = await cyd.post("/account/passkeys/rename", { ...formOf(page.html, "/account/passkeys/rename").fields, name: "  Cyd's laptop  " });
    expect(renamed.headers.get("location")).toBe("/account#passkeys");
    expect(rowsOf("u-cyd").map((passkey) => passkey.name)).toEqual(["Cyd's laptop"]);
    expect(await messageOn(cyd, "/account")).toBe("The passkey is now called “Cyd&#x27;s laptop”.");
    // An empty name: back to the form, which says why; nothing changed.
    const empty = await cyd.post("/account/passkeys/rename", { ...formOf(page.html, "/account/passkeys/rename").fields, name: "   " });
    expect(empty.headers.get("location")).toBe(`/account/passkeys/${row!.id}/rename`);
    expect(await messageOn(cyd, `/account/passkeys/${row!.id}/rename`)).toBe("Give the passkey a name of 1 to 64 characters.");
    expect(rowsOf("u-cyd").map((passkey) => passkey.name)).toEqual(["Cyd's laptop"]);
  });

  test("delete: the account page links a confirmation naming the passkey; its form deletes it; another user's id is not found", async () => {
    const cyd = await signedIn("cyd");
    const [row] = rowsOf("u-cyd");
    expect((await cyd.get("/account")).html).toContain(`href="/account/passkeys/${row!.id}/delete"`);
    const confirmation = await cyd.get(`/account/passkeys/${row!.id}/delete`);
    expect(confirmation.html).toContain("Delete this passkey?");
    expect(confirmation.html).toContain("Cyd&#x27;s laptop");
    // Another account's page for it: not found, and nothing to post.
    const ada = await signedIn("ada");
    expect((await ada.get(`/account/passkeys/${row!.id}/delete`)).status).toBe(404);
    const deleted = await cyd.post("/account/passkeys/delete", formOf(confirmation.html, "/account/passkeys/delete").fields);
    expect(deleted.headers.get("location")).toBe("/account#passkeys");
    expect(rowsOf("u-cyd")).toEqual([]);
    expect(await messageOn(cyd, "/account")).toBe("The passkey is deleted: it no longer signs you in.");
    expect((await cyd.get("/account")).html).toContain('<span class="badge off">Off</span>');
    // The audit log's sentences (the admin's audit page) name the passkey.
    const said = db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.userId, "u-cyd"))
      .all()
      .filter((entry) => entry.event.startsWith("passkey_"))
      .map((entry) => describeEvent(entry.event, "cyd", entry.detail as Record<string, unknown>));
    expect(said).toEqual(["cyd added the passkey “Passkey”", "cyd renamed a passkey to “Cyd's laptop”", "cyd deleted a passkey"]);
  });
});

describe("the second step after a password", () => {
  test("an account with a passkey: the page offers \"Use a passkey\" with the script's hash; the passkey's answer completes the sign-in", async () => {
    const browser = inProcessBrowser(app, ORIGIN);
    const login = await browser.get("/login");
    const step = await browser.post("/login", { ...formOf(login.html, "/login").fields, login: "ada", password: PASSWORD });
    expect(step.status).toBe(200);
    expect(step.headers.get("content-security-policy")).toContain("script-src 'sha256-");
    const html = await step.text();
    expect(html).toContain("Use your passkey to finish signing in.");
    expect(html).toContain('id="passkey-button" hidden>Use a passkey</button>');
    // Without JavaScript it says why nothing else is offered (ada has no code to type).
    expect(html).toContain("Signing in with a passkey needs JavaScript");
    const form = formOf(html, "/login/verify");
    const options = await app.handle(
      new Request(`${ORIGIN}/api/v1/auth/login/verify/options`, { method: "POST", headers: { "content-type": "application/json", origin: ORIGIN }, body: JSON.stringify({ challenge_id: form.fields.challenge_id }) }),
    );
    expect(options.status).toBe(200);
    const credential = adaKey.assert((await options.json()) as { challenge: string });
    const done = await browser.post("/login/verify", { ...form.fields, credential: JSON.stringify(credential) });
    expect({ status: done.status, location: done.headers.get("location") }).toEqual({ status: 303, location: "/account" });
    expect((await browser.get("/account")).status).toBe(200);
  });

  test("a refused passkey (spent options) is said on the second-step page, which offers the passkey again", async () => {
    const browser = inProcessBrowser(app, ORIGIN);
    const login = await browser.get("/login");
    const step = await browser.post("/login", { ...formOf(login.html, "/login").fields, login: "ada", password: PASSWORD });
    const form = formOf(await step.text(), "/login/verify");
    const credential = adaKey.assert({ challenge: Buffer.from("never handed out").toString("base64url") });
    const refused = await browser.post("/login/verify", { ...form.fields, credential: JSON.stringify(credential) });
    expect(refused.status).toBe(401);
    const html = await refused.text();
    expect(html).toContain("The passkey request expired. Try again.");
    expect(html).toContain('id="passkey-button"');
    const malformed = await browser.post("/login/verify", { ...form.fields, credential: "{}" });
    expect(malformed.status).toBe(400);
    expect(await malformed.text()).toContain("Your passkey could not be used. Try again.");
  });
});

describe("malformed passkey answers on the sign-in pages", () => {
  test("POST /login/passkey: a credential of the wrong shape is the sign-in page's sentence, not a 500", async () => {
    const browser = inProcessBrowser(app, ORIGIN);
    const page = await browser.get("/login");
    for (const credential of ["{}", "[]", '{"id":"a","rawId":"a","type":"public-key","clientExtensionResults":{},"response":{}}']) {
      const posted = await browser.post("/login/passkey", { ...formOf(page.html, "/login/passkey").fields, credential });
      expect({ credential, status: posted.status }).toEqual({ credential, status: 400 });
      expect(await posted.text()).toContain("Your passkey could not be used. Try again, or sign in with your password.");
    }
  });
});
