/**
 * The cross-domain handoff cannot be jammed (issue 20), through the compiled binary: one signed-in user flooding
 * GET /handoff/start with as many requests as the store holds codes gets 429 pages (never a 500) once past the
 * per-session limit, as does one address past its own; and another user's handoff still signs them in. Two sign-in
 * hosts on one server: 127.0.0.1 and localhost (cookies are per host name, so each has its own jar).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HANDOFFS_PER_ADDRESS, HANDOFFS_PER_SESSION } from "../../src/modules/pages/handoff";
import { browserSignIn, cookieJar, type CookieJar } from "../support/pages";
import { BINARY, freePort, removeDataDir, runCli, spawnServer, tempDataDir, type SpawnedServer } from "../support/server";

const PASSWORD = "correct horse battery staple";
/** The store's bound before this change: a flood of this many filled it, and every handoff then answered 500. */
const OLD_STORE_BOUND = 10_000;

let dataDir: string;
let server: SpawnedServer;
let here: string;
let there: string;

beforeAll(async () => {
  dataDir = tempDataDir();
  for (const name of ["mallory", "bob"])
    expect((await runCli(["user", "add", name, "--email", `${name}@example.com`], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
  const port = freePort();
  here = `http://127.0.0.1:${port}`;
  there = `http://localhost:${port}`;
  server = await spawnServer([BINARY, "serve"], {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, PUBLIC_URL: here, SIGN_IN_URLS: there, TRUST_PROXY: "127.0.0.1" },
  });
});

afterAll(async () => {
  await server?.stop();
  removeDataDir(dataDir);
});

async function signedIn(login: string): Promise<CookieJar> {
  const jar = cookieJar();
  expect(await browserSignIn(`${here}/login?handoff=none`, login, PASSWORD, jar)).toBe("/account");
  return jar;
}

const startUrl = () => `/handoff/start?${new URLSearchParams({ to: there, state: "flood" })}`;
/** One GET /handoff/start toward `there`, from `address` (X-Forwarded-For: the server trusts loopback's). */
const start = (jar: CookieJar | undefined, address: string) =>
  fetch(`${here}${startUrl()}`, { headers: { ...(jar ? { cookie: jar.header() } : {}), "x-forwarded-for": address }, redirect: "manual" });

/** The n-th distinct IPv4 address of 10.0.0.0/8. */
const address = (n: number) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

/** A 429 page that retries: Retry-After, a meta refresh to the same handoff after that wait, a link to the form. */
async function expectRetryPage(answer: Response, from: string) {
  expect(answer.status).toBe(429);
  const wait = answer.headers.get("retry-after")!;
  expect(Number(wait)).toBeGreaterThan(0);
  expect(answer.headers.get("content-security-policy")).toStartWith("default-src 'none'");
  const html = await answer.text();
  expect(html).toContain(`<meta http-equiv="refresh" content="${wait};url=${startUrl()}"/>`);
  // The wait in words, singular or plural ("1 second", not "1 seconds" nor "1 s").
  expect(html).toContain(`Too many sign-in handoffs ${from}. Trying again in ${wait === "1" ? "1 second" : `${wait} seconds`}.`);
  expect(html).toContain(`href="${there}/login?handoff=none"`);
  expect(html).not.toContain("<script");
}

describe("GET /handoff/start is limited, and a flood jams no one else", () => {
  test(`per browser session: ${HANDOFFS_PER_SESSION} codes, then 429 (rate_limited) with a page that retries`, async () => {
    const mallory = await signedIn("mallory");
    // Each from its own address: only the session's limit is in play.
    for (let i = 0; i < HANDOFFS_PER_SESSION; i++) {
      const answer = await start(mallory, address(1000 + i));
      expect(answer.status).toBe(302);
      expect(answer.headers.get("location")).toStartWith(`${there}/handoff/accept?code=`);
    }
    await expectRetryPage(await start(mallory, address(2000)), "for this browser");
  });

  test(`per address: ${HANDOFFS_PER_ADDRESS} requests, then 429 (rate_limited), signed in or not, before the session counts`, async () => {
    for (let i = 0; i < HANDOFFS_PER_ADDRESS; i++) expect((await start(undefined, "192.0.2.7")).status).toBe(302);
    await expectRetryPage(await start(undefined, "192.0.2.7"), "from your network");
    // A fresh session from that address is refused by the address (it spends nothing of its own budget).
    const another = await signedIn("mallory");
    await expectRetryPage(await start(another, "192.0.2.7"), "from your network");
    expect((await start(another, "192.0.2.8")).status).toBe(302);
  });

  test(
    `a flood of ${OLD_STORE_BOUND + 1} requests from one session and as many addresses: never a 500, and bob's handoff still works`,
    async () => {
      const mallory = await signedIn("mallory");
      const statuses = new Map<number, number>();
      let next = 0;
      const worker = async () => {
        while (next <= OLD_STORE_BOUND) {
          const answer = await start(mallory, address(next++));
          await answer.arrayBuffer();
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      expect([...statuses.keys()].sort()).toEqual([302, 429]);
      // The bucket refills at HANDOFFS_PER_SESSION a minute: whatever the flood's pace, a small fraction got codes.
      expect(statuses.get(302)!).toBeLessThan(OLD_STORE_BOUND / 10);

      // Bob, signed in on `here`, opens `there`: its sign-in page hands off to `here`, which sends a code back.
      const bobHere = await signedIn("bob");
      const bobThere = cookieJar();
      const login = await fetch(`${there}/login?rd=%2Faccount`, { redirect: "manual" });
      expect(login.status).toBe(302);
      bobThere.take(login);
      const handoff = await fetch(login.headers.get("location")!, { headers: { cookie: bobHere.header(), "x-forwarded-for": "198.51.100.1" }, redirect: "manual" });
      expect(handoff.status).toBe(302);
      const accept = handoff.headers.get("location")!;
      expect(accept).toStartWith(`${there}/handoff/accept?code=`);
      const accepted = await fetch(accept, { headers: { cookie: bobThere.header() }, redirect: "manual" });
      expect(accepted.status).toBe(302);
      expect(accepted.headers.get("location")).toBe(`${there}/account`);
      bobThere.take(accepted);
      const account = await fetch(`${there}/account`, { headers: { cookie: bobThere.header() } });
      expect(account.status).toBe(200);
      expect(await account.text()).toContain("bob@example.com");
    },
    180_000,
  );
});
