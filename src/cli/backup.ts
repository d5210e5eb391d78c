import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { Config } from "../config";
import { openConfiguredDatabase } from "../db/client";
import { CliError, type ArgSpec, type ParsedArgs } from "./args";

/**
 * `latchkey backup <file>`: a consistent copy of the database, safe while the server runs. SQLite's
 * `VACUUM INTO` reads one snapshot inside a read transaction (WAL lets the server keep writing meanwhile)
 * and writes a compact, self-contained file with no -wal/-shm companions. It never overwrites: SQLite itself
 * refuses an existing target, and a clear message is given first. The copy is created with mode 0600.
 */
export const BACKUP_ARGS: ArgSpec = { usage: "latchkey backup <file>", positionals: 1 };

export function backup(config: Config, args: ParsedArgs): void {
  const [target] = args.positionals as [string];
  const destination = resolve(target);
  if (existsSync(destination)) throw new CliError(`${destination} already exists; choose a new file name`);
  if (!existsSync(config.databasePath)) throw new CliError(`no database at ${config.databasePath} (check DATA_DIR / DATABASE_PATH)`);

  const db = openConfiguredDatabase(config);
  try {
    db.$client.prepare("VACUUM INTO ?").run(destination);
  } catch (error) {
    throw new CliError(`backup to ${destination} failed: ${(error as Error).message}`);
  } finally {
    db.$client.close();
  }
  console.log(`backed up ${config.databasePath} to ${destination} (${statSync(destination).size} bytes)`);
}
