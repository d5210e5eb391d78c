/**
 * The account and admin pages through the compiled binary, as a browser without JavaScript uses them: every
 * action is a form POST with its CSRF token, answered by a redirect back (POST/redirect/GET) to the page, where its
 * message waits beside the form it is about, once. Mailed codes go to a real SMTP server (test/support/smtp.ts) and
 * are typed on their pages.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { browserSignIn, cookieJar, csrfOf, type CookieJar } from "../support/pages";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";
import { codeIn, mailCatcherForFile, smtpEnv } from "../support/smtp";

const PASSWORD = "correct horse battery staple";
const mail = mailCatcherForFile();
let dataDir: string;
let server: SpawnedServer;
let lk: string;

beforeAll(async () => {
  dataDir = tempDataDir();
  // Two admins: an admin's own account is protected by the pages themselves, not only by the last-admin rule.
  for (const [name, admin] of [["root", true], ["ops", true], ["alice", false], ["carol", false], ["erin", false], ["frank", false]] as const)
    expect((await runCli(["user", "add", name, "--email", `${name}@example.com`, ...(admin ? ["--admin"] : [])], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  const port = freePort();
  lk = `http://127.0.0.1:${port}`;
  // Many sign-ins from one address: the per-address limit (tested in pages.test.ts) is raised out of the way.
  server = await spawnServer([BINARY, "serve"], {
    env: {
      PATH: process.env.PATH ?? "",
      HOST: "127.0.0.1",
      PORT: String(port),
      DATA_DIR: dataDir,
      PUBLIC_URL: lk,
      RATE_LIMIT_IP: "1000/1m",
      RATE_LIMIT_IP_BURST: "1000",
      ...smtpEnv(mail.catcher, mail.certificate),
    },
  });
});

afterAll(async () => {
  await server?.stop();
  removeDataDir(dataDir);
});

async function signedIn(username: string, password = PASSWORD): Promise<CookieJar> {
  const jar = cookieJar();
  await browserSignIn(`${lk}/login`, username, password, jar);
  return jar;
}

async function page(path: string, jar: CookieJar): Promise<string> {
  const response = await fetch(`${lk}${path}`, { headers: { cookie: jar.header() } });
  expect(response.status).toBe(200);
  jar.take(response);
  return response.text();
}

/** Posts the form at `action` found on the page at `from`, with `fields` (its CSRF token is taken from the page). */
async function submit(jar: CookieJar, from: string, action: string, fields: Record<string, string> = {}, html?: string) {
  const source = html ?? (await page(from, jar));
  return fetch(`${lk}${action}`, {
    method: "POST",
    headers: { cookie: jar.header(), origin: lk, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrf: csrfOf(source, action), ...fields }),
    redirect: "manual",
  });
}

/** A POST with a token of another form (or none): what the page refuses. */
const postWith = (jar: CookieJar, action: string, csrf: string, fields: Record<string, string>) =>
  fetch(`${lk}${action}`, {
    method: "POST",
    headers: { cookie: jar.header(), origin: lk, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrf, ...fields }),
    redirect: "manual",
  });

/** The 303 of a form, and the page it leads to (its message is shown there once). */
async function followed(answer: Response, jar: CookieJar, location: string) {
  expect(answer.status).toBe(303);
  expect(answer.headers.get("location")).toBe(location);
  jar.take(answer);
  return page(location, jar);
}

/** The HTML of the element with this id (up to its section's end): where a message must sit. */
const sectionOf = (html: string, id: string) => {
  const start = html.indexOf(`id="${id}"`);
  expect(start).toBeGreaterThan(-1);
  return html.slice(start, html.indexOf("</section>", start));
};

/** The other devices' session ids, from their "Sign out…" links on the account page. */
const devicesOf = (html: string) => [...html.matchAll(/href="\/account\/devices\/([^"]+)"/g)].map((match) => match[1]!);

const forwardStatus = async (headers: Record<string, string>) => (await fetch(`${lk}/api/v1/auth/forward`, { headers })).status;

describe("account page", () => {
  test("signed out, /account sends to sign-in and back", async () => {
    const response = await fetch(`${lk}/account`, { redirect: "manual" });
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("/login?rd=%2Faccount");
  });

  test("lists devices readably; signs out one after its confirmation page, then all others; each message beside the devices, once", async () => {
    const here = await signedIn("alice");
    const phone = await signedIn("alice");
    const tablet = await signedIn("alice");
    const html = await page("/account", here);
    expect(html).toContain("<strong>This device</strong>");
    const ids = devicesOf(html);
    expect(ids.length).toBeGreaterThanOrEqual(2);
    // Its "Sign out…" asks first, naming the device; nothing is signed out by the page itself.
    const confirmation = await page(`/account/devices/${ids[0]}`, here);
    expect(confirmation).toContain("<h1>Sign out this device?</h1>");
    expect([await forwardStatus({ cookie: phone.header() }), await forwardStatus({ cookie: tablet.header() })]).toEqual([200, 200]);
    // Which id is the phone's: the one whose revocation makes the phone's cookie stop working.
    const after = await followed(await submit(here, `/account/devices/${ids[0]}`, "/account/sessions/revoke", { session_id: ids[0]! }, confirmation), here, "/account#devices");
    expect(sectionOf(after, "devices")).toContain('role="status">That device is signed out.');
    expect(sectionOf(after, "profile")).not.toContain("That device");
    const alive = [await forwardStatus({ cookie: phone.header() }), await forwardStatus({ cookie: tablet.header() })];
    expect(alive.sort()).toEqual([200, 401]);
    // A reload shows the page without the message, and posts nothing.
    expect(await page("/account", here)).not.toContain("That device is signed out.");

    await followed(await submit(here, "/account", "/account/sessions/revoke-others"), here, "/account#devices");
    expect(await forwardStatus({ cookie: phone.header() })).toBe(401);
    expect(await forwardStatus({ cookie: tablet.header() })).toBe(401);
    expect(await forwardStatus({ cookie: here.header() })).toBe(200);
  });

  test("another user's session id is not found (said beside the devices), and nothing of theirs ends", async () => {
    const carol = await signedIn("carol");
    const carolIds = devicesOf(await page("/account", carol));
    const other = await signedIn("carol");
    const otherId = devicesOf(await page("/account", other)).find((id) => !carolIds.includes(id));
    const alice = await signedIn("alice");
    await signedIn("alice");
    // A page with the sign-out form for alice: another device of hers (her own has no link).
    const aliceDevice = devicesOf(await page("/account", alice))[0]!;
    // Her confirmation page for carol's session is no page (back to her devices); its form, posted anyway, finds nothing.
    expect((await fetch(`${lk}/account/devices/${otherId}`, { headers: { cookie: alice.header() }, redirect: "manual" })).headers.get("location")).toBe("/account#devices");
    const after = await followed(await submit(alice, `/account/devices/${aliceDevice}`, "/account/sessions/revoke", { session_id: otherId ?? "x" }), alice, "/account#devices");
    expect(sectionOf(after, "devices")).toContain('role="alert">No such session.');
    expect(await forwardStatus({ cookie: other.header() })).toBe(200);
  });

  test("creates an API key shown once (a reload does not show it), lists it, and deletes it: the key stops working", async () => {
    const jar = await signedIn("alice");
    const created = await submit(jar, "/account", "/account/keys", { name: "nas <backup>", expires_in: "" });
    const html = await followed(created, jar, "/account#keys");
    const secret = /<p class="secret" id="new-key">(lk_[0-9A-Za-z]{49})<\/p>/.exec(html)?.[1];
    expect(secret).toBeDefined();
    expect(sectionOf(html, "keys")).toContain("Copy the key &quot;nas &lt;backup&gt;&quot; now");
    expect(created.headers.get("location")).not.toContain(secret!);
    expect(await forwardStatus({ "x-api-key": secret! })).toBe(200);
    const listing = await page("/account", jar);
    expect(listing).not.toContain(secret!);
    expect(listing).toContain(`lk_${secret!.slice(3, 11)}…`);
    const keyId = /name="key_id" value="([^"]+)"/.exec(listing)![1]!;
    // A token of another form (key-create) does not work on this one.
    expect((await postWith(jar, "/account/keys/delete", csrfOf(listing, "/account/keys"), { key_id: keyId })).status).toBe(403);
    await followed(await submit(jar, "/account", "/account/keys/delete", { key_id: keyId }, listing), jar, "/account#keys");
    expect(await forwardStatus({ "x-api-key": secret! })).toBe(401);
  });

  test("the message travels in a sealed, short-lived, HttpOnly cookie that no other session can read", async () => {
    const jar = await signedIn("alice");
    const other = await signedIn("alice");
    const answer = await submit(jar, "/account", "/account/keys", { name: "   " });
    expect(answer.status).toBe(303);
    const cookie = answer.headers.getSetCookie().find((line) => line.startsWith("latchkey_session_flash="))!;
    expect(cookie).toContain("Max-Age=120; HttpOnly; SameSite=Lax");
    expect(cookie).not.toContain("Must be 1-64");
    const flash = cookie.slice(0, cookie.indexOf(";"));
    // Another session of the same user, with this cookie: no message (the seal is bound to the session).
    const elsewhere = await fetch(`${lk}/account`, { headers: { cookie: `${other.header()}; ${flash}` } });
    expect(await elsewhere.text()).not.toContain("Must be 1-64 characters.");
    // The browser it was meant for reads it once; the page clears it.
    jar.take(answer);
    const once = await fetch(`${lk}/account`, { headers: { cookie: jar.header() } });
    expect(await once.text()).toContain("Must be 1-64 characters.");
    expect(once.headers.getSetCookie().some((line) => line.startsWith("latchkey_session_flash=;") && line.includes("Max-Age=0"))).toBe(true);
  });

  test("a bad key name is said beside the key form, not at the top; nothing is created", async () => {
    const jar = await signedIn("alice");
    const html = await followed(await submit(jar, "/account", "/account/keys", { name: "   " }), jar, "/account#keys");
    expect(sectionOf(html, "keys")).toContain('role="alert">Must be 1-64 characters.');
    expect(sectionOf(html, "profile")).not.toContain('role="alert"');
  });

  test("changes the password with the current one; a wrong current one is said beside the password form; other sessions end", async () => {
    const jar = await signedIn("carol");
    const other = await signedIn("carol");
    const wrong = await followed(await submit(jar, "/account", "/account/password", { current_password: "nope", new_password: `${PASSWORD}!` }), jar, "/account#password");
    expect(sectionOf(wrong, "password")).toContain('role="alert">The current password is incorrect.');
    const weak = await followed(await submit(jar, "/account", "/account/password", { current_password: PASSWORD, new_password: "carol" }), jar, "/account#password");
    expect(sectionOf(weak, "password")).toContain('role="alert"');
    await followed(await submit(jar, "/account", "/account/password", { current_password: PASSWORD, new_password: `${PASSWORD}!` }), jar, "/account#password");
    expect(await forwardStatus({ cookie: other.header() })).toBe(401);
    expect(await forwardStatus({ cookie: jar.header() })).toBe(200);
    await signedIn("carol", `${PASSWORD}!`);
  });
});

describe("email addresses and mailed codes, typed on their pages", () => {
  test("an address added by the CLI is unverified: the account page mails a code, typed on /account/email/verify, and it is verified", async () => {
    const jar = await signedIn("erin");
    const before = await page("/account", jar);
    expect(sectionOf(before, "profile")).toContain("Not verified");
    const sent = await submit(jar, "/account", "/account/email/send", {}, before);
    const codePage = await followed(sent, jar, "/account/email/verify");
    expect(codePage).toContain("A code is on its way to erin@example.com");
    const mailed = await mail.catcher.waitForMail((m) => m.to === "erin@example.com");
    const wrong = await followed(await submit(jar, "", "/account/email/verify", { code: "000000" }, codePage), jar, "/account/email/verify");
    expect(wrong).toContain('role="alert">The code or link is wrong, already used or expired.');
    const done = await followed(await submit(jar, "", "/account/email/verify", { code: codeIn(mailed) }, wrong), jar, "/account#profile");
    expect(sectionOf(done, "profile")).toContain('role="status">Your email address is verified.');
    expect(sectionOf(done, "profile")).toContain('<span class="badge ok">Verified</span>');
  });

  test("changing the address: password, a code to the new address typed on /account/email/confirm", async () => {
    const jar = await signedIn("frank");
    const wrongPassword = await followed(await submit(jar, "/account", "/account/email", { new_email: "frank@home.test", current_password: "nope" }), jar, "/account#profile");
    expect(sectionOf(wrongPassword, "profile")).toContain('role="alert">The current password is incorrect.');
    // Sent from /account/email (its form says so), the refusal comes back there, beside that form.
    const own = await page("/account/email", jar);
    expect(own).toContain('<input type="hidden" name="page" value="email"/>');
    const refusedThere = await followed(await submit(jar, "", "/account/email", { page: "email", new_email: "frank@home.test", current_password: "nope" }, own), jar, "/account/email");
    expect(refusedThere).toContain('role="alert">The current password is incorrect.');
    expect(refusedThere.indexOf('role="alert"')).toBeLessThan(refusedThere.indexOf('action="/account/email"'));
    const codePage = await followed(await submit(jar, "/account", "/account/email", { new_email: "frank@home.test", current_password: PASSWORD }), jar, "/account/email/confirm");
    const mailed = await mail.catcher.waitForMail((m) => m.to === "frank@home.test");
    const done = await followed(await submit(jar, "", "/account/email/confirm", { code: codeIn(mailed) }, codePage), jar, "/account#profile");
    expect(done).toContain("Your email address is now frank@home.test.");
    expect(sectionOf(done, "profile")).toContain('title="frank@home.test"');
  });

  test("an unverified address verified on the public /verify-email page with the mailed code; then a forgotten password reset on /password/reset/code", async () => {
    const resend = await fetch(`${lk}/api/v1/auth/verify-email/resend`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "carol@example.com" }) });
    expect(resend.status).toBe(202);
    const verification = await mail.catcher.waitForMail((m) => m.to === "carol@example.com" && /confirm your email address/.test(m.subject));
    const jar = cookieJar();
    const form = await fetch(`${lk}/verify-email`);
    jar.take(form);
    const verified = await postWith(jar, "/verify-email", csrfOf(await form.text(), "/verify-email"), { email: "carol@example.com", code: codeIn(verification) });
    expect(verified.status).toBe(200);
    expect(await verified.text()).toContain("Your email address is verified.");

    // Now "Forgot your password?" mails a code, and its page takes it.
    const forgot = await fetch(`${lk}/password/forgot`, { headers: { cookie: jar.header() } });
    const asked = await postWith(jar, "/password/forgot", csrfOf(await forgot.text(), "/password/forgot"), { email: "carol@example.com" });
    expect(await asked.text()).toContain('href="/password/reset/code"');
    const reset = await mail.catcher.waitForMail((m) => m.to === "carol@example.com" && /reset your password/.test(m.subject));
    const codeForm = await (await fetch(`${lk}/password/reset/code`, { headers: { cookie: jar.header() } })).text();
    const wrong = await postWith(jar, "/password/reset/code", csrfOf(codeForm, "/password/reset/code"), { email: "carol@example.com", code: "000000", new_password: "brand new family password" });
    expect(wrong.status).toBe(400);
    expect(await wrong.text()).toContain('value="carol@example.com"');
    const changed = await postWith(jar, "/password/reset/code", csrfOf(codeForm, "/password/reset/code"), { email: "carol@example.com", code: codeIn(reset), new_password: "brand new family password" });
    expect(changed.status).toBe(200);
    expect(await changed.text()).toContain("Your password is changed");
    await signedIn("carol", "brand new family password");
  });
});

describe("admin pages", () => {
  test("need the admin role: a 403 page that says who is signed in and offers to switch; sign-in for nobody", async () => {
    const alice = await signedIn("alice");
    const refused = await fetch(`${lk}/admin`, { headers: { cookie: alice.header() } });
    expect(refused.status).toBe(403);
    const html = await refused.text();
    expect(html).toContain("This page needs the admin role.");
    expect(html).toContain("Signed in as <strong>alice</strong>.");
    expect(html).toContain('href="/logout?switch=1"');
    const anonymous = await fetch(`${lk}/admin/audit`, { redirect: "manual" });
    expect(anonymous.headers.get("location")).toBe("/login?rd=%2Fadmin%2Faudit");
    // A form posted by a non-admin with a valid token of its own session is refused too.
    expect((await postWith(alice, "/admin/users/delete", csrfOf(await page("/account", alice), "/logout"), { id: "x" })).status).toBe(403);
  });

  test("create a user, find them, open their page; roles and email; delete and disable only through their confirmation page", async () => {
    const root = await signedIn("root");
    const created = await submit(root, "/admin/users/new", "/admin/users", { username: "dave", email: "dave@example.com", roles: "family, media", password: PASSWORD });
    expect(created.status).toBe(303);
    const userPath = created.headers.get("location")!;
    expect(userPath).toMatch(/^\/admin\/users\/[\w-]+$/);
    const id = userPath.split("/").pop()!;
    root.take(created);
    const userPage = await page(userPath, root);
    expect(userPage).toContain('role="status">dave is added.');
    const found = await page("/admin?q=dave", root);
    expect(found).toContain(`href="${userPath}"`);
    expect(found).not.toContain(">alice</a>");

    const dave = await signedIn("dave");
    expect((await fetch(`${lk}/api/v1/auth/forward?roles=media`, { headers: { cookie: dave.header() } })).status).toBe(200);
    const saved = await followed(await submit(root, userPath, "/admin/users/roles", { id, roles: "family" }), root, `${userPath}#roles`);
    expect(sectionOf(saved, "roles")).toContain("Roles of dave saved.");
    expect((await fetch(`${lk}/api/v1/auth/forward?roles=media`, { headers: { cookie: dave.header() } })).status).toBe(403);
    const badMetadata = await followed(await submit(root, userPath, "/admin/users/metadata", { id, metadata: "{not json" }), root, `${userPath}#profile`);
    expect(sectionOf(badMetadata, "profile")).toContain("Must be a JSON object");
    await followed(await submit(root, userPath, "/admin/users/metadata", { id, metadata: '{"name":"Dave Davies"}' }), root, `${userPath}#profile`);
    const told = await fetch(`${lk}/api/v1/auth/forward`, { headers: { cookie: dave.header() } });
    expect(told.headers.get("remote-name")).toBe("Dave Davies");

    // The user's page has no form that deletes or disables: only links to the confirmation pages.
    expect(userPage).not.toContain('action="/admin/users/delete"');
    expect(userPage).not.toContain('action="/admin/users/status"');
    expect(userPage).toContain(`href="${userPath}/delete"`);
    // A token of another form of the page does not delete or disable anyone.
    expect((await postWith(root, "/admin/users/delete", csrfOf(userPage, "/admin/users/roles"), { id })).status).toBe(403);
    expect((await postWith(root, "/admin/users/status", csrfOf(userPage, "/admin/users/roles"), { id, disabled: "true" })).status).toBe(403);
    expect(await forwardStatus({ cookie: dave.header() })).toBe(200);

    const disablePage = await page(`${userPath}/disable`, root);
    expect(disablePage).toContain("<h1 id=\"confirm-title\">Disable dave?</h1>");
    const disabled = await followed(await submit(root, "", "/admin/users/status", { id, disabled: "true" }, disablePage), root, userPath);
    expect(disabled).toContain("dave is disabled");
    expect(await forwardStatus({ cookie: dave.header() })).toBe(401);
    // Enabling is one click on the user's page.
    await followed(await submit(root, "", "/admin/users/status", { id, disabled: "false" }, disabled), root, userPath);

    const again = await signedIn("dave");
    const passwordPage = await page(`${userPath}/password`, root);
    expect(passwordPage).toContain("Set a new password for dave?");
    await followed(await submit(root, "", "/admin/users/password", { id, password: `${PASSWORD} reset` }, passwordPage), root, `${userPath}#security`);
    expect(await forwardStatus({ cookie: again.header() })).toBe(401);
    const newSession = await signedIn("dave", `${PASSWORD} reset`);

    const deletePage = await page(`${userPath}/delete`, root);
    expect(deletePage).toContain("Delete dave?");
    const list = await followed(await submit(root, "", "/admin/users/delete", { id }, deletePage), root, "/admin");
    expect(list).toContain('role="status">dave is deleted.');
    expect(await forwardStatus({ cookie: newSession.header() })).toBe(401);
    expect(await page("/admin?q=dave", root)).toContain("No users match.");
    // The deleted user's page: back to the list, which says so.
    expect((await fetch(`${lk}${userPath}`, { headers: { cookie: root.header() }, redirect: "manual" })).headers.get("location")).toBe("/admin");
  });

  test("an admin cannot disable, delete or demote themself from the pages (though another admin exists)", async () => {
    const root = await signedIn("root");
    const rootPath = /href="(\/admin\/users\/[\w-]+)"[^>]*>root</.exec(await page("/admin?q=root", root))![1]!;
    const id = rootPath.split("/").pop()!;
    const own = await page(rootPath, root);
    expect(sectionOf(own, "actions")).toContain("you cannot disable or delete it here");
    expect(own).not.toContain(`href="${rootPath}/delete"`);
    // Their confirmation pages send back to the user's page.
    expect((await fetch(`${lk}${rootPath}/disable`, { headers: { cookie: root.header() }, redirect: "manual" })).headers.get("location")).toBe(`${rootPath}#actions`);
    // Even with the tokens of real confirmation pages (another user's), the posts are refused.
    const alicePath = /href="(\/admin\/users\/[\w-]+)"[^>]*>alice</.exec(await page("/admin?q=alice", root))![1]!;
    const disable = await page(`${alicePath}/disable`, root);
    const refused = await followed(await submit(root, "", "/admin/users/status", { id, disabled: "true" }, disable), root, `${rootPath}#profile`);
    expect(sectionOf(refused, "profile")).toContain("You cannot disable your own account from this page");
    const deletion = await page(`${alicePath}/delete`, root);
    expect((await submit(root, "", "/admin/users/delete", { id }, deletion)).headers.get("location")).toBe(`${rootPath}#actions`);
    const demoted = await followed(await submit(root, rootPath, "/admin/users/roles", { id, roles: "family" }), root, `${rootPath}#roles`);
    expect(sectionOf(demoted, "roles")).toContain("You cannot take the admin role from your own account");
    expect(await forwardStatus({ cookie: root.header() })).toBe(200);
    expect((await fetch(`${lk}/admin`, { headers: { cookie: root.header() } })).status).toBe(200);
  });

  test("the audit log reads in sentences, filters by user and event, and colours failures", async () => {
    const root = await signedIn("root");
    // Its own events, so that it does not depend on what the tests before it did (each runs alone: bun test -t).
    const made: Record<string, string> = {};
    for (const username of ["audited", "gone"]) {
      const created = await submit(root, "/admin/users/new", "/admin/users", { username, password: PASSWORD });
      expect(created.status).toBe(303);
      made[username] = created.headers.get("location")!;
    }
    const audited = await signedIn("audited");
    await followed(await submit(audited, "/account", "/account/password", { current_password: PASSWORD, new_password: `${PASSWORD} again` }), audited, "/account#password");
    const confirm = await page(`${made.gone}/delete`, root);
    await followed(await submit(root, "", "/admin/users/delete", { id: made.gone!.split("/").pop()! }, confirm), root, "/admin");
    const byEvent = await page("/admin/audit?event=admin_user_deleted", root);
    const section = sectionOf(byEvent, "audit");
    expect(section).toContain("gone was deleted by root");
    expect(section).not.toContain("signed in");
    expect(section).not.toContain("changed their password");
    expect(byEvent).toContain('<option value="admin_user_deleted" selected>');
    const byUser = sectionOf(await page("/admin/audit?user=audited&event=password_changed", root), "audit");
    expect(byUser.match(/audited changed their password/g)?.length).toBe(1);
    expect(byUser).not.toContain("gone");
    await fetch(`${lk}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: "wrong" }) });
    const failures = sectionOf(await page("/admin/audit?user=alice&event=login_failed", root), "audit");
    expect(failures).toContain('class="failure"');
    expect(failures).toContain("alice failed to sign in: wrong username or password");
  });

  test("the applications page gives the issuer and discovery URL to copy; deleting an application asks first", async () => {
    const root = await signedIn("root");
    const html = await page("/admin/applications", root);
    expect(html).toContain(`id="issuer" value="${lk}" readonly`);
    expect(html).toContain(`id="discovery" value="${lk}/.well-known/openid-configuration" readonly`);
    const registered = await followed(await submit(root, "", "/admin/applications", { client_id: "photos", redirect_uris: "https://photos.example.com/cb" }, html), root, "/admin/applications#clients");
    expect(registered).toMatch(/id="client-secret">[\w-]{20,}</);
    expect(registered).not.toContain('action="/admin/applications/delete"');
    const confirm = await page("/admin/applications/delete?client_id=photos", root);
    expect(confirm).toContain("Delete photos?");
    await followed(await submit(root, "", "/admin/applications/delete", { client_id: "photos" }, confirm), root, "/admin/applications#clients");
    expect(await page("/admin/applications", root)).toContain("No application is registered yet.");
    // "Require a passkey": stored on the client, and said in its row.
    const strict = await followed(
      await submit(root, "", "/admin/applications", { client_id: "vault", redirect_uris: "https://vault.example.com/cb", require: "passkey" }, await page("/admin/applications", root)),
      root,
      "/admin/applications#clients",
    );
    expect(strict).toContain("confidential, passkey required");
  });
});

describe("signing out", () => {
  test("GET /logout asks first; the sign-out lands on the sign-in page saying so; switching keeps rd", async () => {
    const jar = await signedIn("alice");
    const asks = await page("/logout?switch=1&rd=%2Faccount", jar);
    expect(asks).toContain("You are signed in as <strong>alice</strong>.");
    const out = await submit(jar, "", "/logout", { switch: "1", rd: "/account" }, asks);
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe("/login?signed_out=1&handoff=none&rd=%2Faccount");
    jar.take(out);
    expect(await forwardStatus({ cookie: jar.header() })).toBe(401);
    const login = await page(out.headers.get("location")!, jar);
    expect(login).toContain('role="status">You are signed out.');
    expect(login).toContain('name="rd" value="/account"');
  });
});

describe("pages for browsers, JSON for programs", () => {
  test("an unknown path: an HTML 404 page for a browser (Accept: text/html), JSON for an API client", async () => {
    const browser = await fetch(`${lk}/no/such/page`, { headers: { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" } });
    expect(browser.status).toBe(404);
    expect(browser.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(browser.headers.get("content-security-policy")).toStartWith("default-src 'none'; style-src 'sha256-");
    expect(await browser.text()).toContain("<h1>Page not found</h1>");
    const program = await fetch(`${lk}/no/such/page`, { headers: { accept: "application/json" } });
    expect(program.status).toBe(404);
    expect(await program.json()).toEqual({ error: "not_found", message: "No such route." });
    expect((await fetch(`${lk}/no/such/page`)).headers.get("content-type")).toStartWith("application/json");
  });
});
