import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config";
import { migrate, openConfiguredDatabase } from "../db/client";
import { copyToPostgres, TargetNotEmptyError } from "../db/copy";
import { credentialsIntact, UNENCODED_CREDENTIALS } from "../lib/postgres-url";
import { JWT_SECRET_FILE } from "../secrets";
import { CliError, type ArgSpec, type ParsedArgs } from "./args";

/**
 * `latchkey migrate-db --to postgres://...`: this SQLite instance (DATA_DIR / DATABASE_PATH) into an empty
 * PostgreSQL database, with its generated JWT secret (db/copy.ts). A missing or unusable --to and a target that
 * already holds data are refused with exit 2, like a bad setting; the copy itself is all or nothing.
 */
export const MIGRATE_DB_ARGS: ArgSpec = { usage: "latchkey migrate-db --to postgres://user:password@host:5432/database", positionals: 0, options: ["to"] };

/** Why `to` cannot be the target, or undefined. Never repeats the URL: it may carry a password. */
function targetProblem(to: string | undefined): string | undefined {
  if (to === undefined) return "migrate-db needs --to, the PostgreSQL database to copy into";
  let url: URL | undefined;
  try {
    url = new URL(to);
  } catch {
    url = undefined;
  }
  if (/^postgres(ql)?:\/\//.test(to) && !credentialsIntact(to, url)) return `--to is invalid: ${UNENCODED_CREDENTIALS}`;
  if (!url) return "--to is not a URL";
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") return `--to must be a postgres:// or postgresql:// URL, not ${url.protocol}//`;
  return undefined;
}

export async function migrateDb(config: Config, args: ParsedArgs): Promise<number> {
  const to = args.options.to;
  const problem = targetProblem(to);
  if (problem) {
    console.error(`latchkey: ${problem}; usage: ${MIGRATE_DB_ARGS.usage}`);
    return 2;
  }
  if (!existsSync(config.databasePath)) throw new CliError(`no database at ${config.databasePath} to copy (check DATA_DIR / DATABASE_PATH)`);
  // JWT_SECRET set: nothing was generated; otherwise the file the server generated at its first start.
  const secretFile = join(config.dataDir, JWT_SECRET_FILE);
  const secret = config.jwtSecret === undefined && existsSync(secretFile) ? readFileSync(secretFile, "utf8").trim() : undefined;

  const db = openConfiguredDatabase(config);
  let result;
  try {
    migrate(db);
    result = await copyToPostgres(db, to!, secret);
  } catch (error) {
    if (!(error instanceof TargetNotEmptyError)) throw error;
    console.error(`latchkey: ${error.message}`);
    return 2;
  } finally {
    db.$client.close();
  }
  const width = Math.max(...result.tables.map((table) => table.name.length));
  for (const table of result.tables) console.log(`${table.name.padEnd(width)}  ${table.rows}`);
  console.log(`copied ${config.databasePath} into the PostgreSQL database; the row counts of every table match`);
  if (config.jwtSecret !== undefined) console.log("the JWT secret comes from JWT_SECRET: start the PostgreSQL instances with the same JWT_SECRET");
  else if (result.secretCarried) console.log(`copied the generated JWT secret ${secretFile} into the database (instance_secret)`);
  else console.log(`there is no generated JWT secret in ${secretFile}: the PostgreSQL instances will generate one`);
  return 0;
}
