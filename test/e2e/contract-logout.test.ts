/**
 * Logout, the protected routes, and cookie mode's attributes and CSRF check: issue 2's contract rows, against the
 * compiled binary in each of the three TOKEN_DELIVERY modes (test/support/contract.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ACCESS_COOKIE, AUTH, Client, MODES, REFRESH_COOKIE, credential, jwtClaims, send, signJwt } from "../support/client";
import { startServer, type RunningServer } from "../support/server";
import { ACCESS_TTL, APP_ORIGIN, BASE_ENV, PASSWORD, PUBLIC_URL, contractServers, expectCookieAttributes, expectError, expectInvalidToken, expectTokenResponse, stopAndRemove, testNothingSecretLogged } from "../support/contract";
import { generatedSecret } from "../support/database";

for (const mode of MODES) {
  describe(`TOKEN_DELIVERY=${mode}`, () => {
    const { servers, clientOf, refreshWith, meWith } = contractServers(mode);

    describe("logout and protected routes", () => {
      test("logout ends the session at once: access token 401 invalid_token, refresh token 401; other sessions live", async () => {
        const client = clientOf(servers.open);
        expectTokenResponse(await client.register("nina", PASSWORD), mode, 201);
        const other = clientOf(servers.open);
        expectTokenResponse(await other.login("nina", PASSWORD), mode, 200);
        // A first authenticated request, so a cached session lookup exists that logout must invalidate.
        expect((await client.me()).status).toBe(200);
        const access = client.access!;
        const refresh = client.refresh!;

        const logout = await client.logout();
        expect(logout.status).toBe(200);
        expect(Object.keys(logout.body)).toEqual(["message"]);
        expect(typeof logout.body.message).toBe("string");
        expect(logout.headers.get("token")).toBeNull();
        if (mode === "cookie") {
          expectCookieAttributes(logout, false, true);
          expect(client.jar.size).toBe(0);
        } else {
          expect(logout.headers.getSetCookie()).toEqual([]);
        }

        expectInvalidToken(await meWith(servers.open, access));
        expectInvalidToken(await send(servers.open.url, "GET", `${AUTH}/validate`, { headers: credential(mode, access) }));
        expectInvalidToken(await send(servers.open.url, "POST", `${AUTH}/logout`, { headers: { ...credential(mode, access), origin: PUBLIC_URL } }));
        expectError(await refreshWith(servers.open, refresh), 401, "invalid_refresh_token");
        expect((await other.me()).status).toBe(200);
      });

      test("no credential: 401 unauthorized with a Bearer challenge; a malformed or forged one: 401 invalid_token", async () => {
        for (const path of ["/me", "/validate"]) {
          const none = await send(servers.open.url, "GET", `${AUTH}${path}`);
          expectError(none, 401, "unauthorized");
          expect(none.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
          expect(none.headers.get("token")).toBeNull();
        }
        expectError(await send(servers.open.url, "POST", `${AUTH}/logout`, { headers: { origin: PUBLIC_URL } }), 401, "unauthorized");

        const client = clientOf(servers.open);
        expectTokenResponse(await client.register("oscar", PASSWORD), mode, 201);
        const [header, payload, signature] = client.access!.split(".");
        const forged = `${header}.${Buffer.from(JSON.stringify({ ...jwtClaims(client.access!), sub: "someone-else" })).toString("base64url")}.${signature}`;
        for (const token of ["not.a.jwt", forged, `${header}.${payload}.`, `${client.access}x`]) {
          const reply = await meWith(servers.open, token);
          expectInvalidToken(reply);
          expect(reply.headers.get("token")).toBeNull();
        }
      });

      test("access JWTs: HS256 with the server's key, its issuer, unexpired and of a live session; anything else 401", async () => {
        const client = clientOf(servers.open);
        expectTokenResponse(await client.register("olga", PASSWORD), mode, 201);
        const claims = jwtClaims(client.access!);
        const key = await generatedSecret(servers.open.dataDir);
        const now = Math.floor(Date.now() / 1000);
        // Control: the genuine claims signed with the genuine key pass, so each refusal below is about one change.
        expect((await meWith(servers.open, signJwt({ ...claims, jti: crypto.randomUUID() }, key))).status).toBe(200);
        const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${client.access!.split(".")[1]}.`;
        const refused = [
          none,
          signJwt(claims, key, "HS512"),
          signJwt(claims, key, "HS384"),
          signJwt(claims, "another secret of at least 32 bytes!"),
          signJwt({ ...claims, iss: "http://elsewhere.test" }, key),
          signJwt({ ...claims, iat: now - 7200, exp: now - 3600 }, key),
          signJwt({ ...claims, sid: "no-such-session" }, key),
          signJwt({ sub: claims.sub, iss: claims.iss, iat: claims.iat, exp: claims.exp, jti: claims.jti }, key),
        ];
        for (const token of refused) expectInvalidToken(await meWith(servers.open, token));
      });

      test("every authenticated answer is Cache-Control: no-store (it is about one user)", async () => {
        const client = clientOf(servers.open);
        expect((await client.register("uncached", PASSWORD)).status).toBe(201);
        for (const path of ["/me", "/validate", "/sessions", "/keys", "/events"]) {
          const reply = await client.request("GET", `${AUTH}${path}`);
          expect({ path, status: reply.status, cacheControl: reply.headers.get("cache-control") }).toEqual({ path, status: 200, cacheControl: "no-store" });
        }
      });

      test("the access token is read only where this mode carries it", async () => {
        const client = clientOf(servers.open);
        expectTokenResponse(await client.register("pia", PASSWORD), mode, 201);
        const access = client.access!;
        expect((await meWith(servers.open, access)).status).toBe(200);
        const elsewhere: Record<string, string>[] = [];
        if (mode !== "header") elsewhere.push({ token: access });
        if (mode !== "cookie") elsewhere.push({ cookie: `${ACCESS_COOKIE}=${access}` });
        for (const headers of elsewhere) expectError(await send(servers.open.url, "GET", `${AUTH}/me`, { headers }), 401, "unauthorized");
      });

      test(mode === "header" ? "every authenticated response carries a fresh, working Token; a client copying it stays signed in" : "no Token response header outside header mode", async () => {
        const client = clientOf(servers.open);
        const { claims: first } = expectTokenResponse(await client.register("quinn", PASSWORD), mode, 201);
        let previous = client.access!;
        let previousClaims = first;
        const seen = new Set([previous]);
        for (let request = 0; request < 6; request++) {
          const reply = request % 2 === 0 ? await client.me() : await client.validate();
          expect(reply.status).toBe(200);
          const fresh = reply.headers.get("token");
          if (mode !== "header") {
            expect(fresh).toBeNull();
            continue;
          }
          expect(fresh).not.toBeNull();
          expect(reply.headers.get("cache-control")).toBe("no-store");
          expect(seen.has(fresh!)).toBe(false);
          seen.add(fresh!);
          const claims = jwtClaims(fresh!);
          expect(claims.sid).toBe(first.sid);
          expect(claims.sub).toBe(first.sub);
          expect(claims.exp).toBeGreaterThanOrEqual(previousClaims.exp);
          expect(claims.exp - claims.iat).toBe(ACCESS_TTL);
          // The fresh token works on its own, and the client presented it (not the first one) next time.
          expect((await meWith(servers.open, fresh!)).status).toBe(200);
          expect(client.access).toBe(fresh!);
          previous = fresh!;
          previousClaims = claims;
        }
        if (mode === "header") expect(seen.size).toBe(7);
        const health = await send(servers.open.url, "GET", "/health", { headers: credential(mode, previous) });
        expect(health.status).toBe(200);
        expect(health.body).toMatchObject({ status: "ok" });
        expect(health.headers.get("token")).toBeNull();
      });
    });

    if (mode === "cookie") {
      describe("cookie mode", () => {
        test("login and refresh set both cookies with their exact attributes (PUBLIC_URL http: no Secure); tokens never in a body", async () => {
          expect((await clientOf(servers.open).register("rosa", PASSWORD)).status).toBe(201);
          const client = clientOf(servers.open);
          const login = await client.login("rosa", PASSWORD);
          expectTokenResponse(login, mode, 200, { secure: false });
          const refresh = await client.refreshSession();
          expectTokenResponse(refresh, mode, 200, { secure: false });
          expect(refresh.cookies[REFRESH_COOKIE]!.value).not.toBe(login.cookies[REFRESH_COOKIE]!.value);
          for (const reply of [await client.me(), await client.validate()]) {
            expect(reply.status).toBe(200);
            expect(reply.text).not.toContain(client.jar.get(ACCESS_COOKIE)!.value);
            expect(reply.text).not.toContain(client.jar.get(REFRESH_COOKIE)!.value);
            expect(reply.headers.getSetCookie()).toEqual([]);
          }
        });

        test("CSRF: a cookie-authenticated POST from a foreign or unknown origin gets 403 csrf_rejected and changes nothing", async () => {
          const client = clientOf(servers.open);
          expectTokenResponse(await client.register("sam", PASSWORD), mode, 201);
          const refused: Record<string, string>[] = [
            { origin: "https://evil.example" },
            { origin: PUBLIC_URL, "sec-fetch-site": "cross-site" },
            { origin: APP_ORIGIN, "sec-fetch-site": "cross-site" },
            { origin: "null" },
            { origin: `${PUBLIC_URL}.evil.example` },
            { origin: "http://latchkey.test:8080" },
            { origin: "https://latchkey.test" },
            { referer: "https://evil.example/page" },
            {}, // neither Origin nor Referer
          ];
          client.origin = undefined;
          for (const headers of refused) {
            for (const path of ["/logout", "/refresh"]) {
              const reply = await client.request("POST", `${AUTH}${path}`, { json: {}, headers });
              expectError(reply, 403, "csrf_rejected");
              expect(reply.headers.getSetCookie()).toEqual([]);
            }
          }
          // Nothing changed: the session and its refresh token are intact, and reads need no Origin.
          const read = await client.request("GET", `${AUTH}/me`, { headers: { origin: "https://evil.example" } });
          expect(read.status).toBe(200);
          expect((await client.validate()).status).toBe(200);

          const allowed: Record<string, string>[] = [
            { origin: PUBLIC_URL },
            { origin: APP_ORIGIN },
            { origin: "http://localhost:5173" },
            { referer: `${PUBLIC_URL}/account/settings` },
            { origin: PUBLIC_URL, "sec-fetch-site": "same-origin" },
          ];
          for (const headers of allowed) expectTokenResponse(await client.refreshSession(headers), mode, 200);
          const logout = await client.logout({ origin: APP_ORIGIN });
          expect(logout.status).toBe(200);
          expect(client.jar.size).toBe(0);
          expectError(await client.me(), 401, "unauthorized");
        });

        test("a credential cookie sent twice (one planted for a parent domain or a longer path) is refused, not picked", async () => {
          const client = clientOf(servers.open);
          expect((await client.register("twice", PASSWORD)).status).toBe(201);
          const mine = client.access!;
          const other = clientOf(servers.open);
          expect((await other.register("planter", PASSWORD)).status).toBe(201);
          for (const cookie of [`${ACCESS_COOKIE}=${other.access}; ${ACCESS_COOKIE}=${mine}`, `${ACCESS_COOKIE}=${mine}; ${ACCESS_COOKIE}=${other.access}`])
            expectInvalidToken(await send(servers.open.url, "GET", `${AUTH}/me`, { headers: { cookie } }));
          expect((await meWith(servers.open, mine)).body.user.username).toBe("twice");
          const refreshes = await send(servers.open.url, "POST", `${AUTH}/refresh`, {
            json: {},
            headers: { origin: PUBLIC_URL, cookie: `${REFRESH_COOKIE}=aaaa; ${REFRESH_COOKIE}=bbbb` },
          });
          expectError(refreshes, 401, "invalid_refresh_token");
        });

        test("the Origin check applies to cookie credentials only: a bearer-authenticated POST from anywhere works", async () => {
          const granted = await send(servers.open.url, "POST", `${AUTH}/token`, { json: { grant_type: "password", username: "sam", password: PASSWORD } });
          expect(granted.status).toBe(200);
          const logout = await send(servers.open.url, "POST", `${AUTH}/logout`, {
            headers: { authorization: `Bearer ${granted.body.access_token}`, origin: "https://evil.example" },
          });
          expect(logout.status).toBe(200);
          expectInvalidToken(await send(servers.open.url, "GET", `${AUTH}/me`, { headers: { authorization: `Bearer ${granted.body.access_token}` } }));
        });

        test("register and the second sign-in step from a foreign origin are refused (login CSRF) and set no cookie", async () => {
          const registered = await send(servers.open.url, "POST", `${AUTH}/register`, {
            json: { username: "planted", password: PASSWORD },
            headers: { origin: "https://evil.example" },
          });
          expectError(registered, 403, "csrf_rejected");
          expect(registered.headers.getSetCookie()).toEqual([]);
          // No account was made: the name is still free for its owner.
          expect((await send(servers.open.url, "POST", `${AUTH}/register`, { json: { username: "planted", password: PASSWORD }, headers: { origin: PUBLIC_URL } })).status).toBe(201);
          const verified = await send(servers.open.url, "POST", `${AUTH}/login/verify`, {
            json: { challenge_id: "x".repeat(43), code: "123456" },
            headers: { "sec-fetch-site": "cross-site" },
          });
          expectError(verified, 403, "csrf_rejected");
          expect(verified.headers.getSetCookie()).toEqual([]);
        });

        test("login from a foreign origin is refused (login CSRF) and sets no cookie", async () => {
          const reply = await send(servers.open.url, "POST", `${AUTH}/login`, {
            json: { username: "sam", password: PASSWORD },
            headers: { origin: "https://evil.example" },
          });
          expectError(reply, 403, "csrf_rejected");
          expect(reply.headers.getSetCookie()).toEqual([]);
        });

        describe("PUBLIC_URL https", () => {
          let secure: RunningServer;
          beforeAll(async () => {
            secure = await startServer({ ...BASE_ENV, PUBLIC_URL: "https://auth.example.test", TOKEN_DELIVERY: "cookie", ALLOW_REGISTRATION: "true" });
          });
          afterAll(async () => {
            await stopAndRemove(secure);
          });

          test("both cookies are Secure on register, login, refresh and logout", async () => {
            const client = new Client(secure.url, "cookie", { origin: "https://auth.example.test" });
            const registered = await client.register("tess", PASSWORD);
            expect(registered.status).toBe(201);
            expectCookieAttributes(registered, true);
            expectCookieAttributes(await client.login("tess", PASSWORD), true);
            expectCookieAttributes(await client.refreshSession(), true);
            const logout = await client.logout();
            expect(logout.status).toBe(200);
            expectCookieAttributes(logout, true, true);
          });
        });
      });
    }


    testNothingSecretLogged(servers);
  });
}
