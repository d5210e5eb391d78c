import { ConfigError, loadConfig, type Config } from "./config";
import { migrate, openConfiguredDatabase } from "./db/client";
import { CliError, parseArgs, type ArgSpec, type ParsedArgs } from "./cli/args";
import { BACKUP_ARGS, backup } from "./cli/backup";
import { healthcheck } from "./cli/healthcheck";
import { KEYS_COMMANDS } from "./cli/keys";
import { OIDC_CLIENT_COMMANDS } from "./cli/oidc";
import { USER_COMMANDS } from "./cli/user";
import { ApiError } from "./errors";
import { serve } from "./server";
import { dropPrivileges } from "./privileges";
import { BUILD_TARGET, VERSION } from "./version";

const HELP = `latchkey ${VERSION}: a self-hosted authentication server

Usage:
  latchkey [serve]                                  start the server (the default)
  latchkey migrate                                  apply database migrations and exit
  latchkey user add <username> [--email E] [--admin]  create a user; password read from stdin
  latchkey user passwd <username>                   set a new password (stdin) and end the user's sessions
  latchkey user list                                list users (username, email, roles, disabled, created)
  latchkey user disable <username>                  refuse sign-in, end the user's sessions, delete its API keys
  latchkey user enable <username>                   allow sign-in again
  latchkey user roles <username> admin,family       replace the user's roles ("" for none)
  latchkey user delete <username>                   delete the user with its sessions and keys (not the last admin)
  latchkey user mfa-reset <username>                remove the user's authenticator and recovery codes
  latchkey keys list                                signing keys: kid, algorithm, created, retired
  latchkey keys rotate                              new signing keys (the running server uses them within 1 s)
  latchkey oidc client add <client_id> --redirect-uri URI [--redirect-uri URI ...]
          [--post-logout-redirect-uri URI ...] [--public] [--trusted] [--roles a,b] [--users u1,u2] [--json]
                                                    register an OpenID Connect client; prints its secret once
  latchkey oidc client list | delete <client_id> | rotate-secret <client_id> [--json]
  latchkey backup <file>                            consistent copy of the database, safe while the server runs
  latchkey healthcheck                              exit 0 if the local server answers /health with 200
  latchkey --version | --help

Configuration comes from environment variables (PORT, DATA_DIR, TOKEN_DELIVERY, ...): see the README.`;

type Subcommands = Record<string, { spec: ArgSpec; run: (config: Config, args: ParsedArgs) => void | Promise<void> }>;
/** Commands that take a subcommand (cli/user.ts, cli/keys.ts). */
const GROUPS: Record<string, Subcommands> = { user: USER_COMMANDS, keys: KEYS_COMMANDS, "oidc client": OIDC_CLIENT_COMMANDS };

/** The commands without a subcommand. */
const COMMAND_ARGS: Record<string, ArgSpec> = {
  serve: { usage: "latchkey [serve]", positionals: 0 },
  migrate: { usage: "latchkey migrate", positionals: 0 },
  healthcheck: { usage: "latchkey healthcheck", positionals: 0 },
  backup: BACKUP_ARGS,
};

async function run(argv: string[]): Promise<number> {
  // `oidc client <sub>` is one group with two words.
  const [command = "serve", ...rest] = argv[0] === "oidc" && argv[1] === "client" ? ["oidc client", ...argv.slice(2)] : argv;
  if (command === "--version" || command === "-v" || command === "version") {
    console.log(`latchkey ${VERSION} (${BUILD_TARGET})`);
    return 0;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(HELP);
    return 0;
  }
  // Arguments are checked before the configuration: a usage error is a usage error whatever the environment.
  let args: ParsedArgs;
  const group = GROUPS[command];
  const subcommand = group?.[rest[0] ?? ""];
  if (group) {
    if (!subcommand) throw new CliError(`usage: latchkey ${command} ${Object.keys(group).join("|")} ...; see latchkey --help`);
    args = parseArgs(rest.slice(1), subcommand.spec);
  } else {
    const spec = COMMAND_ARGS[command];
    if (!spec) throw new CliError(`unknown command "${command}"; see latchkey --help`);
    args = parseArgs(rest, spec);
  }

  const config = loadConfig();
  // The database, its WAL and the generated secret are readable by this user only.
  process.umask(0o077);
  // Every command that touches DATA_DIR runs as PUID:PGID when started as root: a `docker exec ... latchkey user
  // add` must not leave a root-owned WAL file the server can no longer write. The health check touches nothing.
  const switched = command === "healthcheck" ? undefined : dropPrivileges(config);
  switch (command) {
    case "serve":
      if (switched) console.log(`latchkey: started as root, running as uid ${switched.uid} gid ${switched.gid} (PUID, PGID), owner of DATA_DIR`);
      await serve(config);
      return -1; // keeps running until a signal
    case "migrate": {
      const db = openConfiguredDatabase(config);
      migrate(db);
      db.$client.close();
      console.log(`database ${config.databasePath} is up to date`);
      return 0;
    }
    case "healthcheck":
      return healthcheck(config);
    case "backup":
      backup(config, args);
      return 0;
    default:
      await subcommand!.run(config, args);
      return 0;
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
