import type { Config } from "../config";
import { migrate, openDatabase } from "../db/client";
import { createPasswordHasher } from "../lib/passwords";
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
