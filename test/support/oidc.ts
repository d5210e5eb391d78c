/** Driving the OpenID Connect authorization endpoint over plain HTTP, as a browser without JavaScript would. */
import { expect } from "bun:test";
import { browserSignIn, csrfOf, type CookieJar } from "./pages";
import { BINARY, freePort, spawnServer, type SpawnedServer } from "./server";

/**
 * Follows an authorization URL like a browser: the sign-in page (as `login`) when asked, then the consent form when
 * it is shown (its page is handed to `onConsent` first); returns the callback URL the browser is sent to.
 */
export async function authorizeOverHttp(
  authorizationUrl: URL,
  jar: CookieJar,
  base: string,
  login: string,
  password: string,
  onConsent?: (html: string) => void,
): Promise<URL> {
  let answer = await fetch(authorizationUrl, { headers: { cookie: jar.header() }, redirect: "manual" });
  jar.take(answer);
  let location = answer.headers.get("location");
  if (location?.startsWith("/login?")) {
    const back = await browserSignIn(`${base}${location}`, login, password, jar);
    expect(back).toStartWith(`${base}/oidc/authorize?`);
    answer = await fetch(back, { headers: { cookie: jar.header() }, redirect: "manual" });
    jar.take(answer);
    location = answer.headers.get("location");
  }
  if (answer.status === 200) {
    const html = await answer.text();
    expect(html).toContain('action="/oidc/authorize/consent"');
    onConsent?.(html);
    const request = /name="request" value="([^"]*)"/.exec(html)![1]!.replaceAll("&amp;", "&");
    const consented = await fetch(`${base}/oidc/authorize/consent`, {
      method: "POST",
      headers: { cookie: jar.header(), "content-type": "application/x-www-form-urlencoded", origin: base },
      body: new URLSearchParams({ request, csrf: csrfOf(html, "/oidc/authorize/consent"), decision: "allow" }),
      redirect: "manual",
    });
    expect(consented.status).toBe(303);
    location = consented.headers.get("location");
  } else expect(answer.status).toBe(302);
  return new URL(location!);
}

/** The binary serving `dataDir` on a free loopback port, its PUBLIC_URL that address (the issuer). */
export async function serveIssuer(dataDir: string, env: Record<string, string> | ((port: number) => Record<string, string>) = {}): Promise<{ url: string; server: SpawnedServer }> {
  const port = freePort();
  if (typeof env === "function") env = env(port);
  const url = `http://127.0.0.1:${port}`;
  const server = await spawnServer([BINARY, "serve"], { env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, PUBLIC_URL: url, ...env } });
  return { url, server };
}
