/**
 * POST /password/forgot answers every address alike (no account enumeration, OWASP Forgot Password Cheat Sheet)
 * and mails only a verified address of an enabled account: an unverified address may not be its owner's (anyone
 * can type any address at sign-up), so a reset link sent there could hand the account to whoever typed it.
 */
import { expect, test } from "bun:test";
import { createApp } from "../../src/app";
import { loadConfig } from "../../src/config";
import { migrate, openDatabase } from "../../src/db/client";
import { users } from "../../src/db/schema";
import { deriveSecrets } from "../../src/secrets";

test("a verified address gets a reset code; an unverified, a disabled or an unknown one gets the same answer and nothing", async () => {
  const db = openDatabase(":memory:");
  migrate(db);
  const app = createApp(
    loadConfig({ DATA_DIR: "/nonexistent", RATE_LIMIT: "off", PUBLIC_URL: "https://auth.example.com", MAIL_TRANSPORT: "log", MAIL_FROM: "auth@example.com" }),
    db,
    deriveSecrets("k".repeat(32)),
  );
  db.insert(users)
    .values([
      { id: "u-verified", username: "verified", email: "verified@example.com", emailVerified: true, passwordHash: "unused" },
      { id: "u-unverified", username: "unverified", email: "unverified@example.com", emailVerified: false, passwordHash: "unused" },
      { id: "u-disabled", username: "disabled", email: "disabled@example.com", emailVerified: true, disabled: true, passwordHash: "unused" },
    ])
    .run();
  const codes = () => db.$client.query("SELECT user_id AS user FROM one_time_codes ORDER BY user_id").all();
  const forgot = async (email: string) => {
    const response = await app.handle(
      new Request("https://auth.example.com/api/v1/auth/password/forgot", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email }) }),
    );
    return { status: response.status, body: await response.json() };
  };

  const answers = [];
  for (const email of ["unverified@example.com", "disabled@example.com", "nobody@example.com"]) answers.push(await forgot(email));
  expect(codes()).toEqual([]);
  const verified = await forgot("verified@example.com");
  expect(codes()).toEqual([{ user: "u-verified" }]);
  expect(verified.status).toBe(202);
  for (const answer of answers) expect(answer).toEqual(verified);
});
