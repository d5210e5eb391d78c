/** Driving the sign-in pages over plain HTTP, as a browser without JavaScript would. */
import { expect } from "bun:test";

/** A cookie jar for one host (loopback: cookies ignore ports, so one jar covers Latchkey and the proxies). */
export function cookieJar() {
  const cookies = new Map<string, string>();
  return {
    take(response: Response) {
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(";");
        const equals = pair!.indexOf("=");
        const name = pair!.slice(0, equals);
        const value = pair!.slice(equals + 1);
        if (value === "" || /max-age=0/i.test(line)) cookies.delete(name);
        else cookies.set(name, value);
      }
    },
    get: (name: string) => cookies.get(name),
    header: () => [...cookies].map(([name, value]) => `${name}=${value}`).join("; "),
  };
}

export type CookieJar = ReturnType<typeof cookieJar>;

/** The value of the form's hidden csrf field (the first form with `action`, or the first form). */
export function csrfOf(html: string, action?: string): string {
  const form = action ? html.slice(html.indexOf(`action="${action}"`)) : html;
  const match = /name="csrf" value="([^"]+)"/.exec(form);
  if (!match) throw new Error(`no csrf field${action ? ` in the form for ${action}` : ""}`);
  return match[1]!;
}

/**
 * Opens a sign-in page URL, posts the form, and returns where the browser was sent. `origin` is the Origin the
 * browser sends: the page's own unless the server is reached at another address than its public one (the bench).
 */
export async function browserSignIn(loginUrl: string, login: string, password: string, jar: CookieJar, origin = new URL(loginUrl).origin): Promise<string> {
  const page = await fetch(loginUrl, { headers: { cookie: jar.header() }, redirect: "manual" });
  expect(page.status).toBe(200);
  jar.take(page);
  const html = await page.text();
  const rd = /name="rd" value="([^"]*)"/.exec(html)?.[1]?.replaceAll("&amp;", "&");
  const posted = await fetch(new URL("/login", loginUrl), {
    method: "POST",
    headers: { cookie: jar.header(), origin, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrf: csrfOf(html), login, password, ...(rd ? { rd } : {}) }),
    redirect: "manual",
  });
  expect(posted.status).toBe(303);
  jar.take(posted);
  return posted.headers.get("location")!;
}

/** Signs out with the account page's sign-out form. */
export async function signOut(origin: string, jar: CookieJar): Promise<void> {
  const account = await fetch(`${origin}/account`, { headers: { cookie: jar.header() } });
  expect(account.status).toBe(200);
  const posted = await fetch(`${origin}/logout`, {
    method: "POST",
    headers: { cookie: jar.header(), origin, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrf: csrfOf(await account.text(), "/logout") }),
    redirect: "manual",
  });
  expect(posted.status).toBe(303);
  // On to the sign-in form saying "You are signed out", without the handoff to the other sign-in hosts.
  expect(posted.headers.get("location")).toBe("/login?signed_out=1&handoff=none");
  jar.take(posted);
}

/** Signs in through the JSON API; optionally creates an API key. */
export async function apiSignIn(origin: string, username: string, password: string, options: { createKey?: string } = {}) {
  const login = await fetch(`${origin}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  expect(login.status).toBe(200);
  const { access_token: accessToken } = (await login.json()) as { access_token: string };
  let apiKey: string | undefined;
  if (options.createKey) {
    const created = await fetch(`${origin}/api/v1/auth/keys`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${accessToken}` },
      body: JSON.stringify({ name: options.createKey }),
    });
    expect(created.status).toBe(201);
    apiKey = ((await created.json()) as { api_key: string }).api_key;
  }
  return { accessToken, apiKey };
}
