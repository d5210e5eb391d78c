/**
 * Registration (ALLOW_REGISTRATION) and login: issue 2's contract rows, against the compiled binary in each of the
 * three TOKEN_DELIVERY modes (test/support/contract.ts).
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { AUTH, MODES, jwtClaims, send, waitFor } from "../support/client";
import { PASSWORD, contractServers, disableUser, expectError, expectInvalidToken, expectTokenResponse, testNothingSecretLogged } from "../support/contract";

for (const mode of MODES) {
  describe(`TOKEN_DELIVERY=${mode}`, () => {
    const { servers, clientOf, refreshWith } = contractServers(mode);

    describe("registration", () => {
      test("closed by default: 403 registration_disabled, no account, no credentials", async () => {
        const client = clientOf(servers.closed);
        const refused = await client.register("closed-door", PASSWORD, "closed@example.com");
        expectError(refused, 403, "registration_disabled");
        expect(Object.keys(refused.body).sort()).toEqual(["error", "message"]);
        expect(refused.headers.getSetCookie()).toEqual([]);
        expect(refused.headers.get("token")).toBeNull();
        expect(client.access).toBeUndefined();
        expectError(await client.login("closed-door", PASSWORD), 401, "invalid_credentials");
      });

      test("open: 201 with the mode's token response; username NFKC + lower-cased, email lower-cased", async () => {
        const client = clientOf(servers.open);
        const registered = await client.register("ＡＬＩＣＥ.Smith", PASSWORD, "Alice.Smith@Example.COM");
        const { user, claims } = expectTokenResponse(registered, mode, 201);
        expect(user).toMatchObject({ username: "alice.smith", email: "alice.smith@example.com", email_verified: false, roles: [] });
        expect(new Date(user.created_at).toISOString()).toBe(user.created_at);

        const me = await client.me();
        expect(me.status).toBe(200);
        expect(me.body).toEqual({ user, second_factors: { totp: false, recovery_codes_left: 0 } });

        const presented = client.access!;
        const validate = await client.validate();
        expect(validate.status).toBe(200);
        expect(validate.body.expires_at).toBe(new Date(jwtClaims(presented).exp * 1000).toISOString());
        expect(validate.body).toMatchObject({
          user_id: user.id,
          username: "alice.smith",
          email: "alice.smith@example.com",
          roles: [],
          session_id: claims.sid,
        });
        expect(validate.text).not.toContain(client.access!);
      });

      test("409 username_taken and email_taken, case-insensitively, with no credentials", async () => {
        const client = clientOf(servers.open);
        expect((await client.register("taken", PASSWORD, "taken@example.com")).status).toBe(201);
        const stranger = clientOf(servers.open);
        const sameName = await stranger.register("TAKEN", PASSWORD, "fresh@example.com");
        expectError(sameName, 409, "username_taken");
        const sameEmail = await stranger.register("someone-else", PASSWORD, "Taken@EXAMPLE.com");
        expectError(sameEmail, 409, "email_taken");
        for (const reply of [sameName, sameEmail]) {
          expect(reply.headers.getSetCookie()).toEqual([]);
          expect(reply.headers.get("token")).toBeNull();
        }
        expect(stranger.access).toBeUndefined();
      });

      test("422 validation_failed lists {field, message} for each bad field and never echoes the password", async () => {
        const cases: [Record<string, unknown>, string[]][] = [
          [{ username: "-dash-first", password: "secret7", email: "not-an-email" }, ["username", "password", "email"]],
          [{ username: "ab", password: PASSWORD }, ["username"]],
          [{ username: "x".repeat(33), password: PASSWORD }, ["username"]],
          [{ username: "has space", password: PASSWORD }, ["username"]],
          [{ password: PASSWORD }, ["username"]],
          [{ username: "no-password" }, ["password"]],
          [{ username: "typed-password", password: 12345678901 }, ["password"]],
          [{ username: "short-password", password: "Pw0rd!x" }, ["password"]],
        ];
        const client = clientOf(servers.open);
        for (const [body, fields] of cases) {
          const reply = await client.request("POST", `${AUTH}/register`, { json: body });
          expectError(reply, 422, "validation_failed");
          expect(Object.keys(reply.body).sort()).toEqual(["details", "error", "message"]);
          for (const detail of reply.body.details) {
            expect(Object.keys(detail).sort()).toEqual(["field", "message"]);
            expect(typeof detail.field).toBe("string");
            expect(typeof detail.message).toBe("string");
          }
          expect(reply.body.details.map((detail: { field: string }) => detail.field).sort()).toEqual([...fields].sort());
          if (body.password !== undefined) expect(reply.text).not.toContain(String(body.password));
          expect(reply.headers.getSetCookie()).toEqual([]);
        }
        // Nothing was created by the refused attempts.
        expectError(await client.login("short-password", "Pw0rd!x"), 401, "invalid_credentials");
      });

      test("passwords are measured in UTF-8 bytes: 1,024 accepted, 1,025 refused with 422 on register, login and /token", async () => {
        const client = clientOf(servers.open);
        const max = "é".repeat(512); // 512 characters, 1,024 bytes
        expect(Buffer.byteLength(max)).toBe(1024);
        expectTokenResponse(await client.register("bytes-max", max), mode, 201);
        expect((await clientOf(servers.open).login("bytes-max", max)).status).toBe(200);

        const over = `${max}x`; // 513 characters, 1,025 bytes
        for (const path of ["register", "login"]) {
          const reply = await clientOf(servers.open).request("POST", `${AUTH}/${path}`, { json: { username: "bytes-over", password: over } });
          expectError(reply, 422, "validation_failed");
          expect(reply.body.details.map((detail: { field: string }) => detail.field)).toEqual(["password"]);
          expect(reply.text).not.toContain(over);
        }
        const viaToken = await send(servers.open.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: "bytes-max", password: over } });
        expect(viaToken.status).toBe(400);
        expect(viaToken.body.error).toBe("invalid_request");

        // The limit applies to the password as sent, before NFKC, the same way wherever a password goes: "ﬁ" is
        // 3 bytes that normalise to the 2 of "fi", and a password that could be set can always be typed.
        const ligatures = "\ufb01".repeat(341); // 1,023 bytes as sent, 682 once normalised
        expectTokenResponse(await clientOf(servers.open).register("ligatures", ligatures), mode, 201);
        expect((await clientOf(servers.open).login("ligatures", ligatures)).status).toBe(200);
        expect((await clientOf(servers.open).login("ligatures", "fi".repeat(341))).status).toBe(200);
        const tooLong = "\ufb01".repeat(342); // 1,026 bytes as sent, 684 once normalised
        expectError(await clientOf(servers.open).register("ligatures-over", tooLong), 422, "validation_failed");
      });
    });

    describe("login", () => {
      let user: { id: string };
      beforeAll(async () => {
        user = expectTokenResponse(await clientOf(servers.open).register("dora", PASSWORD, "Dora@Example.org"), mode, 201).user;
      });

      test("by username or email, in any case, in either field; each login is a new session", async () => {
        const sessions = new Set<string>();
        for (const json of [
          { username: "DORA", password: PASSWORD },
          { username: "dora@EXAMPLE.org", password: PASSWORD },
          { email: "DoRa@example.ORG", password: PASSWORD },
          { email: "Dora", password: PASSWORD },
        ]) {
          const client = clientOf(servers.open);
          const reply = await client.request("POST", `${AUTH}/login`, { json });
          const { user: loggedIn, claims } = expectTokenResponse(reply, mode, 200);
          expect(loggedIn).toMatchObject({ id: user.id, username: "dora", email: "dora@example.org" });
          sessions.add(claims.sid);
          const me = await client.me();
          expect(me.status).toBe(200);
          expect(me.body.user.id).toBe(user.id);
        }
        expect(sessions.size).toBe(4);
      });

      test("passwords are NFKC-normalised but never case-folded", async () => {
        expectTokenResponse(await clientOf(servers.open).register("fiona", "ﬁne passphrase"), mode, 201);
        expect((await clientOf(servers.open).login("fiona", "fine passphrase")).status).toBe(200);
        expectTokenResponse(await clientOf(servers.open).register("fabian", "fine passphrase"), mode, 201);
        expect((await clientOf(servers.open).login("fabian", "ﬁne passphrase")).status).toBe(200);
        expectError(await clientOf(servers.open).login("fiona", "FINE PASSPHRASE"), 401, "invalid_credentials");
        expectError(await clientOf(servers.open).login("dora", PASSWORD.toUpperCase()), 401, "invalid_credentials");
      });

      test("unknown user and wrong password get a byte-identical 401 invalid_credentials", async () => {
        const attempts = await Promise.all(
          [
            ["nobody-here", PASSWORD],
            ["nobody@example.org", PASSWORD],
            ["dora", "wrong horse battery"],
            ["dora@example.org", "wrong horse battery"],
          ].map(([login, password]) => clientOf(servers.open).login(login!, password!)),
        );
        for (const reply of attempts) {
          expectError(reply, 401, "invalid_credentials");
          expect(reply.text).toBe(attempts[0]!.text);
          expect(reply.headers.get("content-type")).toBe(attempts[0]!.headers.get("content-type"));
          expect(reply.headers.getSetCookie()).toEqual([]);
          expect(reply.headers.get("token")).toBeNull();
        }
        expect(Object.keys(attempts[0]!.body).sort()).toEqual(["error", "message"]);
      });

      test("a disabled account: wrong password still 401, 403 account_disabled only with the right one; its sessions end", async () => {
        const client = clientOf(servers.open);
        expectTokenResponse(await client.register("frank", PASSWORD), mode, 201);
        expect((await client.me()).status).toBe(200);
        const refreshToken = client.refresh!;
        const unknown = await clientOf(servers.open).login("nobody-at-all", PASSWORD);

        await disableUser(servers.open.dataDir, "frank");

        const wrong = await clientOf(servers.open).login("frank", "wrong horse battery");
        expectError(wrong, 401, "invalid_credentials");
        expect(wrong.text).toBe(unknown.text);
        const right = await clientOf(servers.open).login("frank", PASSWORD);
        expectError(right, 403, "account_disabled");
        expect(right.headers.getSetCookie()).toEqual([]);
        expect(right.headers.get("token")).toBeNull();
        expect(right.text).not.toContain("access_token");

        // The server trusts a looked-up session for up to 1 s; after that the disabled user's token is refused.
        expectInvalidToken(await waitFor(() => client.me(), (reply) => reply.status !== 200));
        expectError(await refreshWith(servers.open, refreshToken), 401, "invalid_refresh_token");
      });
    });

    testNothingSecretLogged(servers);
  });
}
