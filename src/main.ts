import { ConfigError, loadConfig } from "./config";
import { migrate, openDatabase } from "./db/client";
import { CliError, parseArgs } from "./cli/args";
import { backup } from "./cli/backup";
import { healthcheck } from "./cli/healthcheck";
import { userAdd, userDisable, userEnable, userList, userPasswd, userRoles } from "./cli/user";
import { ApiError } from "./errors";
import { serve } from "./server";
import { VERSION } from "./version";

const HELP = `latchkey ${VERSION}: a self-hosted authentication server

Usage:
  latchkey [serve]                                  start the server (the default)
  latchkey migrate                                  apply database migrations and exit
  latchkey user add <username> [--email E] [--admin]  create a user; password read from stdin
  latchkey user passwd <username>                   set a new password (stdin) and end the user's sessions
  latchkey user list                                list users (username, email, roles, disabled, created)
  latchkey user disable <username>                  refuse sign-in, end the user's sessions, suspend its API keys
  latchkey user enable <username>                   allow sign-in again
  latchkey user roles <username> admin,family       replace the user's roles ("" for none)
  latchkey backup <file>                            consistent copy of the database, safe while the server runs
  latchkey healthcheck                              exit 0 if the local server answers /health with 200
  latchkey --version | --help

Configuration comes from environment variables (PORT, DATA_DIR, TOKEN_DELIVERY, ...): see the README.`;

async function run(argv: string[]): Promise<number> {
  const [command = "serve", ...rest] = argv;
  if (command === "--version" || command === "-v" || command === "version") {
    console.log(VERSION);
    return 0;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(HELP);
    return 0;
  }
  const config = loadConfig();
  // The database, its WAL and the generated secret are readable by this user only.
  process.umask(0o077);
  switch (command) {
    case "serve":
      await serve(config);
      return -1; // keeps running until a signal
    case "migrate": {
      const db = openDatabase(config.databasePath);
      migrate(db);
      db.$client.close();
      console.log(`database ${config.databasePath} is up to date`);
      return 0;
    }
    case "healthcheck":
      return healthcheck(config);
    case "user": {
      const [sub, ...args] = rest;
      const parsed = parseArgs(args, ["email"]);
      if (sub === "add") await userAdd(config, parsed);
      else if (sub === "passwd") await userPasswd(config, parsed);
      else if (sub === "list") userList(config, parsed);
      else if (sub === "disable") userDisable(config, parsed);
      else if (sub === "enable") userEnable(config, parsed);
      else if (sub === "roles") userRoles(config, parsed);
      else throw new CliError("usage: latchkey user add|passwd|list|disable|enable|roles ...; see latchkey --help");
      return 0;
    }
    case "backup":
      backup(config, parseArgs(rest, []));
      return 0;
    default:
      throw new CliError(`unknown command "${command}"; see latchkey --help`);
  }
}

try {
  const code = await run(Bun.argv.slice(2));
  if (code >= 0) process.exit(code);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`latchkey: configuration error: ${error.message}`);
    process.exit(2);
  }
  if (error instanceof ApiError) {
    const details = error.details?.map((detail) => `${detail.field}: ${detail.message}`).join("; ");
    console.error(`latchkey: ${error.message}${details ? ` (${details})` : ""}`);
    process.exit(1);
  }
  console.error(`latchkey: ${(error as Error).message ?? String(error)}`);
  process.exit(1);
}
