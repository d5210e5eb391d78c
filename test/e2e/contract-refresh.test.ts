/**
 * The OAuth2 token endpoint, refresh rotation with its grace window and reuse detection, header mode's sliding
 * session, and a session shorter than ACCESS_TOKEN_TTL: issue 2's contract rows, against the compiled binary in each
 * of the three TOKEN_DELIVERY modes (test/support/contract.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ACCESS_COOKIE, AUTH, MODES, REFRESH_COOKIE, jwtClaims, send, waitFor, type Reply } from "../support/client";
import { startServer, type RunningServer } from "../support/server";
import { ACCESS_TTL, BASE_ENV, PASSWORD, PUBLIC_URL, contractServers, expectError, expectInvalidToken, expectTokenResponse, stopAndRemove, testNothingSecretLogged } from "../support/contract";
import { openTestDatabase } from "../support/database";

for (const mode of MODES) {
  describe(`TOKEN_DELIVERY=${mode}`, () => {
    const { servers, clientOf, refreshWith, meWith } = contractServers(mode);

    describe("OAuth2 token endpoint", () => {
      beforeAll(async () => {
        expect((await clientOf(servers.open).register("gina", PASSWORD, "gina@example.net")).status).toBe(201);
      });

      const expectOAuthTokens = async (reply: Reply) => {
        expect(reply.status).toBe(200);
        expect(reply.headers.get("cache-control")).toBe("no-store");
        expect(Object.keys(reply.body).sort()).toEqual(["access_token", "expires_in", "refresh_token", "token_type"]);
        expect(reply.body).toMatchObject({ token_type: "bearer", expires_in: ACCESS_TTL });
        expect(reply.body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
        // /token reads credentials from its body only and answers in the body, in every mode.
        expect(reply.headers.getSetCookie()).toEqual([]);
        const me = await meWith(servers.open, reply.body.access_token);
        expect(me.status).toBe(200);
        expect(me.body.user.username).toBe("gina");
        return reply.body as { access_token: string; refresh_token: string };
      };

      test("password grant, form-encoded and JSON, by username or email", async () => {
        await expectOAuthTokens(await send(servers.open.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: "GINA", password: PASSWORD } }));
        await expectOAuthTokens(
          await send(servers.open.url, "POST", `${AUTH}/token`, { json: { grant_type: "password", username: "Gina@Example.net", password: PASSWORD } }),
        );
      });

      test("refresh_token grant rotates, form-encoded and JSON", async () => {
        const first = await expectOAuthTokens(
          await send(servers.open.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: "gina", password: PASSWORD } }),
        );
        const second = await expectOAuthTokens(
          await send(servers.open.url, "POST", `${AUTH}/token`, { form: { grant_type: "refresh_token", refresh_token: first.refresh_token } }),
        );
        expect(second.refresh_token).not.toBe(first.refresh_token);
        const third = await expectOAuthTokens(
          await send(servers.open.url, "POST", `${AUTH}/token`, { json: { grant_type: "refresh_token", refresh_token: second.refresh_token } }),
        );
        expect(third.refresh_token).not.toBe(second.refresh_token);
        expect(jwtClaims(third.access_token).sid).toBe(jwtClaims(first.access_token).sid);
      });

      test("400 with RFC 6749 error and error_description for each kind of bad request", async () => {
        const cases: [{ form?: Record<string, string>; json?: unknown; raw?: string; headers?: Record<string, string> }, string][] = [
          [{ form: { grant_type: "password", username: "gina", password: "wrong horse battery" } }, "invalid_grant"],
          [{ json: { grant_type: "password", username: "nobody-here", password: PASSWORD } }, "invalid_grant"],
          [{ form: { grant_type: "refresh_token", refresh_token: "A".repeat(43) } }, "invalid_grant"],
          [{ json: { grant_type: "refresh_token", refresh_token: "not-a-token" } }, "invalid_grant"],
          [{ form: { grant_type: "password", username: "gina" } }, "invalid_request"],
          [{ json: { grant_type: "password", password: PASSWORD } }, "invalid_request"],
          [{ form: { grant_type: "refresh_token" } }, "invalid_request"],
          [{ form: { username: "gina", password: PASSWORD } }, "invalid_request"],
          [{ raw: "{not json", headers: { "content-type": "application/json" } }, "invalid_request"],
          [{ raw: "null", headers: { "content-type": "application/json" } }, "invalid_request"],
          [{ raw: "[]", headers: { "content-type": "application/json" } }, "invalid_request"],
          [{ form: { grant_type: "client_credentials" } }, "unsupported_grant_type"],
          [{ json: { grant_type: "authorization_code", code: "abc" } }, "unsupported_grant_type"],
        ];
        for (const [request, code] of cases) {
          const reply = await send(servers.open.url, "POST", `${AUTH}/token`, request);
          expect({ status: reply.status, error: reply.body?.error }).toEqual({ status: 400, error: code });
          expect(typeof reply.body.error_description).toBe("string");
          expect(reply.body.error_description.length).toBeGreaterThan(0);
          expect(reply.body.access_token).toBeUndefined();
          expect(reply.text).not.toContain(PASSWORD);
          expect(reply.headers.getSetCookie()).toEqual([]);
        }
        // No account enumeration through the token endpoint either.
        const wrong = await send(servers.open.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: "gina", password: "wrong horse battery" } });
        const unknown = await send(servers.open.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: "nobody-here", password: "wrong horse battery" } });
        expect(wrong.text).toBe(unknown.text);
      });

      test("415 for a content type that is neither JSON nor a form", async () => {
        const reply = await send(servers.open.url, "POST", `${AUTH}/token`, {
          raw: "grant_type=password&username=gina",
          headers: { "content-type": "text/plain" },
        });
        expect(reply.status).toBe(415);
        expect(reply.body.error).toBe("unsupported_media_type");
      });
    });

    describe("refresh", () => {
      test("rotates: a new refresh token and a working access token for the same session", async () => {
        const client = clientOf(servers.open);
        const { claims } = expectTokenResponse(await client.register("hank", PASSWORD), mode, 201);
        const first = client.refresh!;
        const rotated = await client.refreshSession();
        const { claims: rotatedClaims, user } = expectTokenResponse(rotated, mode, 200);
        expect(user.username).toBe("hank");
        expect(client.refresh).not.toBe(first);
        expect(rotatedClaims.sid).toBe(claims.sid);
        expect(rotatedClaims.jti).not.toBe(claims.jti);
        const me = await client.me();
        expect(me.status).toBe(200);
        expect(me.body.user.username).toBe("hank");
      });

      test("401 invalid_refresh_token for a missing or unknown refresh token", async () => {
        const missing = await send(servers.open.url, "POST", `${AUTH}/refresh`, { json: {}, headers: { origin: PUBLIC_URL } });
        expectError(missing, 401, "invalid_refresh_token");
        expectError(await refreshWith(servers.open, "A".repeat(43)), 401, "invalid_refresh_token");
        expect(missing.headers.getSetCookie().filter((line) => !line.includes("Max-Age=0"))).toEqual([]);
      });

      test("grace window: the parent again yields the same child; only the latest child and its parent are accepted", async () => {
        const client = clientOf(servers.open);
        expectTokenResponse(await client.register("ivy", PASSWORD), mode, 201);
        const r0 = client.refresh!;
        expectTokenResponse(await client.refreshSession(), mode, 200);
        const r1 = client.refresh!;
        const a1 = client.access!;
        expect(r1).not.toBe(r0);

        // A lost response: the parent is presented again and gets the very same child plus a fresh access token.
        client.setRefresh(r0);
        const retried = await client.refreshSession();
        expectTokenResponse(retried, mode, 200);
        expect(client.refresh).toBe(r1);
        expect(client.access).not.toBe(a1);
        expect((await client.me()).status).toBe(200);

        expectTokenResponse(await client.refreshSession(), mode, 200);
        const r2 = client.refresh!;
        expect(r2).not.toBe(r1);
        // r1 is now the parent of the latest child: still within grace, so it yields r2.
        client.setRefresh(r1);
        expectTokenResponse(await client.refreshSession(), mode, 200);
        expect(client.refresh).toBe(r2);
        const a2 = client.access!;

        // r0 is neither the latest child nor its parent: reuse, and the whole session is revoked.
        const reused = await refreshWith(servers.open, r0);
        expectError(reused, 401, "refresh_token_reused");
        expectError(await refreshWith(servers.open, r2), 401, "invalid_refresh_token");
        expectInvalidToken(await meWith(servers.open, a2));
      });

      test("two concurrent refreshes with one token get the same child: one branch", async () => {
        const client = clientOf(servers.open);
        expectTokenResponse(await client.register("jack", PASSWORD), mode, 201);
        const r0 = client.refresh!;
        const [a, b] = await Promise.all([refreshWith(servers.open, r0), refreshWith(servers.open, r0)]);
        expect([a.status, b.status]).toEqual([200, 200]);
        const childOf = (reply: Reply) => (mode === "cookie" ? reply.cookies[REFRESH_COOKIE]!.value : reply.body.refresh_token);
        expect(childOf(a)).toBe(childOf(b));
        expect(childOf(a)).not.toBe(r0);
        const next = await refreshWith(servers.open, childOf(a));
        expect(next.status).toBe(200);
      });

      describe("reuse detection (REFRESH_REUSE_INTERVAL=0)", () => {
        test("a spent refresh token gets 401 refresh_token_reused and ends that whole session, not the user's others", async () => {
          const client = clientOf(servers.strict);
          expectTokenResponse(await client.register("kim", PASSWORD), mode, 201);
          const other = clientOf(servers.strict);
          expectTokenResponse(await other.login("kim", PASSWORD), mode, 200);
          const r0 = client.refresh!;
          const a0 = client.access!;
          expectTokenResponse(await client.refreshSession(), mode, 200);
          const r1 = client.refresh!;
          const a1 = client.access!;
          expect((await client.me()).status).toBe(200);

          const reused = await refreshWith(servers.strict, r0);
          expectError(reused, 401, "refresh_token_reused");
          expect(reused.headers.get("token")).toBeNull();
          expect(Object.values(reused.cookies).filter((cookie) => cookie.value !== "")).toEqual([]);

          expectError(await refreshWith(servers.strict, r1), 401, "invalid_refresh_token");
          expectInvalidToken(await meWith(servers.strict, a1));
          expectInvalidToken(await meWith(servers.strict, a0));
          // The user's other session is untouched.
          expect((await other.me()).status).toBe(200);
          expectTokenResponse(await other.refreshSession(), mode, 200);
        });

        test("through /token a spent refresh token is invalid_grant and ends the session", async () => {
          expect((await clientOf(servers.strict).register("lena", PASSWORD)).status).toBe(201);
          const granted = await send(servers.strict.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: "lena", password: PASSWORD } });
          expect(granted.status).toBe(200);
          const rotated = await send(servers.strict.url, "POST", `${AUTH}/token`, { form: { grant_type: "refresh_token", refresh_token: granted.body.refresh_token } });
          expect(rotated.status).toBe(200);
          const reused = await send(servers.strict.url, "POST", `${AUTH}/token`, { form: { grant_type: "refresh_token", refresh_token: granted.body.refresh_token } });
          expect({ status: reused.status, error: reused.body.error }).toEqual({ status: 400, error: "invalid_grant" });
          const child = await send(servers.strict.url, "POST", `${AUTH}/token`, { form: { grant_type: "refresh_token", refresh_token: rotated.body.refresh_token } });
          expect({ status: child.status, error: child.body.error }).toEqual({ status: 400, error: "invalid_grant" });
          expectInvalidToken(await meWith(servers.strict, rotated.body.access_token));
        });

        test("two concurrent refreshes with one token leave no two live branches", async () => {
          const client = clientOf(servers.strict);
          expectTokenResponse(await client.register("milo", PASSWORD), mode, 201);
          const r0 = client.refresh!;
          const results = await Promise.all([refreshWith(servers.strict, r0), refreshWith(servers.strict, r0)]);
          expect(results.map((reply) => reply.status).sort()).toEqual([200, 401]);
          const loser = results.find((reply) => reply.status === 401)!;
          expect(loser.body.error).toBe("refresh_token_reused");
          const winner = results.find((reply) => reply.status === 200)!;
          const child = mode === "cookie" ? winner.cookies[REFRESH_COOKIE]!.value : winner.body.refresh_token;
          expectError(await refreshWith(servers.strict, child), 401, "invalid_refresh_token");
        });
      });
    });

    if (mode === "header")
      describe("header mode's sliding session", () => {
        let sliding: RunningServer;
        beforeAll(async () => {
          sliding = await startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true", ACCESS_TOKEN_TTL: "2s", REFRESH_TOKEN_TTL: "3s" });
        });
        afterAll(async () => {
          await stopAndRemove(sliding);
        });

        test("a client that copies Token stays signed in past both TTLs while active, and is signed out after REFRESH_TOKEN_TTL idle", async () => {
          const client = clientOf(sliding);
          expect((await client.register("sam", PASSWORD)).status).toBe(201);
          const sid = jwtClaims(client.access!).sid;
          // Active for 7 s (more than twice each TTL), a request every quarter second, never calling /refresh.
          for (const until = Date.now() + 7000; Date.now() < until; await Bun.sleep(250)) {
            const reply = await client.me();
            expect(reply.status).toBe(200);
            expect(jwtClaims(client.access!).sid).toBe(sid);
          }
          // Idle: wait, without touching the server, until the session's end has passed...
          const db = await openTestDatabase(sliding.dataDir);
          try {
            const sessionEnd = async () => (await db.get<{ expires_at: number }>("SELECT expires_at FROM sessions WHERE id = ?", sid))!.expires_at;
            await waitFor(sessionEnd, (end) => end < Date.now(), 5000);
          } finally {
            await db.close();
          }
          // ...then the last sliding token, which never outlives its session, is refused.
          expectInvalidToken(await client.me());
        });
      });

    describe("a session shorter than ACCESS_TOKEN_TTL", () => {
      let short: RunningServer;
      beforeAll(async () => {
        short = await startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true", ACCESS_TOKEN_TTL: "1h", REFRESH_TOKEN_TTL: "10m" });
      });
      afterAll(async () => {
        await stopAndRemove(short);
      });

      test("no access token outlives its session, sliding ones included", async () => {
        const client = clientOf(short);
        const registered = await client.register("vera", PASSWORD);
        expect(registered.status).toBe(201);
        expect(registered.body.expires_in).toBeLessThanOrEqual(600);
        const tokens = [client.access!];
        if (mode === "cookie") expect(Number(registered.cookies[ACCESS_COOKIE]!.attributes["max-age"])).toBeLessThanOrEqual(600);
        for (let request = 0; request < 2; request++) {
          expect((await client.me()).status).toBe(200);
          tokens.push(client.access!);
        }
        for (const token of tokens) {
          const claims = jwtClaims(token);
          expect(claims.exp - claims.iat).toBeLessThanOrEqual(600);
        }
      });
    });

    testNothingSecretLogged(servers);
  });
}
