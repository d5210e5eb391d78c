import { existsSync } from "node:fs";
import { loadConfig, type Config } from "./config";
import { ApiError, ConfigError } from "./errors";
import { closeDatabase, migrationStatus, openMigratedDatabase } from "./db/client";
import { CliError, parseArgs, type ArgSpec, type ParsedArgs } from "./cli/args";
import { BACKUP_ARGS, backup } from "./cli/backup";
import { healthcheck } from "./cli/healthcheck";
import { KEYS_COMMANDS } from "./cli/keys";
import { MIGRATE_DB_ARGS, migrateDb } from "./cli/migrate-db";
import { OIDC_CLIENT_COMMANDS } from "./cli/oidc";
import { USER_COMMANDS } from "./cli/user";
import { serve } from "./server";
import { dropPrivileges } from "./privileges";
import { BUILD_TARGET, COMMIT, VERSION } from "./version";

const HELP = `latchkey ${VERSION}: a self-hosted authentication server

Usage:
  latchkey [serve]                                  start the server (the default)
  latchkey migrate [--status]                       apply database migrations and exit; --status lists applied and
                                                    pending migrations and applies nothing
  latchkey user add <username> [--email E] [--admin]  create a user; password read from stdin
  latchkey user add <username> --passkey            create a user without a password; prints a passkey setup link
  latchkey user passwd <username>                   set a new password (stdin) and end the user's sessions
  latchkey user list                                list users (username, email, roles, disabled, created)
  latchkey user disable <username>                  refuse sign-in, end the user's sessions, delete its API keys
  latchkey user enable <username>                   allow sign-in again
  latchkey user roles <username> admin,family       replace the user's roles ("" for none)
  latchkey user delete <username>                   delete the user with its sessions and keys (not the last admin)
  latchkey user invite [--email E] [--roles a,b] [--expires 7d] [--uses 1]
                                                    print an invitation link (mailed to E when mail is on)
  latchkey user mfa-reset <username>                remove the user's authenticator and recovery codes
  latchkey keys list                                signing keys: kid, algorithm, created, retired
  latchkey keys rotate                              new signing keys (the running server uses them within 1 s)
  latchkey oidc client add <client_id> --redirect-uri URI [--redirect-uri URI ...]
          [--post-logout-redirect-uri URI ...] [--public] [--trusted] [--roles a,b] [--users u1,u2] [--json]
          [--require passkey]                       register an OpenID Connect client; prints its secret once
  latchkey oidc client update <client_id> --require passkey|none
                                                    require a passkey of its sign-ins, or no longer
  latchkey oidc client list | delete <client_id> | rotate-secret <client_id> [--json]
  latchkey backup <file>                            consistent copy of the database, safe while the server runs
  latchkey migrate-db --to postgres://user:password@host:5432/database
                                                    copy this SQLite instance into an empty PostgreSQL database
  latchkey healthcheck                              exit 0 if the local server answers /health with 200
  latchkey --version | --help

Configuration comes from environment variables only (there are no command-line options for it), read and
checked at start; the README explains each one. The binary reads no .env file.
  Server:        PORT (3000) HOST (0.0.0.0) PUBLIC_URL DATA_DIR (./data) DATABASE_PATH PUID PGID
                 DATABASE_URL (postgres://...: PostgreSQL instead of the SQLite file), PGPASSWORD, DATABASE_POOL_SIZE
  Tokens:        TOKEN_DELIVERY (bearer|header|cookie) JWT_SECRET JWT_ALG ACCESS_TOKEN_TTL REFRESH_TOKEN_TTL
                 REFRESH_REUSE_INTERVAL ACCESS_COOKIE_NAME REFRESH_COOKIE_NAME ALLOWED_ORIGINS
  Accounts:      ALLOW_REGISTRATION ADMIN_USERNAME ADMIN_PASSWORD_FILE PASSWORD_MIN_LENGTH
                 PASSWORD_HASH_MEMORY_KIB PASSWORD_HASH_TIME_COST API_KEYS_MAX_PER_USER API_KEY_RATE_LIMIT
  Limits:        RATE_LIMIT RATE_LIMIT_IP RATE_LIMIT_IP_BURST RATE_LIMIT_ACCOUNT_IP_FAILURES
                 RATE_LIMIT_ACCOUNT_FAILURES RATE_LIMIT_MAX_DELAY TRUST_PROXY TRUST_PROXY_HEADER AUDIT_RETENTION_DAYS
  Sign-in pages: APP_NAME APP_LOGO APP_ACCENT_COLOR SESSION_COOKIE_NAME SESSION_IDLE_TTL SIGN_IN_URLS
                 ACCESS_RULES_FILE OIDC_ID_TOKEN_ALG PASSKEY_RP_ID
  Metrics:       METRICS_ADDR METRICS_TOKEN
  Mail and MFA:  SMTP_URL MAIL_FROM SMTP_TLS_CA_FILE MAIL_TRANSPORT MAIL_TEMPLATES_DIR MAIL_MAX_ATTEMPTS
                 MAIL_RETRY_INTERVAL EMAIL_CODE_TTL PASSWORD_RESET_TTL REQUIRE_EMAIL_VERIFICATION LOGIN_EMAIL_CODE
                 MFA_REQUIRED_ROLES
Example: PORT=8080 DATA_DIR=/var/lib/latchkey ALLOW_REGISTRATION=true latchkey serve`;

type Subcommands = Record<string, { spec: ArgSpec; run: (config: Config, args: ParsedArgs) => void | Promise<void> }>;
/** Commands that take a subcommand (cli/user.ts, cli/keys.ts). */
const GROUPS: Record<string, Subcommands> = { user: USER_COMMANDS, keys: KEYS_COMMANDS, "oidc client": OIDC_CLIENT_COMMANDS };

/** The commands without a subcommand. */
const COMMAND_ARGS: Record<string, ArgSpec> = {
  serve: { usage: "latchkey [serve]", positionals: 0 },
  migrate: { usage: "latchkey migrate [--status]", positionals: 0, flags: ["status"] },
  healthcheck: { usage: "latchkey healthcheck", positionals: 0 },
  backup: BACKUP_ARGS,
  "migrate-db": MIGRATE_DB_ARGS,
};

async function run(argv: string[]): Promise<number> {
  // `oidc client <sub>` is one group with two words.
  const [command = "serve", ...rest] = argv[0] === "oidc" && argv[1] === "client" ? ["oidc client", ...argv.slice(2)] : argv;
  if (command === "--version" || command === "-v" || command === "version") {
    console.log(`latchkey ${VERSION} (${BUILD_TARGET}, commit ${COMMIT})`);
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
  if (group && ["--help", "-h", "help"].includes(rest[0] ?? "")) {
    console.log(Object.values(group).map((entry) => `usage: ${entry.spec.usage}`).join("\n"));
    return 0;
  }
  if (command === "serve" || (command.startsWith("--") && !group)) {
    // Settings are environment variables: `serve --port 8080` (or `latchkey --port 8080`) is told which one.
    const option = [command, ...rest].find((arg) => arg.startsWith("--"));
    if (option) {
      const name = option.slice(2).split("=")[0]!.toUpperCase().replaceAll("-", "_");
      throw new CliError(`settings are environment variables, not options: ${name}=... latchkey serve; see latchkey --help`);
    }
  }
  if (group) {
    if (!subcommand) throw new CliError(`usage: latchkey ${command} ${Object.keys(group).join("|")} ...; see latchkey ${command} --help`);
    args = parseArgs(rest.slice(1), subcommand.spec);
  } else {
    const spec = COMMAND_ARGS[command];
    if (!spec) throw new CliError(`unknown command "${command}"; see latchkey --help`);
    args = parseArgs(rest, spec);
  }

  const config = loadConfig();
  // The database, its WAL and the generated secret are readable by this user only.
  process.umask(0o077);
  // With PUID set, every command that touches DATA_DIR runs as PUID:PGID when started as root: a `docker exec ...
  // latchkey user add` must not leave a root-owned WAL file the server can no longer write. Only the server gives
  // DATA_DIR to that user; a CLI command changes no ownership. The health check touches nothing.
  const switched = command === "healthcheck" ? undefined : dropPrivileges(config, command === "serve");
  switch (command) {
    case "serve":
      if (switched) console.log(`latchkey: started as root, running as uid ${switched.uid} gid ${switched.gid} (PUID, PGID), owner of DATA_DIR`);
      await serve(config);
      return -1; // keeps running until a signal
    case "migrate": {
      if (args.flags.has("status")) {
        for (const line of await migrationStatus(config)) console.log(line);
        return 0;
      }
      const created = config.databaseUrl === undefined && !existsSync(config.databasePath);
      let applied: string[] = [];
      await closeDatabase(await openMigratedDatabase(config, (report) => (applied = report.applied)));
      const where = config.databaseUrl === undefined ? `database ${config.databasePath}` : "the PostgreSQL database (DATABASE_URL)";
      if (created) console.log(`created the database ${config.databasePath} and applied every migration`);
      else console.log(applied.length === 0 ? `${where} is up to date` : `${where}: applied ${applied.join(", ")}`);
      return 0;
    }
    case "healthcheck":
      return healthcheck(config);
    case "backup":
      backup(config, args);
      return 0;
    case "migrate-db":
      return migrateDb(config, args);
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
