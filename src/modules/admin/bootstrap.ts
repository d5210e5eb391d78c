import { readFileSync } from "node:fs";
import { unreadable } from "../../lib/process-user";
import { type Config } from "../../config";
import { ApiError, ConfigError } from "../../errors";
import type { Db } from "../../db/client";
import { createPasswordHasher } from "../../lib/passwords";
import type { AuditLog } from "../audit/service";
import { createUserService, usernameError } from "../users/service";
import { normalizeUsername } from "../../lib/names";
import { run } from "../../db/atomic";
import { ADMIN_ROLE, enabledAdminExists } from "./accounts";

export type BootstrapOutcome = "not_configured" | "admin_exists" | "created";

/**
 * ADMIN_USERNAME + ADMIN_PASSWORD_FILE: creates the first admin at start when no enabled admin exists.
 * The password comes from the file (e.g. a Docker secret), minus one trailing newline; the file is read only
 * when an admin is actually created, so it may be removed once the instance has one.
 *
 * A user of that name that exists but is not an enabled admin is never promoted here: on an instance with
 * open registration anyone could have taken the name first. The server refuses to start instead (exit 2), and
 * the owner decides (`latchkey user roles <name> admin`, or another ADMIN_USERNAME).
 */
export async function bootstrapAdmin(config: Config, db: Db, audit: AuditLog): Promise<BootstrapOutcome> {
  const wanted = config.bootstrapAdmin;
  if (!wanted) return "not_configured";
  if (await run(db, (db) => enabledAdminExists(db))) return "admin_exists";

  const nameProblem = usernameError(normalizeUsername(wanted.username));
  if (nameProblem) throw new ConfigError(`ADMIN_USERNAME=${JSON.stringify(wanted.username)} is invalid: ${nameProblem}`);
  const users = createUserService(db, createPasswordHasher(config.passwordHash), config.passwordMinLength);
  const existing = await users.findByLogin(wanted.username);
  if (existing)
    throw new ConfigError(
      `ADMIN_USERNAME=${JSON.stringify(wanted.username)} names an existing user that is not an enabled admin; ` +
        `it is not promoted automatically: run "latchkey user roles ${existing.username} ${ADMIN_ROLE}" (and "latchkey user enable") or choose another ADMIN_USERNAME`,
    );

  let password: string;
  try {
    password = readFileSync(wanted.passwordFile, "utf8").replace(/\r?\n$/, "");
  } catch (error) {
    throw new ConfigError(`ADMIN_PASSWORD_FILE=${wanted.passwordFile} ${unreadable(wanted.passwordFile, error)} (it must hold the first admin's password)`);
  }

  try {
    const user = await users.create({ username: wanted.username, password, roles: [ADMIN_ROLE] });
    await audit.record({ event: "admin_user_created", userId: user.id, detail: { via: "ADMIN_USERNAME", username: user.username, roles: user.roles } });
    return "created";
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const details = error.details?.map((detail) => `${detail.field}: ${detail.message}`).join("; ");
    const variable = error.code === "username_taken" || error.details?.some((detail) => detail.field === "username") ? "ADMIN_USERNAME" : "ADMIN_PASSWORD_FILE";
    throw new ConfigError(`${variable}: cannot create the admin: ${details ?? error.message}`);
  }
}
