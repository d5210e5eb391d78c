/**
 * Back-channel logout delivery through the outbox, against the binary: the receiving app is down (it refuses
 * with 503), the notice is retried, Latchkey restarts meanwhile, and once the app is back the logout token
 * arrives, signed and shaped as OpenID Connect Back-Channel Logout 1.0 §2.4 says.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { browserSignIn, cookieJar, signOut } from "../support/pages";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";

const PASSWORD = "correct horse battery staple";
const CALLBACK = "http://127.0.0.1:1/callback";

let dataDir: string;
let issuer: string;
let port: number;
let latchkey: SpawnedServer;
let secret: string;
let es256Secret: string;

/** The app's back-channel logout endpoint: refuses (503) until `accepting`, and counts what it was sent. */
function receivingApp() {
  const seen: { accepted: boolean; token: string }[] = [];
  const waiters: { done: () => boolean; resolve: () => void }[] = [];
  const state = { accepting: false };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const form = new URLSearchParams(await request.text());
      seen.push({ accepted: state.accepting, token: form.get("logout_token") ?? "" });
      for (const waiter of waiters.splice(0)) if (waiter.done()) waiter.resolve();
      else waiters.push(waiter);
      return new Response(null, { status: state.accepting ? 200 : 503 });
    },
  });
  /** Resolves once `done()` holds after a request (rejects after `timeoutMs`, naming what was seen). */
  const until = (done: () => boolean, what: string, timeoutMs = 20_000) =>
    done()
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms; seen: ${JSON.stringify(seen.map((entry) => entry.accepted))}`)), timeoutMs);
          waiters.push({ done, resolve: () => (clearTimeout(timer), resolve()) });
        });
  return { server, seen, state, until, uri: `http://127.0.0.1:${server.port}/backchannel-logout` };
}

const app = receivingApp();

const startLatchkey = () =>
  spawnServer([BINARY, "serve"], {
    // Retries from 1 s (doubling), so the test sees several within seconds.
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, PUBLIC_URL: issuer, MAIL_RETRY_INTERVAL: "1s" },
  });

beforeAll(async () => {
  dataDir = tempDataDir();
  expect((await runCli(["user", "add", "alice"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  const added = await runCli(["oidc", "client", "add", "notes", "--trusted", "--redirect-uri", CALLBACK, "--backchannel-logout-uri", app.uri, "--json"], { DATA_DIR: dataDir });
  expect(added.code).toBe(0);
  secret = (JSON.parse(added.stdout) as { client_secret: string }).client_secret;
  // A client whose ID tokens use another algorithm than the instance's (RS256): its logout tokens follow them.
  const es256 = await runCli(["oidc", "client", "add", "notes-es", "--trusted", "--redirect-uri", CALLBACK, "--backchannel-logout-uri", app.uri, "--id-token-alg", "ES256", "--json"], { DATA_DIR: dataDir });
  expect(es256.code).toBe(0);
  es256Secret = (JSON.parse(es256.stdout) as { client_secret: string }).client_secret;
  port = freePort();
  issuer = `http://127.0.0.1:${port}`;
  latchkey = await startLatchkey();
});

afterAll(async () => {
  app.server.stop(true);
  await latchkey?.stop();
  removeDataDir(dataDir);
});

test("the CLI refuses a back-channel logout URI that is not http(s), in one line", async () => {
  const refused = await runCli(["oidc", "client", "add", "bad", "--redirect-uri", CALLBACK, "--backchannel-logout-uri", "app.example:/logout"], { DATA_DIR: dataDir });
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toContain("backchannel_logout_uri: Must be an http or https URI.");
});

/** alice signs in to the app through the sign-in page, and the app exchanges the code: her browser's jar and the ID token's claims. */
async function signInToApp(clientId = "notes", clientSecret = secret) {
  const jar = cookieJar();
  const authorize = `${issuer}/oidc/authorize?${new URLSearchParams({ client_id: clientId, redirect_uri: CALLBACK, response_type: "code", scope: "openid" })}`;
  const first = await fetch(authorize, { redirect: "manual" });
  const back = await browserSignIn(`${issuer}${first.headers.get("location")}`, "alice", PASSWORD, jar);
  const answer = await fetch(back, { headers: { cookie: jar.header() }, redirect: "manual" });
  const code = new URL(answer.headers.get("location")!).searchParams.get("code")!;
  const exchanged = await fetch(`${issuer}/oidc/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${btoa(`${clientId}:${clientSecret}`)}` },
    body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: CALLBACK }),
  });
  expect(exchanged.status).toBe(200);
  const { id_token } = (await exchanged.json()) as { id_token: string };
  return { jar, idToken: decodeJwt(id_token), idTokenAlg: decodeProtectedHeader(id_token).alg };
}

test("a sign-out while the app is down: retried, kept across a restart, delivered when the app is back, verifiable from the JWKS", async () => {
  const { jar, idToken } = await signInToApp();

  // She signs out of Latchkey; the app is down: the notice is refused, and retried.
  await signOut(issuer, jar);
  await app.until(() => app.seen.length >= 2, "second refused attempt");
  expect(app.seen.every((entry) => !entry.accepted)).toBe(true);

  // Latchkey restarts while the notice waits; the app comes back.
  expect(await latchkey.stop()).toBe(0);
  app.state.accepting = true;
  latchkey = await startLatchkey();
  await app.until(() => app.seen.some((entry) => entry.accepted), "accepted delivery");

  const delivered = app.seen.find((entry) => entry.accepted)!.token;
  const { payload, protectedHeader } = await jwtVerify(delivered, createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`)), {
    issuer,
    audience: "notes",
    typ: "logout+jwt",
    algorithms: ["RS256"],
  });
  expect(protectedHeader.kid).toStartWith("rs256-");
  expect(payload).toMatchObject({ sub: idToken.sub, sid: idToken.sid, events: { "http://schemas.openid.net/event/backchannel-logout": {} } });
  expect(payload.jti).toBeString();
  expect(payload.exp! - payload.iat!).toBe(120);
  expect(payload).not.toHaveProperty("nonce");
  // Each attempt is a fresh token (its own jti): a replayed one is never what the app is sent again.
  expect(new Set(app.seen.map((entry) => decodeJwt(entry.token).jti)).size).toBe(app.seen.length);
});

test("latchkey user disable from the CLI: the notice it queues is delivered by the running server", async () => {
  const { idToken } = await signInToApp();
  app.state.accepting = true;
  const delivered = () => app.seen.find((entry) => entry.accepted && decodeJwt(entry.token).sid === idToken.sid);
  const disabled = await runCli(["user", "disable", "alice"], { DATA_DIR: dataDir });
  expect(disabled.code).toBe(0);
  await app.until(() => delivered() !== undefined, "notice for the disabled user's session");
  expect(decodeJwt(delivered()!.token)).toMatchObject({ iss: issuer, aud: "notes", sub: idToken.sub });
  expect((await runCli(["user", "enable", "alice"], { DATA_DIR: dataDir })).code).toBe(0);
});

test("a sign-in asked for again (prompt=login) tells no app; the sign-out after it tells the app of that sign-in only", async () => {
  app.state.accepting = true;
  const { jar, idToken: first } = await signInToApp();
  // The app asks for the password again: Latchkey signs that browser session out and shows the sign-in page.
  const again = `${issuer}/oidc/authorize?${new URLSearchParams({ client_id: "notes", redirect_uri: CALLBACK, response_type: "code", scope: "openid", prompt: "login" })}`;
  const asked = await fetch(again, { headers: { cookie: jar.header() }, redirect: "manual" });
  expect(asked.headers.get("location")).toStartWith("/login?rd=");
  jar.take(asked);
  const { jar: second, idToken: next } = await signInToApp();
  const before = app.seen.length;
  await signOut(issuer, second);
  await app.until(() => app.seen.slice(before).some((entry) => decodeJwt(entry.token).sid === next.sid), "notice for the second sign-in");
  // The outbox sends in queue order: a notice for the first sign-in, had prompt=login queued one, came first.
  expect(app.seen.slice(before).map((entry) => decodeJwt(entry.token).sid)).toEqual([next.sid]);
  expect(app.seen.some((entry) => decodeJwt(entry.token).sid === first.sid)).toBe(false);
});

test("a client registered with --id-token-alg gets its logout tokens in that algorithm too (an app verifies one algorithm)", async () => {
  app.state.accepting = true;
  const { jar, idToken, idTokenAlg } = await signInToApp("notes-es", es256Secret);
  expect(idTokenAlg).toBe("ES256");
  await signOut(issuer, jar);
  const delivered = () => app.seen.find((entry) => entry.accepted && decodeJwt(entry.token).sid === idToken.sid);
  await app.until(() => delivered() !== undefined, "notice for the ES256 client");
  const { payload, protectedHeader } = await jwtVerify(delivered()!.token, createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`)), {
    issuer,
    audience: "notes-es",
    typ: "logout+jwt",
    algorithms: ["ES256"],
  });
  expect(protectedHeader.kid).toStartWith("es256-");
  expect(payload).toMatchObject({ sub: idToken.sub, sid: idToken.sid });
});
