import { expect, test } from "bun:test";
import { decodeProtectedHeader, jwtVerify } from "jose";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { deriveSecrets } from "../../src/secrets";

// HS256 access tokens are signed with node:crypto's HMAC rather than jose (tokens/access.ts signHs256): jose, and
// so any JWT library, must still accept them exactly as it accepted jose's own.
test("an HS256 access token verifies with jose, with jose's header and claims in jose's order", async () => {
  const db = openDatabase(":memory:");
  migrate(db);
  const secrets = deriveSecrets("k".repeat(32));
  const app = createApp(loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", ALLOW_REGISTRATION: "true", PUBLIC_URL: "https://auth.example.test", ACCESS_TOKEN_TTL: "15m" }), db, secrets);
  const registered = await app.handle(
    new Request("http://localhost/api/v1/auth/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "someone", password: "correct horse battery staple" }),
    }),
  );
  const { access_token: token, user } = (await registered.json()) as { access_token: string; user: { id: string } };
  const { payload, protectedHeader } = await jwtVerify(token, secrets.jwtKey, { issuer: "https://auth.example.test", algorithms: ["HS256"] });
  expect(Object.keys(protectedHeader)).toEqual(["alg", "kid", "typ"]);
  expect(decodeProtectedHeader(token)).toEqual({ alg: "HS256", kid: protectedHeader.kid!, typ: "JWT" });
  expect(Object.keys(payload)).toEqual(["sid", "sub", "iss", "iat", "exp", "jti"]);
  expect(payload.sub).toBe(user.id);
  expect(payload.exp! - payload.iat!).toBe(15 * 60);
  const validated = await app.handle(new Request("http://localhost/api/v1/auth/validate", { headers: { authorization: `Bearer ${token}` } }));
  expect(validated.status).toBe(200);
});
