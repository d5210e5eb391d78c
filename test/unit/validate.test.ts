import { expect, test } from "bun:test";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { deriveSecrets } from "../../src/secrets";

/** /validate names both expiries: the access token's (`expires_at`) and its session's (`session_expires_at`). */
test("/validate answers the access token's expiry and the session's, each under its own name", async () => {
  const db = openDatabase(":memory:");
  migrate(db);
  const app = createApp(
    loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", ALLOW_REGISTRATION: "true", ACCESS_TOKEN_TTL: "15m", REFRESH_TOKEN_TTL: "7d" }),
    db,
    deriveSecrets("k".repeat(32)),
  );
  const before = Date.now();
  const registered = await app.handle(
    new Request("http://localhost/api/v1/auth/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "someone", password: "correct horse battery staple" }),
    }),
  );
  const { access_token } = (await registered.json()) as { access_token: string };
  const reply = await app.handle(new Request("http://localhost/api/v1/auth/validate", { headers: { authorization: `Bearer ${access_token}` } }));
  expect(reply.status).toBe(200);
  const body = (await reply.json()) as { expires_at: string; session_expires_at: string };
  const tokenLeft = Date.parse(body.expires_at) - before;
  const sessionLeft = Date.parse(body.session_expires_at) - before;
  expect(tokenLeft).toBeGreaterThan(14 * 60_000);
  expect(tokenLeft).toBeLessThanOrEqual(15 * 60_000 + 1000);
  expect(sessionLeft).toBeGreaterThan(7 * 86_400_000 - 60_000);
  expect(sessionLeft).toBeLessThanOrEqual(7 * 86_400_000 + 1000);
});
