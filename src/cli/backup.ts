import { accessSync, chmodSync, constants, copyFileSync, existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { processUser } from "../lib/process-user";
import type { Config } from "../config";
import { openConfiguredDatabase } from "../db/client";
import { JWT_SECRET_FILE } from "../secrets";
import { CliError, type ArgSpec, type ParsedArgs } from "./args";

/**
 * `latchkey backup <file>`: everything a restore needs. A consistent copy of the database, safe while the server
 * runs, and, when the JWT secret was generated in DATA_DIR (no JWT_SECRET), a copy of it as `<file>.jwt_secret`:
 * without it a restored instance would sign with a new secret and every session would end. SQLite's
 * `VACUUM INTO` reads one snapshot inside a read transaction (WAL lets the server keep writing meanwhile)
 * and writes a compact, self-contained file with no -wal/-shm companions. It never overwrites: SQLite itself
 * refuses an existing target, and a clear message is given first. The copy is created with mode 0600.
 */
export const BACKUP_ARGS: ArgSpec = { usage: "latchkey backup <file>", positionals: 1 };

export function backup(config: Config, args: ParsedArgs): void {
  const [target] = args.positionals as [string];
  const destination = resolve(target);
  const secretCopy = `${destination}.${JWT_SECRET_FILE}`;
  if (config.databaseUrl !== undefined)
    throw new CliError("DATABASE_URL is set: the data is in PostgreSQL; back it up with pg_dump (latchkey backup copies the SQLite file)");
  for (const path of [destination, secretCopy]) if (existsSync(path)) throw new CliError(`${path} already exists; choose a new file name`);
  if (!existsSync(config.databasePath)) throw new CliError(`no database at ${config.databasePath} (check DATA_DIR / DATABASE_PATH)`);

  try {
    accessSync(dirname(destination), constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new CliError(
      `backup to ${destination} failed: ${processUser()}, the user Latchkey runs as, cannot write in ${dirname(destination)} ` +
        `(${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): choose a folder that user can write` +
        (config.runAs === undefined ? "" : ", or unset PUID to run the backup as root"),
    );
  }
  const db = openConfiguredDatabase(config);
  try {
    db.$client.prepare("VACUUM INTO ?").run(destination);
  } catch (error) {
    throw new CliError(`backup to ${destination} failed: ${(error as Error).message}`);
  } finally {
    db.$client.close();
  }
  console.log(`backed up ${config.databasePath} to ${destination} (${statSync(destination).size} bytes)`);
  if (config.jwtSecret !== undefined) {
    console.log("the JWT secret comes from JWT_SECRET: keep it with the backup, a restore needs the same value");
    return;
  }
  const secret = join(config.dataDir, JWT_SECRET_FILE);
  if (!existsSync(secret)) return;
  copyFileSync(secret, secretCopy, constants.COPYFILE_EXCL);
  chmodSync(secretCopy, 0o600);
  console.log(`backed up ${secret} to ${secretCopy}`);
}
