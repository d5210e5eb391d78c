import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { send } from "../support/client";
import { removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";

/**
 * /token takes HTML form posts (RFC 6749), so any web page could make its visitors post passwords to it and spend
 * the owner's failures from thousands of addresses (issue 16). A cross-site browser post is refused first, in
 * every delivery mode, and counts toward no limit.
 */

const PASSWORD = "a long passphrase";
const form = (password: string) => ({ grant_type: "password", username: "owner", password });

for (const mode of ["bearer", "cookie"] as const) {
  describe(`TOKEN_DELIVERY=${mode}: a cross-site form post to /token`, () => {
    let server: RunningServer;
    beforeAll(async () => {
      const dataDir = tempDataDir();
      expect((await runCli(["user", "add", "owner"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
      // Five failures per (account, address) delay this address and 20 requests a minute empty its bucket: the 24 refused posts must count as none.
      server = await startServer({ TOKEN_DELIVERY: mode, PUBLIC_URL: "http://auth.example.test" }, dataDir);
    });
    afterAll(async () => {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    });

    const post = (password: string, headers: Record<string, string>) =>
      send(server.url, "POST", "/api/v1/auth/token", { form: form(password), headers });

    test("is 403 csrf_rejected for a foreign Origin, a foreign Referer, or Sec-Fetch-Site: cross-site, and counts nothing", async () => {
      const foreign: Record<string, string>[] = [
        { origin: "https://evil.example" },
        { referer: "https://evil.example/page" },
        { "sec-fetch-site": "cross-site" },
        { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
      ];
      for (let round = 0; round < 6; round++)
        for (const headers of foreign) {
          const reply = await post("wrong password", headers);
          expect(reply.status).toBe(403);
          expect(reply.body).toEqual({ error: "csrf_rejected", message: "Cross-site request refused: the request's Origin is neither PUBLIC_URL nor in ALLOWED_ORIGINS." });
        }
      // Not one of those 24 counted: the owner's first wrong passwords from this address are still plain 401s.
      for (let attempt = 0; attempt < 4; attempt++) expect((await post("wrong password", {})).body.error).toBe("invalid_grant");
      const ok = await post(PASSWORD, {});
      expect(ok.status).toBe(200);
      expect(typeof ok.body.access_token).toBe("string");
    });

    test("a machine client (no Origin) and the instance's own origin still get tokens", async () => {
      expect((await post(PASSWORD, {})).status).toBe(200);
      expect((await post(PASSWORD, { origin: "http://auth.example.test", "sec-fetch-site": "same-origin" })).status).toBe(200);
    });
  });
}

describe("TOKEN_DELIVERY=cookie: another site's page posting to the sign-in routes", () => {
  test("is refused (403 csrf_rejected) before the per-address limit, so 24 such posts leave the sender's own sign-in untouched", async () => {
    const dataDir = tempDataDir();
    expect((await runCli(["user", "add", "owner"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
    const server = await startServer({ TOKEN_DELIVERY: "cookie", PUBLIC_URL: "http://auth.example.test", ALLOW_REGISTRATION: "true" }, dataDir);
    try {
      const foreign = { origin: "https://evil.example" };
      const routes = [
        ["/api/v1/auth/login", { username: "owner", password: PASSWORD }],
        ["/api/v1/auth/register", { username: "mallory", password: PASSWORD }],
        ["/api/v1/auth/login/verify", { challenge_id: "x", code: "123456" }],
      ] as const;
      // 24 posts: more than the 20 a minute an address's bucket holds.
      for (let round = 0; round < 8; round++)
        for (const [path, json] of routes) {
          const reply = await send(server.url, "POST", path, { json, headers: foreign });
          expect({ path, status: reply.status, error: reply.body.error }).toEqual({ path, status: 403, error: "csrf_rejected" });
        }
      const own = await send(server.url, "POST", "/api/v1/auth/login", { json: { username: "owner", password: PASSWORD }, headers: { origin: "http://auth.example.test" } });
      expect(own.status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(dataDir);
    }
  });
});

describe("TOKEN_DELIVERY=cookie: a cookie-authenticated write without Origin or Referer", () => {
  test("is refused with a message that says the headers are missing, not that an Origin is not allowed", async () => {
    const dataDir = tempDataDir();
    expect((await runCli(["user", "add", "owner"], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
    const server = await startServer({ TOKEN_DELIVERY: "cookie" }, dataDir);
    try {
      const login = await send(server.url, "POST", "/api/v1/auth/login", { json: { username: "owner", password: PASSWORD } });
      expect(login.status).toBe(200);
      const cookie = `latchkey_access=${login.cookies.latchkey_access!.value}`;
      const reply = await send(server.url, "POST", "/api/v1/auth/logout", { headers: { cookie } });
      expect(reply.status).toBe(403);
      expect(reply.body).toEqual({
        error: "csrf_rejected",
        message: "Cross-site request refused: a request authenticated by a cookie needs an Origin or Referer header, and this one has neither.",
      });
      expect((await send(server.url, "GET", "/api/v1/auth/me", { headers: { cookie } })).status).toBe(200);
    } finally {
      await server.stop();
      removeDataDir(dataDir);
    }
  });
});
