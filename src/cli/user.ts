import type { Config } from "../config";
import { isPostgres } from "../db/atomic";
import { closeDatabase, openMigratedDatabase, type Db } from "../db/client";
import { insertOutboxRow } from "../mail/outbox";
import { loadTemplates } from "../mail/templates";
import { parseDuration } from "../lib/duration";
import { commaList } from "../lib/lists";
import { createInvitations, invitationMailVars, MAX_INVITATION_USES, type SendInvitation } from "../modules/invitations/service";
import { createLogoutNotices, LOGOUT_NOTICE_KIND, type LogoutNotices } from "../modules/oidc/backchannel";
import { loadSecrets, loadSharedSecrets } from "../secrets";
import { createPasswordHasher } from "../lib/passwords";
import { deleteAccount, listAccounts, updateAccount, updateAuditDetail, type AccountPatch, type AccountUpdate } from "../modules/admin/accounts";
import { createAuditLog } from "../modules/audit/service";
import { revokeAllSessionsOfUser } from "../modules/sessions/service";
import { removeSecondFactors } from "../modules/mfa/service";
import { createUserService } from "../modules/users/service";
import { issueSetupLink } from "../modules/auth/passkey-fallbacks";
import { createOneTimeCodes } from "../modules/codes/service";
import { CliError, type ArgSpec, type ParsedArgs } from "./args";
import { readPassword } from "./password-input";
import { printTable } from "./table";

async function userService(config: Config) {
  const db = await openMigratedDatabase(config);
  // The row is the record; the CLI's own stdout stays for the person at the terminal.
  const audit = createAuditLog(db, () => {});
  return { db, audit, users: createUserService(db, createPasswordHasher(config.passwordHash), config.passwordMinLength), notices: cliLogoutNotices(config, db) };
}

/**
 * Back-channel logout from the CLI: the notices go into the outbox, which the running server delivers at its next
 * poll. The outbox's sealing key (from JWT_SECRET) is read only when there is a notice to queue.
 */
function cliLogoutNotices(config: Config, db: Db): LogoutNotices {
  let dataKey: Uint8Array | undefined;
  return createLogoutNotices(db, async (userId, notice) => {
    dataKey ??= (isPostgres(db) ? await loadSharedSecrets(config, db) : loadSecrets(config)).dataKey;
    await insertOutboxRow(db, dataKey, LOGOUT_NOTICE_KIND, userId, notice);
  });
}

/**
 * `latchkey user add <username> [--email E] [--admin] [--passkey]`: the way to create accounts while registration
 * is closed. `--passkey`: no password; a setup link (once, 24 hours) is printed on stdout for the person, whose
 * first visit adds a passkey.
 */
async function userAdd(config: Config, args: ParsedArgs): Promise<void> {
  const [username] = args.positionals as [string];
  const { db, audit, users } = await userService(config);
  try {
    const passkeyFirst = args.flags.has("passkey");
    const password = passkeyFirst ? null : await readPassword(true);
    const user = await users.create({
      username,
      password,
      email: args.options.email ?? null,
      roles: args.flags.has("admin") ? ["admin"] : [],
    });
    await audit.record({ event: "admin_user_created", userId: user.id, detail: { via: "cli", username: user.username, roles: user.roles } });
    const created = `created user ${user.username} (${user.id})${user.roles.length ? ` with roles ${user.roles.join(",")}` : ""}`;
    if (!passkeyFirst) return console.log(created);
    const secrets = isPostgres(db) ? await loadSharedSecrets(config, db) : loadSecrets(config);
    const setup = await issueSetupLink({ codes: createOneTimeCodes(db, secrets.codeKey), audit, publicUrl: config.publicUrl }, user, "new_account", { via: "cli" });
    // The link alone on stdout (for a script); what it is on stderr.
    console.log(setup.link);
    console.error(`${created}, without a password: the link above signs them in once, until ${setup.expiresAt.toISOString()}, to add a passkey`);
  } finally {
    await closeDatabase(db);
  }
}

/** `latchkey user passwd <username>`: sets a new password and ends all of the user's sessions. */
async function userPasswd(config: Config, args: ParsedArgs): Promise<void> {
  const [username] = args.positionals as [string];
  const { db, audit, users, notices } = await userService(config);
  try {
    const user = await users.findByLogin(username);
    if (!user) throw new CliError(`no such user: ${username}`);
    await users.setPassword(user, await readPassword(true));
    const ended = await notices.around([user.id], () => revokeAllSessionsOfUser(db, user.id));
    await audit.record({ event: "password_changed", userId: user.id, detail: { via: "cli", sessions_ended: ended } });
    console.log(`password changed for ${user.username}; ${ended} session(s) ended`);
  } finally {
    await closeDatabase(db);
  }
}

/** `latchkey user list`: every user as a table (username, email, roles, disabled, created). */
async function userList(config: Config): Promise<void> {
  const { db } = await userService(config);
  try {
    const rows = [["USERNAME", "EMAIL", "ROLES", "DISABLED", "CREATED"]];
    let cursor: string | undefined;
    do {
      const page = await listAccounts(db, { limit: 500, cursor });
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
    printTable(rows);
  } finally {
    await closeDatabase(db);
  }
}

/**
 * One change to one user, under the same rules as the admin API (accounts.ts: role syntax, last admin; disabling
 * ends every session and deletes every API key), audited as admin_user_updated with `via: "cli"`. A running
 * server notices within a second (its session and key caches live 1 s; on PostgreSQL it is told at once).
 */
async function changeUser(config: Config, login: string, patch: AccountPatch): Promise<AccountUpdate> {
  const { db, audit, users, notices } = await userService(config);
  try {
    const user = await users.findByLogin(login);
    if (!user) throw new CliError(`no such user: ${login}`);
    const update = await notices.around(patch.disabled ? [user.id] : [], () => updateAccount(db, user.id, patch));
    if (update.changed.length)
      await audit.record({ event: "admin_user_updated", userId: user.id, detail: { via: "cli", username: user.username, ...updateAuditDetail(update) } });
    return update;
  } finally {
    await closeDatabase(db);
  }
}

/** `latchkey user disable <username>`: refuses sign-in, ends every session and deletes the user's API keys. */
async function userDisable(config: Config, args: ParsedArgs): Promise<void> {
  const [login] = args.positionals as [string];
  const { after, changed, ended } = await changeUser(config, login, { disabled: true });
  console.log(
    `${changed.length ? "disabled" : "already disabled:"} ${after.username}; ${ended.sessions} session(s) ended, ${ended.apiKeys} API key(s) deleted`,
  );
}

/** `latchkey user enable <username>`: the user may sign in again (sessions ended by disabling stay ended). */
async function userEnable(config: Config, args: ParsedArgs): Promise<void> {
  const [login] = args.positionals as [string];
  const { after, changed } = await changeUser(config, login, { disabled: false });
  console.log(`${changed.length ? "enabled" : "already enabled:"} ${after.username}`);
}

/** `latchkey user roles <username> admin,family`: replaces the user's roles ("" removes them all). */
async function userRoles(config: Config, args: ParsedArgs): Promise<void> {
  const [login, list] = args.positionals as [string, string];
  const roles = commaList(list);
  const { after, changed } = await changeUser(config, login, { roles });
  console.log(`roles of ${after.username}: ${after.roles.join(",") || "(none)"}${changed.length ? "" : " (unchanged)"}`);
}

/** `latchkey user mfa-reset <username>`: removes the user's authenticator and recovery codes (a lost phone). */
async function userMfaReset(config: Config, args: ParsedArgs): Promise<void> {
  const [login] = args.positionals as [string];
  const { db, audit, users } = await userService(config);
  try {
    const user = await users.findByLogin(login);
    if (!user) throw new CliError(`no such user: ${login}`);
    // The data key is not needed to delete: the MFA rows are removed, never read.
    const removed = await removeSecondFactors(db, user.id);
    await audit.record({ event: "mfa_reset", userId: user.id, detail: { via: "cli", username: user.username, removed } });
    console.log(removed ? `second factors of ${user.username} removed: the next sign-in needs the password only` : `${user.username} has no second factors`);
  } finally {
    await closeDatabase(db);
  }
}

/**
 * `latchkey user delete <username>`: the user goes with its sessions and API keys, under the admin API's rule
 * that the last enabled admin cannot be deleted.
 */
async function userDelete(config: Config, args: ParsedArgs): Promise<void> {
  const [login] = args.positionals as [string];
  const { db, audit, users, notices } = await userService(config);
  try {
    const user = await users.findByLogin(login);
    if (!user) throw new CliError(`no such user: ${login}`);
    await notices.around([user.id], () => deleteAccount(db, user.id));
    await audit.record({ event: "admin_user_deleted", userId: user.id, detail: { via: "cli", username: user.username } });
    console.log(`deleted user ${user.username} with its sessions and API keys`);
  } finally {
    await closeDatabase(db);
  }
}

/**
 * `latchkey user invite [--email E] [--roles a,b] [--expires 7d] [--uses 1]`: prints an invitation link (issue 24).
 * With --email and mail on (SMTP_URL or MAIL_TRANSPORT=log), the link is also queued in the outbox, which the
 * running server sends at its next poll.
 */
async function userInvite(config: Config, args: ParsedArgs): Promise<void> {
  const expiresIn = parseDuration(args.options.expires ?? "7d");
  if (expiresIn === undefined) throw new CliError(`--expires: a duration such as 30m, 12h or 7d, not "${args.options.expires}"`);
  const uses = args.options.uses ?? "1";
  if (!/^\d{1,4}$/.test(uses)) throw new CliError(`--uses: a whole number from 1 to ${MAX_INVITATION_USES}, not "${uses}"`);
  const { db, audit, users } = await userService(config);
  try {
    const mailOn = config.mail.transport.kind !== "none";
    const send: SendInvitation = async (to, link, expiresAt) => {
      const dataKey = (isPostgres(db) ? await loadSharedSecrets(config, db) : loadSecrets(config)).dataKey;
      const mail = loadTemplates(config.mail, config.publicUrl).render("invitation", { ...invitationMailVars(link, expiresAt), username: "" });
      await insertOutboxRow(db, dataKey, "invitation", null, { to, ...mail });
    };
    const invitations = createInvitations({ db, audit, users, publicUrl: config.publicUrl, send: mailOn ? send : undefined });
    const roles = commaList(args.options.roles);
    const { invitation, link } = await invitations.create({ email: args.options.email ?? null, roles, expiresIn, maxUses: Number(uses) }, { via: "cli" });
    console.log(link);
    console.error(
      `invitation ${invitation.id}: ${invitation.maxUses} use(s) until ${invitation.expiresAt.toISOString()}` +
        (invitation.roles.length ? `, roles ${invitation.roles.join(",")}` : "") +
        (invitation.email ? (invitation.mailed ? `, mailed to ${invitation.email}` : `, for ${invitation.email} (mail is off: send the link yourself)`) : ""),
    );
  } finally {
    await closeDatabase(db);
  }
}

/** `latchkey user <sub> ...`: each subcommand with exactly what it accepts. */
export const USER_COMMANDS: Record<string, { spec: ArgSpec; run: (config: Config, args: ParsedArgs) => void | Promise<void> }> = {
  add: {
    spec: {
      usage: "latchkey user add <username> [--email E] [--admin] [--passkey]  (password on stdin; --passkey: none, prints a passkey setup link)",
      positionals: 1,
      options: ["email"],
      flags: ["admin", "passkey"],
    },
    run: userAdd,
  },
  passwd: { spec: { usage: "latchkey user passwd <username>  (new password on stdin)", positionals: 1 }, run: userPasswd },
  list: { spec: { usage: "latchkey user list", positionals: 0 }, run: userList },
  disable: { spec: { usage: "latchkey user disable <username>", positionals: 1 }, run: userDisable },
  enable: { spec: { usage: "latchkey user enable <username>", positionals: 1 }, run: userEnable },
  roles: { spec: { usage: 'latchkey user roles <username> <role,role,...>  ("" for none)', positionals: 2 }, run: userRoles },
  "mfa-reset": { spec: { usage: "latchkey user mfa-reset <username>", positionals: 1 }, run: userMfaReset },
  delete: { spec: { usage: "latchkey user delete <username>", positionals: 1 }, run: userDelete },
  invite: {
    spec: { usage: "latchkey user invite [--email E] [--roles a,b] [--expires 7d] [--uses 1]  (prints the link)", positionals: 0, options: ["email", "roles", "expires", "uses"] },
    run: userInvite,
  },
};
