/**
 * `rd` (where to go after signing in) never sends the browser to a foreign host (issue 23): every route that
 * follows it is driven to the point where it does (the sign-in form, a signed-in GET /login, the second-factor
 * form, the cross-domain handoff's landing) with hostile values, each next to an honest rd that is followed, so
 * that the route is known to reach its redirect. Then every page route of the route table is tried with each
 * hostile rd, signed in and not. In-process (app.handle), two sign-in hosts (example.com and example.net).
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { users } from "../../src/db/schema";
import { createPasswordHasher } from "../../src/lib/passwords";
import { signInHostFor, signInHosts } from "../../src/modules/pages/hosts";
import { deriveSecrets } from "../../src/secrets";
import { inProcessBrowser, postForms, totpCode, type InProcessBrowser } from "../support/in-process";

const COM = "https://auth.example.com";
const NET = "https://auth.example.net";
const PASSWORD = "correct horse battery staple";
const HONEST = "https://wiki.example.net/page?x=1";

const HOSTILE = [
  "https://evil.example/",
  "//evil.example/",
  "/\\evil.example/",
  "\\\\evil.example",
  "https:%2F%2Fevil.example",
  "%2F%2Fevil.example",
  "https://auth.example.com.evil.example/",
  "https://evil.example%23@auth.example.com/",
  "%252F%252Fevil.example",
];

const config = loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", PUBLIC_URL: COM, SIGN_IN_URLS: NET });
const db = openDatabase(":memory:");
migrate(db);
const app = createApp(config, db, deriveSecrets("k".repeat(32)));
const hosts = signInHosts([COM, NET]);

/** A Location, if any, stays on an https host one of the sign-in hosts covers. */
function expectNotForeign(location: string | null, from: string, rd: string) {
  if (location === null) return;
  const url = new URL(location, from);
  expect({ rd, location, foreign: url.protocol !== "https:" || signInHostFor(hosts, url.hostname) === undefined }).toEqual({ rd, location, foreign: false });
}

const browser = (origin = COM) => inProcessBrowser(app, origin);

async function signInForm(who: InProcessBrowser, username: string, rd: string) {
  const page = await who.get(`/login?handoff=none&rd=${encodeURIComponent(rd)}`);
  expect(page.status).toBe(200);
  const form = postForms(page.html).find((candidate) => candidate.action === "/login")!;
  return who.post("/login", { ...form.fields, login: username, password: PASSWORD, rd });
}

const recoveryCodes: string[] = [];

beforeAll(async () => {
  const hash = await createPasswordHasher(config.passwordHash).hash(PASSWORD);
  db.insert(users).values({ id: "u-plain", username: "plain", passwordHash: hash, roles: [] }).run();
  db.insert(users).values({ id: "u-second", username: "second", passwordHash: hash, roles: [] }).run();
  // "second" turns on an authenticator through the account page; its recovery codes answer the second step below.
  const owner = browser();
  expect((await signInForm(owner, "second", "/account")).status).toBe(303);
  const account = await owner.get("/account");
  const start = postForms(account.html).find((form) => form.action === "/account/mfa/totp")!;
  // POST/redirect/GET: the set-up shows on the account page, the recovery codes on their own page.
  expect((await owner.post(start.action, start.fields)).status).toBe(303);
  const enrolment = (await owner.get("/account")).html;
  const secret = /id="totp-secret" aria-label="Setup key: ([A-Z2-7 ]+)"/.exec(enrolment)![1]!.replaceAll(" ", "");
  const confirm = postForms(enrolment).find((form) => form.action === "/account/mfa/totp/confirm")!;
  const answer = await owner.post(confirm.action, { ...confirm.fields, code: totpCode(secret) });
  expect(answer.headers.get("location")).toBe("/account/recovery-codes");
  const confirmed = (await owner.get("/account/recovery-codes")).html;
  recoveryCodes.push(...[...confirmed.matchAll(/<li>([a-z0-9-]{8,})<\/li>/g)].map((match) => match[1]!));
  expect(recoveryCodes.length).toBeGreaterThanOrEqual(HOSTILE.length + 1);
}, 60_000);

describe("each route that follows rd follows an honest one and never a hostile one", () => {
  test("POST /login", async () => {
    expect((await signInForm(browser(), "plain", HONEST)).headers.get("location")).toBe(HONEST);
    for (const rd of HOSTILE) {
      const response = await signInForm(browser(), "plain", rd);
      expect(response.status).toBe(303);
      expectNotForeign(response.headers.get("location"), COM, rd);
    }
  });

  test("GET /login, signed in", async () => {
    const signedIn = browser();
    expect((await signInForm(signedIn, "plain", "/account")).status).toBe(303);
    expect((await signedIn.get(`/login?rd=${encodeURIComponent(HONEST)}`)).location).toBe(HONEST);
    for (const rd of HOSTILE) {
      const page = await signedIn.get(`/login?rd=${encodeURIComponent(rd)}`);
      expect(page.status).toBe(302);
      expectNotForeign(page.location, COM, rd);
    }
  });

  test("POST /login/verify (a recovery code)", async () => {
    for (const rd of [HONEST, ...HOSTILE]) {
      const who = browser();
      const step = await signInForm(who, "second", rd);
      expect(step.status).toBe(200);
      const form = postForms(await step.text()).find((candidate) => candidate.action === "/login/verify")!;
      const response = await who.post(form.action, { ...form.fields, code: "", recovery_code: recoveryCodes.pop()!, rd });
      expect(response.status).toBe(303);
      if (rd === HONEST) expect(response.headers.get("location")).toBe(HONEST);
      else expectNotForeign(response.headers.get("location"), COM, rd);
    }
  });

  test("GET /handoff/accept (the cross-domain handoff's landing)", async () => {
    const com = browser(COM);
    expect((await signInForm(com, "plain", "/account")).status).toBe(303);
    /** The landing URL of a live handoff from example.com to example.net, with `rd` in it. */
    async function landing(net: InProcessBrowser, rd: string): Promise<string> {
      const ask = await net.get(`/login?rd=${encodeURIComponent(HONEST)}`);
      expect(ask.location).toStartWith(`${COM}/handoff/start?`);
      const start = await com.get(ask.location!);
      expect(start.location).toStartWith(`${NET}/handoff/accept?`);
      const url = new URL(start.location!);
      url.searchParams.set("rd", rd);
      return url.href;
    }
    for (const rd of [HONEST, ...HOSTILE]) {
      const net = browser(NET);
      const landed = await net.get(await landing(net, rd));
      expect(landed.status).toBe(302);
      if (rd === HONEST) expect(landed.location).toBe(HONEST);
      else expectNotForeign(landed.location, NET, rd);
    }
  });
});

test("no page route of the route table redirects to a hostile rd, signed in or not", async () => {
  const signedIn = browser();
  expect((await signInForm(signedIn, "plain", "/account")).status).toBe(303);
  const routes = app.routes.filter((route) => (route.hooks as { detail?: { hide?: boolean } }).detail?.hide === true && !route.path.includes(":"));
  expect(routes.length).toBeGreaterThan(20);
  for (const who of [signedIn, browser()])
    for (const route of routes)
      for (const rd of HOSTILE) {
        const path = `${route.path}?rd=${encodeURIComponent(rd)}`;
        const response = route.method === "GET" ? (await who.get(path)).location : (await who.post(path, { rd })).headers.get("location");
        expectNotForeign(response, COM, rd);
      }
});
