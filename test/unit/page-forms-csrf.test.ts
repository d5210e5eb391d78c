/**
 * Every page form, from the route table (issue 23): each POST route of the page modules is found in
 * `app.routes`, its form found on the pages, and posted as a forged request would be: with no token, with another
 * form's token, with its own token from `Origin: https://evil.example`, and with its own token and
 * `Sec-Fetch-Site: cross-site`. Each answer is 403 and the database is as it was. The forms are collected by
 * following the pages' links from a few start pages (crawl, NOT_FOLLOWED) as four browsers: an admin (account,
 * admin, per-user and confirmation pages, applications, invitations, consent, RP sign-out), one half-way through
 * sign-in, nobody (sign-in, sign-up, the invitation's link, the pages a mail's link opens) and a family member with
 * an unverified address. A new form is covered without anyone listing it: a POST page route that no page shows a
 * form for fails the first test until it is found or listed, with its reason, in NOT_FORMS. In-process
 * (app.handle).
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { oidcClients, oidcConsents, oneTimeCodes, passkeys, users } from "../../src/db/schema";
import { sha256Hex } from "../../src/lib/crypto";
import { createPasswordHasher } from "../../src/lib/passwords";
import { deriveSecrets } from "../../src/secrets";
import { inProcessBrowser, postForms, totpCode, type InProcessBrowser, type PostForm } from "../support/in-process";

const ORIGIN = "https://auth.example.com";
const PASSWORD = "correct horse battery staple";

/** POST routes of the page modules that are not forms of ours, and why a CSRF token makes no sense there. */
const NOT_FORMS: Record<string, string> = {
  // The authorization request itself (OpenID Connect Core §3.1.2.1 allows POST): the relying party's page posts it
  // from its own origin by design; it changes nothing by itself (consent is the form below, /oidc/authorize/consent).
  "/oidc/authorize": "OpenID Connect authorization request, cross-site by design",
};

const config = loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", ALLOW_REGISTRATION: "true", PUBLIC_URL: ORIGIN, MAIL_TRANSPORT: "log", MAIL_FROM: "auth@example.com" });
const db = openDatabase(":memory:");
migrate(db);
const app = createApp(config, db, deriveSecrets("k".repeat(32)));

/** The page modules' POST routes: hidden from the API docs (detail.hide), as every page route is. */
const pagePosts = app.routes
  .filter((route) => route.method === "POST" && (route.hooks as { detail?: { hide?: boolean } }).detail?.hide === true)
  .map((route) => route.path);

function browser() {
  return inProcessBrowser(app, ORIGIN);
}
type Browser = InProcessBrowser;

interface Form extends PostForm {
  browser: Browser;
}

/** Values for the fields a user types, so that a forged post would change something if it got through. */
const TYPED: Record<string, string> = {
  login: "admin",
  password: PASSWORD,
  current_password: PASSWORD,
  new_password: "another long passphrase 42",
  username: "mallory",
  email: "mallory@evil.example",
  roles: "admin",
  metadata: '{"planted":true}',
  name: "forged key",
  expires_in: "2592000",
  client_id: "forged-app",
  redirect_uris: "https://evil.example/cb",
  code: "000000",
  decision: "allow",
};

const formsOf = (html: string, from: Browser): Form[] => postForms(html, TYPED).map((form) => ({ ...form, browser: from }));

/** Every row of every table: what "nothing changed" compares. */
function snapshot(): Record<string, unknown[]> {
  const tables = db.$client.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '__drizzle%'").all() as { name: string }[];
  return Object.fromEntries(tables.map(({ name }) => [name, db.$client.query(`SELECT * FROM "${name}" ORDER BY rowid`).all()]));
}

/** The route a form posts to: its action, or the pattern with parameters (/invite/:token) that matches it. */
const routeOf = (action: string) =>
  pagePosts.find((path) => path === action) ?? pagePosts.find((path) => new RegExp(`^${path.replace(/:[^/]+/g, "[^/]+")}$`).test(action)) ?? action;

/** The form for each route; a form about another user wins over one about the admin's own account (its effect shows). */
const formFor = new Map<string, Form>();
const collect = (forms: Form[]) =>
  forms.forEach((form) => {
    const route = routeOf(form.action);
    if (!formFor.has(route) || formFor.get(route)!.fields.id === "u-admin") formFor.set(route, form);
  });
let inviteLink: string | undefined;
const lostDeviceLinks: string[] = [];

beforeAll(async () => {
  const hasher = createPasswordHasher(config.passwordHash);
  const hash = await hasher.hash(PASSWORD);
  db.insert(users).values({ id: "u-admin", username: "admin", email: "admin@example.com", emailVerified: true, passwordHash: hash, roles: ["admin"] }).run();
  db.insert(users).values({ id: "u-zed", username: "zed", email: "zed@example.com", emailVerified: false, passwordHash: hash, roles: ["family"] }).run();
  db.insert(oidcClients)
    .values({ clientId: "wiki", secretHash: null, redirectUris: ["https://wiki.example.com/cb"], postLogoutRedirectUris: [], allowedRoles: [], trusted: false, public: true })
    .run();
  db.insert(oidcClients)
    .values({ clientId: "photos", secretHash: "0".repeat(64), redirectUris: ["https://photos.example.com/cb"], postLogoutRedirectUris: [], allowedRoles: [], trusted: false, public: false })
    .run();
  db.insert(oidcConsents).values({ userId: "u-admin", clientId: "wiki", scope: "openid" }).run();

  const signIn = async (who: Browser) => {
    const page = await who.get("/login");
    const [form] = formsOf(page.html, who);
    return who.post("/login", { ...form!.fields, login: "admin", password: PASSWORD });
  };
  // Browser A: the admin, signed in; an API key and a second session (browser D) give the rows their forms.
  const admin = browser();
  expect((await signIn(admin)).status).toBe(303);
  const other = browser();
  expect((await signIn(other)).status).toBe(303);
  // A passkey (a row: no ceremony is run here; after the sign-ins: with one, a password sign-in owes it as a second
  // step), so that the account page shows Remove password and links its rename and delete pages, and the passkey
  // step-up page shows its form.
  db.insert(passkeys)
    .values({ id: "pk-admin", userId: "u-admin", credentialId: "cred-admin", publicKey: "AA", signCount: 0, transports: [], backupEligible: false, backupState: false, aaguid: "00000000-0000-0000-0000-000000000000", name: "YubiKey 5" })
    .run();
  const account = await admin.get("/account");
  const keyForm = formsOf(account.html, admin).find((form) => form.action === "/account/keys")!;
  expect((await admin.post("/account/keys", { ...keyForm.fields, name: "a key" })).status).toBe(303);
  // An invitation, so that the invitations page links its revocation's confirmation and shows its link.
  const invitations = await admin.get("/admin/invitations");
  const inviteForm = formsOf(invitations.html, admin).find((form) => form.action === "/admin/invitations")!;
  const invited = await admin.post("/admin/invitations", { ...inviteForm.fields, email: "", roles: "family" });
  expect(invited.status).toBe(303);
  // The new link is shown once, on the page the form leads to.
  const shown = await admin.get(invited.headers.get("location")!.replace(/#.*/, ""));
  inviteLink = /id="invitation-link"[^>]*>\s*https:\/\/auth\.example\.com(\/invite\/[^<\s]+)/.exec(shown.html)?.[1];
  expect(inviteLink).toBeDefined();
  const consentUrl = `/oidc/authorize?${new URLSearchParams({ client_id: "wiki", redirect_uri: "https://wiki.example.com/cb", response_type: "code", scope: "openid profile", state: "s", code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuz-nGSDo7Q", code_challenge_method: "S256", prompt: "consent" })}`;
  await crawl(admin, ["/account", "/admin", "/admin/applications", "/admin/invitations", "/admin/audit", consentUrl, "/oidc/logout"]);
  // The passkey step-up page shows its form to the admin (the passkey row above; the session was made with a password).
  await crawl(admin, ["/login/passkey-step?rd=%2Faccount"]);

  // TOTP: the enrolment page's confirm form, then (enrolled) the recovery-codes and removal forms.
  expect((await admin.post("/account/mfa/totp", formFor.get("/account/mfa/totp")!.fields)).status).toBe(303);
  const [enrolment] = await crawl(admin, ["/account"]);
  const secret = /id="totp-secret" aria-label="Setup key: ([A-Z2-7 ]+)"/.exec(enrolment!)![1]!.replaceAll(" ", "");
  const confirm = formFor.get("/account/mfa/totp/confirm")!;
  const confirmed = await admin.post("/account/mfa/totp/confirm", { ...confirm.fields, code: totpCode(secret) });
  expect({ status: confirmed.status, location: confirmed.headers.get("location") }).toEqual({ status: 303, location: "/account/recovery-codes" });
  await crawl(admin, ["/account/recovery-codes", "/account"]);

  // Browser B: half-way through sign-in (the second-factor form); browser C: nobody signed in.
  const verifying = browser();
  const step = await signIn(verifying);
  expect(step.status).toBe(200);
  collect(formsOf(await step.text(), verifying));
  // Browser C: nobody signed in, from the sign-in page, the invitation's link and the pages a mail's link opens
  // (a mailed code is typed there); browser E: a family member whose address is not verified yet, from the account
  // page and the code pages its forms redirect to (a code to verify the address, or to confirm a new one).
  // Live links of a lost passkey and of a passkey-first account, so that a forged post's "nothing changed" includes
  // not spending them.
  const links = { "/login/link/": "sign_in_link", "/passkey-setup/": "passkey_setup" } as const;
  for (const [path, purpose] of Object.entries(links)) {
    const token = `${purpose}-token-0123456789abcdef`;
    db.insert(oneTimeCodes).values({ id: `otc-${purpose}`, userId: "u-zed", purpose, codeHash: "x", tokenHash: sha256Hex(token), expiresAt: new Date(Date.now() + 3_600_000) }).run();
    lostDeviceLinks.push(`${path}${token}`);
  }
  const anonymous = browser();
  await crawl(anonymous, ["/login", inviteLink!, "/verify-email", "/password/reset/code", ...lostDeviceLinks]);
  const family = browser();
  const familyStep = await family.get("/login");
  expect((await family.post("/login", { ...formsOf(familyStep.html, family)[0]!.fields, login: "zed", password: PASSWORD })).status).toBe(303);
  await crawl(family, ["/account", "/account/email/verify", "/account/email/confirm"]);
}, 60_000);

/**
 * Links a page crawl does not follow, and why: signing out would end the browser's session (and its GET only asks,
 * its form is found on the pages that link it); the handoff GETs mint or spend cross-domain codes (no form of theirs);
 * the API docs, static files and the OIDC authorization link (the consent page is a start page) hold no page form.
 */
const NOT_FOLLOWED = [/^\/logout$/, /^\/handoff\//, /^\/docs/, /^\/branding\//, /^\/api\//, /^\/\.well-known\//, /^\/oidc\/authorize$/];

/**
 * Visits the start pages and every page of this origin they link (breadth first, each URL once), collecting the
 * post forms of each answer; returns the pages' HTML.
 */
async function crawl(who: Browser, starts: string[]): Promise<string[]> {
  const queue = [...starts];
  const seen = new Set<string>(queue);
  const pages: string[] = [];
  while (queue.length > 0 && seen.size < 400) {
    const page = await who.get(queue.shift()!);
    if (page.status !== 200) continue;
    pages.push(page.html);
    collect(formsOf(page.html, who));
    for (const [, href] of page.html.matchAll(/href="([^"]+)"/g)) {
      const url = new URL(unescapeHtml(href!), `${ORIGIN}/`);
      if (url.origin !== ORIGIN || NOT_FOLLOWED.some((pattern) => pattern.test(url.pathname))) continue;
      const next = url.pathname + url.search;
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return pages;
}

const unescapeHtml = (text: string) => text.replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&amp;", "&");

test("the route table's page POST routes are the forms found on the pages, and the listed exceptions", () => {
  expect(pagePosts.length).toBeGreaterThan(20);
  const missing = pagePosts.filter((path) => !formFor.has(path) && !(path in NOT_FORMS));
  expect(missing).toEqual([]);
  // No exception is stale.
  for (const path of Object.keys(NOT_FORMS)) expect(pagePosts).toContain(path);
});

describe("every page form refuses a forged post: 403 and nothing changed", () => {
  const attempts: [string, (form: Form) => { fields: Record<string, string>; headers: Record<string, string> }][] = [
    ["no token", (form) => ({ fields: withoutCsrf(form.fields), headers: { origin: ORIGIN } })],
    ["another form's token", (form) => ({ fields: { ...form.fields, csrf: anotherToken(form) }, headers: { origin: ORIGIN } })],
    ["its own token from Origin: https://evil.example", (form) => ({ fields: form.fields, headers: { origin: "https://evil.example" } })],
    ["its own token with Sec-Fetch-Site: cross-site", (form) => ({ fields: form.fields, headers: { origin: ORIGIN, "sec-fetch-site": "cross-site" } })],
  ];
  for (const path of pagePosts.filter((path) => !(path in NOT_FORMS)))
    for (const [name, forge] of attempts)
      test(`${path}: ${name}`, async () => {
        const form = formFor.get(path)!;
        const before = snapshot();
        const { fields, headers } = forge(form);
        const response = await form.browser.post(form.action, fields, headers);
        expect({ path, status: response.status, location: response.headers.get("location") }).toEqual({ path, status: 403, location: null });
        expect(snapshot()).toEqual(before);
      });
});

function withoutCsrf(fields: Record<string, string>): Record<string, string> {
  const { csrf: _csrf, ...rest } = fields;
  return rest;
}

/** A token of another form, shown to the same browser where it has one. */
function anotherToken(form: Form): string {
  const others = [...formFor.values()].filter((candidate) => candidate.csrf !== form.csrf);
  const other = others.find((candidate) => candidate.browser === form.browser) ?? others[0];
  if (!other) throw new Error(`no other form for ${form.action}`);
  return other.csrf;
}
