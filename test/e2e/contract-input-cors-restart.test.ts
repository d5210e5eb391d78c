/**
 * Every bad-input row, CORS, and a restart on the same DATA_DIR: issue 2's contract rows, against the compiled
 * binary in each of the three TOKEN_DELIVERY modes (test/support/contract.ts).
 */
import { describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { AUTH, Client, MODES, send, type RawBody } from "../support/client";
import { removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";
import { APP_ORIGIN, BASE_ENV, PASSWORD, PUBLIC_URL, contractServers, expectError, expectTokenResponse, stopAndRemove, testNothingSecretLogged } from "../support/contract";
import { expectControlCharactersRefused } from "../support/control-characters";
import { TEST_ENGINE } from "../support/engine";
import { generatedSecret } from "../support/database";

for (const mode of MODES) {
  describe(`TOKEN_DELIVERY=${mode}`, () => {
    const { servers, clientOf } = contractServers(mode);

    describe("bad input", () => {
      const post = (path: string, raw: RawBody, contentType: string) =>
        send(servers.open.url, "POST", `${AUTH}${path}`, { raw, headers: { "content-type": contentType, origin: PUBLIC_URL } });

      test("malformed JSON: 400 invalid_json", async () => {
        for (const path of ["/register", "/login", "/refresh"]) {
          for (const raw of ["{not json", '{"username": "x",', "{'username': 'x'}"]) {
            const reply = await post(path, raw, "application/json");
            expectError(reply, 400, "invalid_json");
            expect(Object.keys(reply.body).sort()).toEqual(["error", "message"]);
          }
        }
      });

      test("unsupported content type: 415", async () => {
        for (const path of ["/register", "/login", "/refresh"]) {
          for (const [raw, type] of [
            ['{"username":"x","password":"y"}', "text/plain"],
            ["username=x&password=y", "application/x-www-form-urlencoded"],
            ["<login/>", "application/xml"],
          ]) {
            const reply = await post(path, raw!, type!);
            expectError(reply, 415, "unsupported_media_type");
          }
        }
      });

      test("a body over 64 KiB: 413, declared or chunked; exactly 64 KiB is read", async () => {
        const over = JSON.stringify({ username: "nobody-here", password: PASSWORD, pad: "z".repeat(65_536) });
        for (const path of ["/register", "/login", "/refresh", "/token"]) {
          expectError(await post(path, over, "application/json"), 413, "payload_too_large");
        }
        // A stream of unknown length goes out chunked, with no Content-Length to refuse it by.
        const chunked = new ReadableStream<Uint8Array>({
          start(controller) {
            const bytes = new TextEncoder().encode(over);
            for (let at = 0; at < bytes.length; at += 8192) controller.enqueue(bytes.slice(at, at + 8192));
            controller.close();
          },
        });
        expectError(await post("/login", chunked, "application/json"), 413, "payload_too_large");

        const base = JSON.stringify({ username: "nobody-here", password: PASSWORD, pad: "" });
        const exact = JSON.stringify({ username: "nobody-here", password: PASSWORD, pad: "z".repeat(65_536 - base.length) });
        expect(Buffer.byteLength(exact)).toBe(65_536);
        expectError(await post("/login", exact, "application/json"), 401, "invalid_credentials");
      });

      test("unknown route: 404 not_found", async () => {
        for (const [method, path] of [
          ["GET", "/nope"],
          ["GET", "/api/v1/nope"],
          ["POST", `${AUTH}/nope`],
          ["GET", "/api/v2/auth/me"],
        ] as const) {
          const reply = await send(servers.open.url, method, path, method === "POST" ? { json: {} } : {});
          expectError(reply, 404, "not_found");
          expect(Object.keys(reply.body).sort()).toEqual(["error", "message"]);
        }
      });

      test("known path, wrong method: 405 method_not_allowed with Allow", async () => {
        for (const [method, path, allow] of [
          ["GET", `${AUTH}/login`, "POST"],
          ["DELETE", `${AUTH}/me`, "GET, HEAD"],
          ["PUT", "/api/v1/admin/users/0190a0b0-0000-7000-8000-000000000000", "DELETE, GET, HEAD, PATCH"],
        ] as const) {
          const reply = await send(servers.open.url, method, path);
          expectError(reply, 405, "method_not_allowed");
          expect(reply.headers.get("allow")).toBe(allow);
        }
      });

      test("GET / links to the docs (JSON), and sends a browser to its account page", async () => {
        const api = await send(servers.open.url, "GET", "/");
        expect(api.status).toBe(200);
        expect(api.body).toMatchObject({ docs: "/docs", openapi: "/docs/json", health: "/health", sign_in: "/login" });
        const browser = await send(servers.open.url, "GET", "/", { headers: { accept: "text/html,application/xhtml+xml" } });
        expect(browser.status).toBe(302);
        expect(browser.headers.get("location")).toBe("/account");
      });

      test("bodies of the wrong JSON type get 422, never a 500", async () => {
        for (const raw of ["null", "[]", '"text"', "42", "true", '{"username":{"$ne":null},"password":["x"]}', ""]) {
          for (const path of ["/register", "/login"]) {
            const reply = await post(path, raw, "application/json");
            expectError(reply, 422, "validation_failed");
            expect(reply.body.details.length).toBeGreaterThan(0);
          }
        }
        expectError(await post("/refresh", '{"refresh_token": 42}', "application/json"), 422, "validation_failed");
      });
    });

    test("CORS: ALLOWED_ORIGINS get credentialed CORS (header mode exposes Token); other origins get none", async () => {
      const preflight = await send(servers.open.url, "OPTIONS", `${AUTH}/me`, {
        headers: { origin: APP_ORIGIN, "access-control-request-method": "GET", "access-control-request-headers": "token, authorization, content-type" },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
      expect(preflight.headers.get("access-control-allow-credentials")).toBe("true");
      const allowedHeaders = (preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/\s*,\s*/);
      expect(allowedHeaders).toEqual(expect.arrayContaining(mode === "header" ? ["token", "content-type"] : ["content-type"]));

      const client = new Client(servers.open.url, mode, { origin: APP_ORIGIN });
      expect((await client.register("cora", PASSWORD)).status).toBe(201);
      const me = await client.me();
      expect(me.status).toBe(200);
      expect(me.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
      expect(me.headers.get("access-control-allow-credentials")).toBe("true");
      if (mode === "header") expect((me.headers.get("access-control-expose-headers") ?? "").toLowerCase()).toContain("token");

      const foreign = await send(servers.open.url, "OPTIONS", `${AUTH}/me`, { headers: { origin: "https://evil.example", "access-control-request-method": "GET" } });
      expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
      const foreignGet = await send(servers.open.url, "GET", "/health", { headers: { origin: "https://evil.example" } });
      expect(foreignGet.headers.get("access-control-allow-origin")).toBeNull();
    });

    test("restart on the same DATA_DIR keeps users, sessions and the generated secret (DATA_DIR/jwt_secret, mode 0600; on PostgreSQL in the database)", async () => {
      const dataDir = tempDataDir();
      const secretPath = join(dataDir, "jwt_secret");
      const storedSecret = () => {
        if (TEST_ENGINE === "sqlite") expect(statSync(secretPath).mode & 0o777).toBe(0o600);
        else expect(existsSync(secretPath)).toBe(false);
        return generatedSecret(dataDir);
      };
      let server: RunningServer | undefined = await startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true" }, dataDir);
      try {
        const client = clientOf(server);
        const { user, claims } = expectTokenResponse(await client.register("uma", PASSWORD, "uma@example.com"), mode, 201);
        const secret = await storedSecret();
        expect(secret.trim().length).toBeGreaterThanOrEqual(43);
        expect(await server.stop()).toBe(0);
        server = undefined;

        server = await startServer({ ...BASE_ENV, TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "false" }, dataDir);
        expect(await storedSecret()).toBe(secret);

        // The access token issued before the restart still validates, the session and its refresh token live on.
        const again = new Client(server.url, mode, { origin: PUBLIC_URL });
        again.setAccess(client.access!);
        again.setRefresh(client.refresh!);
        const validate = await again.validate();
        expect(validate.status).toBe(200);
        expect(validate.body).toMatchObject({ user_id: user.id, username: "uma", session_id: claims.sid });
        expectTokenResponse(await again.refreshSession(), mode, 200);
        expect((await again.me()).body.user.id).toBe(user.id);

        const login = await clientOf(server).login("UMA@example.com", PASSWORD);
        expect(expectTokenResponse(login, mode, 200).user.id).toBe(user.id);
        expectError(await clientOf(server).register("uma2", PASSWORD), 403, "registration_disabled");
      } finally {
        if (server) expect(await server.stop()).toBe(0);
        removeDataDir(dataDir);
      }
    });

    testNothingSecretLogged(servers);
  });
}

describe(`control characters in stored strings on ${TEST_ENGINE} (issue 22: a NUL byte was a 500 on PostgreSQL)`, () => {
  test("every stored or looked-up string field refuses them: 422 naming the field, 400 invalid_request at /token; nothing is logged as an internal error", async () => {
    const server = await startServer({ ...BASE_ENV, ALLOW_REGISTRATION: "true" });
    try {
      const fetcher = async (path: string, init: RequestInit) => {
        const response = await fetch(`${server.url}${path}`, { ...init, headers: { origin: PUBLIC_URL, ...(init.headers as Record<string, string>) } });
        const text = await response.text();
        return { status: response.status, body: text.startsWith("{") ? JSON.parse(text) : text };
      };
      const signUp = async (username: string) =>
        (await fetcher(`${AUTH}/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password: PASSWORD }) })).body;
      await signUp("boss");
      expect((await runCli(["user", "roles", "boss", "admin"], { DATA_DIR: server.dataDir })).code).toBe(0);
      const admin = (await fetcher(`${AUTH}/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "boss", password: PASSWORD }) })).body;
      const user = await signUp("member");
      await expectControlCharactersRefused(fetcher, { admin: admin.access_token, user: user.access_token, userId: user.user.id });
      expect(server.output()).not.toContain("internal_error");
    } finally {
      await stopAndRemove(server);
    }
  });
});
