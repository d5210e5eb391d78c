import type { Config } from "../config";
import { migrate, openDatabase } from "../db/client";
import { createPasswordHasher } from "../lib/passwords";
import { listAccounts, updateAccount, type AccountPatch } from "../modules/admin/accounts";
import { createAuditLog } from "../modules/audit/service";
import { revokeAllSessionsOfUser } from "../modules/sessions/service";
import { createUserService } from "../modules/users/service";
import { CliError, type ParsedArgs } from "./args";
import { readPassword } from "./password-input";

function userService(config: Config) {
  const db = openDatabase(config.databasePath);
  migrate(db);
  return { db, users: createUserService(db, createPasswordHasher(config.passwordHash), config.passwordMinLength) };
}

/** `latchkey user add <username> [--email E] [--admin]`: the way to create accounts while registration is closed. */
export async function userAdd(config: Config, args: ParsedArgs): Promise<void> {
  const username = args.positionals[0];
  if (!username) throw new CliError("usage: latchkey user add <username> [--email E] [--admin]  (password on stdin)");
  const { db, users } = userService(config);
  try {
    const password = await readPassword(true);
    const user = await users.create({
      username,
      password,
      email: args.options.email ?? null,
      roles: args.flags.has("admin") ? ["admin"] : [],
    });
    console.log(`created user ${user.username} (${user.id})${user.roles.length ? ` with roles ${user.roles.join(",")}` : ""}`);
  } finally {
    db.$client.close();
  }
}

/** `latchkey user passwd <username>`: sets a new password and ends all of the user's sessions. */
export async function userPasswd(config: Config, args: ParsedArgs): Promise<void> {
  const username = args.positionals[0];
  if (!username) throw new CliError("usage: latchkey user passwd <username>  (new password on stdin)");
  const { db, users } = userService(config);
  try {
    const user = users.findByLogin(username);
    if (!user) throw new CliError(`no such user: ${username}`);
    await users.setPassword(user, await readPassword(true));
    const ended = revokeAllSessionsOfUser(db, user.id);
    console.log(`password changed for ${user.username}; ${ended} session(s) ended`);
  } finally {
    db.$client.close();
  }
}

/** `latchkey user list`: every user as a table (username, email, roles, disabled, created). */
export function userList(config: Config, args: ParsedArgs): void {
  if (args.positionals.length) throw new CliError("usage: latchkey user list");
  const { db } = userService(config);
  try {
    const rows = [["USERNAME", "EMAIL", "ROLES", "DISABLED", "CREATED"]];
    let cursor: string | undefined;
    do {
      const page = listAccounts(db, { limit: 500, cursor });
      for (const user of page.users)
        rows.push([
          user.username,
          user.email ?? "-",
          user.roles.join(",") || "-",
          user.disabled ? "yes" : "no",
          user.createdAt.toISOString().replace(/\.\d{3}Z$/, "Z"),
        ]);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
    for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd());
  } finally {
    db.$client.close();
  }
}

/**
 * One change to one user, under the same rules as the admin API (accounts.ts: role syntax, last admin),
 * audited as admin_user_updated with `via: "cli"`. Disabling also ends every session of the user; the running
 * server notices within a second (its session cache lives 1 s) and API keys fail on their next use.
 */
function changeUser(config: Config, login: string, patch: AccountPatch): { username: string; changed: boolean; sessionsEnded: number } {
  const { db, users } = userService(config);
  try {
    const user = users.findByLogin(login);
    if (!user) throw new CliError(`no such user: ${login}`);
    const { after, changed } = updateAccount(db, user.id, patch);
    const sessionsEnded = after.disabled ? revokeAllSessionsOfUser(db, user.id) : 0;
    if (changed.length) {
      const detail: Record<string, unknown> = { via: "cli", username: after.username, changed };
      if (changed.includes("disabled")) detail.disabled = after.disabled;
      if (changed.includes("roles")) detail.roles = after.roles;
      if (sessionsEnded) detail.sessions_ended = sessionsEnded;
      // The row is the record; the CLI's own stdout stays for the person at the terminal.
      createAuditLog(db, () => {}).record({ event: "admin_user_updated", userId: user.id, detail });
    }
    return { username: after.username, changed: changed.length > 0, sessionsEnded };
  } finally {
    db.$client.close();
  }
}

/** `latchkey user disable <username>`: refuses sign-in, ends every session, suspends the user's API keys. */
export function userDisable(config: Config, args: ParsedArgs): void {
  const [login, extra] = args.positionals;
  if (!login || extra !== undefined) throw new CliError("usage: latchkey user disable <username>");
  const result = changeUser(config, login, { disabled: true });
  console.log(`${result.changed ? "disabled" : "already disabled:"} ${result.username}; ${result.sessionsEnded} session(s) ended`);
}

/** `latchkey user enable <username>`: the user may sign in again (sessions ended by disabling stay ended). */
export function userEnable(config: Config, args: ParsedArgs): void {
  const [login, extra] = args.positionals;
  if (!login || extra !== undefined) throw new CliError("usage: latchkey user enable <username>");
  const result = changeUser(config, login, { disabled: false });
  console.log(`${result.changed ? "enabled" : "already enabled:"} ${result.username}`);
}

/** `latchkey user roles <username> admin,family`: replaces the user's roles ("" removes them all). */
export function userRoles(config: Config, args: ParsedArgs): void {
  const [login, list, extra] = args.positionals;
  if (!login || list === undefined || extra !== undefined)
    throw new CliError('usage: latchkey user roles <username> <role,role,...>  ("" for none)');
  const roles = list
    .split(",")
    .map((role) => role.trim())
    .filter(Boolean);
  const result = changeUser(config, login, { roles });
  console.log(`roles of ${result.username}: ${roles.length ? [...new Set(roles)].join(",") : "(none)"}${result.changed ? "" : " (unchanged)"}`);
}
