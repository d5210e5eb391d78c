import { expect, test } from "bun:test";
import { migrate, openDatabase } from "../../src/db/client";
import { embeddedMigrations } from "../../src/db/migrations.macro";

/**
 * A migration that rebuilds a table (SQLite cannot drop a NOT NULL in place: drizzle-kit copies `users` into a new
 * table and drops the old) must not let the DROP cascade: inside the migrator's transaction `PRAGMA foreign_keys=OFF`
 * is a no-op, so without migrate() switching the checks off around it, every session, passkey and code of every
 * user would be deleted by the upgrade that made the password optional (passkey_accounts).
 */
test("upgrading through the users rebuild keeps every row that refers to a user", () => {
  const db = openDatabase(":memory:");
  const all = embeddedMigrations("sqlite");
  const before = all.findIndex((migration) => migration.tag.endsWith("_passkey_accounts"));
  expect(before).toBeGreaterThan(0);
  const { dialect, session } = db as unknown as { dialect: { migrate(m: unknown, s: unknown): void }; session: unknown };
  dialect.migrate(all.slice(0, before), session);
  const client = db.$client;
  client.run("INSERT INTO users (id, username, password_hash) VALUES ('u1', 'alice', '$argon2id$x')");
  client.run("INSERT INTO sessions (id, user_id, last_seen_at, expires_at) VALUES ('s1', 'u1', 1, 99999999999999)");
  client.run("INSERT INTO recovery_codes (code_hash, user_id) VALUES ('c1', 'u1')");

  migrate(db);

  expect(client.query("SELECT id, password_hash FROM users").all()).toEqual([{ id: "u1", password_hash: "$argon2id$x" }]);
  expect(client.query("SELECT id FROM sessions").all()).toEqual([{ id: "s1" }]);
  expect(client.query("SELECT code_hash FROM recovery_codes").all()).toEqual([{ code_hash: "c1" }]);
  // The checks are on again, and the rebuilt table still enforces them.
  expect(client.query("PRAGMA foreign_keys").get()).toEqual({ foreign_keys: 1 });
  expect(() => client.run("INSERT INTO sessions (id, user_id, last_seen_at, expires_at) VALUES ('s2', 'nobody', 1, 2)")).toThrow();
  client.run("UPDATE users SET password_hash = NULL WHERE id = 'u1'");
});
