/**
 * The passkey step-up page in-process (app.handle): its per-address limit, since each page stores new options.
 * The ceremony itself is covered over HTTP (test/e2e/passkey-policy.test.ts) and in Chromium (-browser.test.ts).
 */
import { expect, test } from "bun:test";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { passkeys, users } from "../../src/db/schema";
import { createPasswordHasher } from "../../src/lib/passwords";
import { deriveSecrets } from "../../src/secrets";
import { inProcessBrowser, postForms } from "../support/in-process";

const ORIGIN = "https://auth.example.com";
const PASSWORD = "correct horse battery staple";

test("the step page is behind the per-address limit: past it, 429 with the wait in words, and no new options", async () => {
  const config = loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "on", RATE_LIMIT_IP: "3/1h", RATE_LIMIT_IP_BURST: "3", PUBLIC_URL: ORIGIN });
  const db = openDatabase(":memory:");
  migrate(db);
  const app = createApp(config, db, deriveSecrets("k".repeat(32)));
  db.insert(users).values({ id: "u1", username: "alice", passwordHash: await createPasswordHasher(config.passwordHash).hash(PASSWORD) }).run();
  const browser = inProcessBrowser(app, ORIGIN);
  const [form] = postForms((await browser.get("/login")).html);
  // The sign-in is one hit of the address's three.
  expect((await browser.post("/login", { ...form!.fields, login: "alice", password: PASSWORD })).status).toBe(303);
  db.insert(passkeys).values({ id: "pk1", userId: "u1", credentialId: "Y3JlZA", publicKey: "a2V5", transports: ["internal"], aaguid: "00000000-0000-0000-0000-000000000000", name: "Passkey" }).run();
  const options = () => (db.$client.query("SELECT count(*) AS n FROM passkey_challenges").get() as { n: number }).n;

  for (const expected of [1, 2]) {
    const page = await browser.get("/login/passkey-step?rd=%2Faccount");
    expect(page.status).toBe(200);
    expect(page.html).toContain('name="options"');
    expect(options()).toBe(expected);
  }
  const refused = await app.handle(new Request(`${ORIGIN}/login/passkey-step`, { headers: { cookie: "" } }));
  // Not signed in: the sign-in page, without a hit.
  expect(refused.status).toBe(302);
  const limited = await browser.get("/login/passkey-step?rd=%2Faccount");
  expect(limited.status).toBe(429);
  expect(limited.html).toContain("Too many attempts. Try again in ");
  expect(options()).toBe(2);
});
