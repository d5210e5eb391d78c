/** Driving the OpenID Connect authorization endpoint over plain HTTP, as a browser without JavaScript would. */
import { expect } from "bun:test";
import * as oidcClient from "openid-client";
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

/**
 * A relying party in the test process (openid-client, authorization code with PKCE, state and nonce), for a real
 * browser to sign in through: `/` starts the flow, `/callback` finishes it and shows `show(tokens)` as JSON in
 * `#claims` under the heading `Signed in as <preferred_username>`. A refusal (`error=` with the flow's state) is
 * shown as "Sign-in refused: <error>".
 */
export async function startRelyingParty(options: {
  issuer: string;
  clientId: string;
  secret: string;
  port: number;
  /** The host of the registered redirect URI (the browser is sent back there). */
  redirectHost: string;
  scope: string;
  show: (tokens: oidcClient.TokenEndpointResponse & oidcClient.TokenEndpointResponseHelpers, config: oidcClient.Configuration) => Promise<unknown>;
}) {
  const { clientId, secret, port, scope, show } = options;
  const config = await oidcClient.discovery(new URL(options.issuer), clientId, secret, undefined, { execute: [oidcClient.allowInsecureRequests] });
  const pending = new Map<string, { verifier: string; state: string; nonce: string }>();
  const redirectUri = `http://${options.redirectHost}:${port}/callback`;
  const html = (body: string) => new Response(`<!doctype html><title>RP</title>${body}`, { headers: { "content-type": "text/html; charset=utf-8" } });
  return Bun.serve({
    hostname: "127.0.0.1",
    port,
    async fetch(request) {
      const url = new URL(request.url);
      if (url.pathname === "/") {
        const id = crypto.randomUUID();
        const flow = { verifier: oidcClient.randomPKCECodeVerifier(), state: oidcClient.randomState(), nonce: oidcClient.randomNonce() };
        pending.set(id, flow);
        const target = oidcClient.buildAuthorizationUrl(config, {
          redirect_uri: redirectUri,
          scope,
          code_challenge: await oidcClient.calculatePKCECodeChallenge(flow.verifier),
          code_challenge_method: "S256",
          state: flow.state,
          nonce: flow.nonce,
        });
        return new Response(null, { status: 302, headers: { location: target.href, "set-cookie": `rp=${id}; Path=/; HttpOnly` } });
      }
      if (url.pathname === "/callback") {
        const flow = pending.get(/rp=([^;]+)/.exec(request.headers.get("cookie") ?? "")?.[1] ?? "");
        if (!flow) return new Response("no flow", { status: 400 });
        // A refusal comes back as error=access_denied with the state (checked before anything else is trusted).
        if (url.searchParams.get("error")) {
          expect(url.searchParams.get("state")).toBe(flow.state);
          return html(`<p>Sign-in refused: ${url.searchParams.get("error")}</p>`);
        }
        const tokens = await oidcClient.authorizationCodeGrant(config, new URL(`${redirectUri}${url.search}`), {
          pkceCodeVerifier: flow.verifier,
          expectedState: flow.state,
          expectedNonce: flow.nonce,
        });
        return html(`<h1>Signed in as ${tokens.claims()!.preferred_username}</h1><pre id="claims">${JSON.stringify(await show(tokens, config))}</pre>`);
      }
      return new Response("not found", { status: 404 });
    },
  });
}
