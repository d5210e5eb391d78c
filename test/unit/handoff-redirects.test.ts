/**
 * The cross-domain handoff never leaves the configured sign-in hosts: `to` must be one of them exactly, and the
 * `rd` it carries is checked again where the browser lands (in-process, through app.handle).
 */
import { expect, test } from "bun:test";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { createHandoffCodes } from "../../src/modules/pages/handoff";
import { deriveSecrets } from "../../src/secrets";

function app() {
  const db = openDatabase(":memory:");
  migrate(db);
  const config = loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", PUBLIC_URL: "https://auth.example.com", SIGN_IN_URLS: "https://auth.example.net" });
  return createApp(config, db, deriveSecrets("k".repeat(32)));
}

const start = (handle: ReturnType<typeof app>, to: string, rd = "https://wiki.example.net/") =>
  handle.handle(
    new Request(`https://auth.example.com/handoff/start?${new URLSearchParams({ to, state: "s", rd })}`, { headers: { host: "auth.example.com" } }),
  );

const REFUSED_TARGETS = [
  "https://evil.example",
  "https://auth.example.net.evil.example",
  "https://auth.example.net@evil.example",
  "//auth.example.net",
  "http://auth.example.net",
  "https://auth.example.net/",
  "https://auth.example.net:444",
  "https://AUTH.example.net",
  "https://auth.example.net\\@evil.example",
  "javascript:alert(1)",
  "https://auth.example.com",
  "https://example.net",
  "https://x.auth.example.net",
  "https%3A%2F%2Fauth.example.net",
  " https://auth.example.net",
  "",
];

test("handoff/start refuses every target that is not exactly another configured sign-in origin (400, no Location)", async () => {
  const handle = app();
  for (const to of REFUSED_TARGETS) {
    const response = await start(handle, to);
    expect({ to, status: response.status, location: response.headers.get("location") }).toEqual({ to, status: 400, location: null });
  }
});

test("a configured target gets the browser back to its sign-in form when there is no session to hand off", async () => {
  const response = await start(app(), "https://auth.example.net", "https://wiki.example.net/page");
  expect(response.status).toBe(302);
  expect(response.headers.get("location")).toBe(`https://auth.example.net/login?handoff=none&rd=${encodeURIComponent("https://wiki.example.net/page")}`);
});

test("handoff/accept with a bad or spent code signs nobody in, and an unsafe rd is never followed", async () => {
  const handle = app();
  for (const rd of ["https://evil.example/", "//evil.example", "https://wiki.example.net/"]) {
    const response = await handle.handle(
      new Request(`https://auth.example.net/handoff/accept?${new URLSearchParams({ code: "forged", rd })}`, {
        headers: { host: "auth.example.net", cookie: "latchkey_session_csrf=abc" },
      }),
    );
    expect(response.status).toBe(303);
    expect(response.headers.getSetCookie()).toEqual([]);
    expect(response.headers.get("location")).toStartWith("/login?handoff=none&rd=");
  }
  // The sign-in form the browser lands on drops an unsafe rd.
  const form = await handle.handle(
    new Request(`https://auth.example.net/login?handoff=none&rd=${encodeURIComponent("https://evil.example/")}`, { headers: { host: "auth.example.net" } }),
  );
  expect(form.status).toBe(200);
  expect(await form.text()).not.toContain("evil.example");
});

test("with three root domains, a host without a session asks each other host once, then shows its own form", async () => {
  const db = openDatabase(":memory:");
  migrate(db);
  const config = loadConfig({
    DATA_DIR: "/nonexistent",
    RATE_LIMIT: "off",
    PUBLIC_URL: "https://auth.example.com",
    SIGN_IN_URLS: "https://auth.example.net,https://auth.example.org",
  });
  const handle = createApp(config, db, deriveSecrets("k".repeat(32)));
  const get = (url: string) => handle.handle(new Request(url, { headers: { host: new URL(url).host, cookie: "latchkey_session_csrf=abc" } }));
  const hops: string[] = [];
  let next = "https://auth.example.net/login?rd=%2Fx";
  for (let i = 0; i < 6; i++) {
    const response = await get(next);
    if (response.status === 200) break;
    next = new URL(response.headers.get("location")!, next).href;
    hops.push(`${new URL(next).host}${new URL(next).pathname}`);
  }
  expect(hops).toEqual(["auth.example.org/handoff/start", "auth.example.com/handoff/start", "auth.example.net/login"]);
  expect(new URL(next).searchParams.get("handoff")).toBe("none");
  expect(new URL(next).searchParams.get("rd")).toBe("/x");
});

test("handoff/accept with a code a full store evicted: a page that starts the handoff again (503, meta refresh, no script)", async () => {
  const db = openDatabase(":memory:");
  migrate(db);
  const config = loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", PUBLIC_URL: "https://auth.example.com", SIGN_IN_URLS: "https://auth.example.net" });
  const handoffs = createHandoffCodes(Date.now, 1);
  const handle = createApp(config, db, deriveSecrets("k".repeat(32)), undefined, { handoffs });
  const evicted = handoffs.issue("s1", "https://auth.example.net", "state");
  handoffs.issue("s2", "https://auth.example.net", "state");
  const accept = (code: string) =>
    handle.handle(
      new Request(`https://auth.example.net/handoff/accept?${new URLSearchParams({ code, rd: "https://wiki.example.net/x" })}`, {
        headers: { host: "auth.example.net", cookie: "latchkey_session_csrf=abc" },
      }),
    );
  const busy = await accept(evicted);
  expect(busy.status).toBe(503);
  expect(busy.headers.get("retry-after")).toBe("1");
  expect(busy.headers.getSetCookie()).toEqual([]);
  const html = await busy.text();
  const again = `/login?rd=${encodeURIComponent("https://wiki.example.net/x")}`;
  expect(html).toContain(`<meta http-equiv="refresh" content="1;url=${again}"/>`);
  expect(html).toContain(`<a href="${again}">Try again</a>`);
  expect(html).not.toContain("<script");
  // Once: the same link again, like any spent or forged code, leads to the sign-in form.
  const replayed = await accept(evicted);
  expect(replayed.status).toBe(303);
  expect(replayed.headers.get("location")).toBe(`/login?handoff=none&rd=${encodeURIComponent("https://wiki.example.net/x")}`);
});
