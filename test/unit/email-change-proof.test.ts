/**
 * The proof of a change of address (auth/email-change.ts) is decided before the code is issued and again inside the
 * code's transaction: what the request read may be stale by then (a password set, a session ended or aged, a user
 * disabled by another request or process). Over HTTP the two readings cannot be pulled apart, so here the decision
 * is handed a stale reading and the database holds the present one.
 */
import { expect, test } from "bun:test";
import { transaction, type Atomic } from "../../src/db/atomic";
import type { Db } from "../../src/db/client";
import { migrate, openDatabase } from "../../src/db/client";
import { users, type User } from "../../src/db/schema";
import { createEmailChange } from "../../src/modules/auth/email-change";
import { createSessionService, type Authentication } from "../../src/modules/sessions/service";
import { describeEvent, isFailure } from "../../src/modules/pages/audit";

const CLIENT = { ip: "192.0.2.1", userAgent: "test" };

async function setUp(decided: { passwordHash: string | null; checked?: boolean }, authenticationRead?: Authentication) {
  const db = openDatabase(":memory:");
  migrate(db);
  db.insert(users).values({ id: "u1", username: "ann", passwordHash: decided.passwordHash }).run();
  const sessions = createSessionService(db, { refreshTokenTtl: 3600, refreshReuseInterval: 10, refreshRotationKey: new Uint8Array(32) });
  const { sessionId } = await sessions.create({ userId: "u1" }, CLIENT, ["hwk", "user", "mfa"]);
  const issued: string[] = [];
  const change = createEmailChange({
    // The row as the request read it, before the database changed.
    users: { findById: async () => ({ id: "u1", username: "ann", passwordHash: decided.passwordHash }) as User },
    sessions: authenticationRead ? { authenticationOf: async () => authenticationRead } : sessions,
    passwords: { checkPassword: async () => decided.checked ?? false },
    audit: { record: async () => {} },
    // The code's insert: only its transaction and the precondition, on the real tables.
    emailFlows: {
      requestEmailChange: async (_user, email, _client, precondition) => {
        await transaction(db, (tx: Db): Atomic<void> => precondition!(tx));
        issued.push(email);
      },
    },
  });
  const principal = { userId: "u1", username: "ann", sessionId } as Parameters<typeof change.requestEmailChange>[0];
  const request = (password?: string) => change.requestEmailChange(principal, "new@example.test", password, CLIENT);
  return { db, sessionId, issued, request };
}

const refused = (status: number, code: string) => expect.objectContaining({ status, code });

test("all still holding, the code is issued: a recent passkey sign-in of an account without a password, the checked password of one with", async () => {
  const passkey = await setUp({ passwordHash: null });
  await passkey.request();
  expect(passkey.issued).toEqual(["new@example.test"]);
  const password = await setUp({ passwordHash: "the-hash", checked: true });
  await password.request("the password");
  expect(password.issued).toEqual(["new@example.test"]);
});

test("a password set meanwhile on an account decided passwordless: 403 invalid_current_password, no code", async () => {
  const { db, issued, request } = await setUp({ passwordHash: null });
  db.$client.query("UPDATE users SET password_hash = 'set-meanwhile' WHERE id = 'u1'").run();
  await expect(request()).rejects.toThrow(refused(403, "invalid_current_password"));
  expect(issued).toEqual([]);
});

test("the password that was checked changed or was removed meanwhile: 403 invalid_current_password, no code", async () => {
  for (const present of ["another-hash", null]) {
    const { db, issued, request } = await setUp({ passwordHash: "the-hash", checked: true });
    db.$client.query("UPDATE users SET password_hash = ? WHERE id = 'u1'").run(present);
    await expect(request("the password")).rejects.toThrow(refused(403, "invalid_current_password"));
    expect(issued).toEqual([]);
  }
});

test("a passkey sign-in read as recent that is past 5 minutes in the transaction: 403 reauthentication_required, no code", async () => {
  const { db, sessionId, issued, request } = await setUp({ passwordHash: null }, { amr: ["hwk"], authTime: Date.now() });
  db.$client.query("UPDATE sessions SET auth_time = ? WHERE id = ?").run(Date.now() - 6 * 60_000, sessionId);
  await expect(request()).rejects.toThrow(refused(403, "reauthentication_required"));
  // And an amr without hwk in the row, however recent.
  db.$client.query(`UPDATE sessions SET auth_time = ?, amr = '["otp"]' WHERE id = ?`).run(Date.now(), sessionId);
  await expect(request()).rejects.toThrow(refused(403, "reauthentication_required"));
  expect(issued).toEqual([]);
});

test("a session ended or a user disabled meanwhile: 401 invalid_token, no code", async () => {
  const disabled = await setUp({ passwordHash: null });
  disabled.db.$client.query("UPDATE users SET disabled = 1 WHERE id = 'u1'").run();
  await expect(disabled.request()).rejects.toThrow(refused(401, "invalid_token"));
  const ended = await setUp({ passwordHash: null }, { amr: ["hwk"], authTime: Date.now() });
  ended.db.$client.query("DELETE FROM sessions WHERE id = ?").run(ended.sessionId);
  await expect(ended.request()).rejects.toThrow(refused(401, "invalid_token"));
  expect([...disabled.issued, ...ended.issued]).toEqual([]);
});

test("a refused proof reads on the audit page as a sentence, in the failures' colour", () => {
  expect(describeEvent("email_change_failed", "ann", { reason: "reauthentication_required" })).toBe("ann was asked to confirm with a passkey before changing their email address");
  expect(describeEvent("email_change_failed", "ann", { reason: "invalid_current_password" })).toBe("ann typed a wrong password to change their email address");
  expect(isFailure("email_change_failed")).toBe(true);
});
