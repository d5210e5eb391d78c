import { createApp, createAppMailer, metricsEnabled } from "./app";
import { pruneExpiredCodes } from "./modules/codes/service";
import { pruneExpiredChallenges } from "./modules/auth/challenges";
import { type Config } from "./config";
import { ConfigError } from "./errors";
import { isPostgres } from "./db/atomic";
import { closeDatabase, countUsers, openMigratedDatabase } from "./db/client";
import { appliedLine } from "./db/migrations";
import { onOneInstance } from "./db/postgres";
import { pruneLoginThrottles } from "./limits";
import { bootstrapAdmin } from "./modules/admin/bootstrap";
import { createAuditLog, pruneAuditEvents } from "./modules/audit/service";
import { pruneOidcCodes } from "./modules/oidc/service";
import { pruneExpiredSessions } from "./modules/sessions/service";
import { loadSecrets, loadSharedSecrets } from "./secrets";
import { VERSION } from "./version";
import { serveMetrics } from "./modules/metrics";
import { createMetrics } from "./modules/metrics/service";

const PRUNE_INTERVAL_MS = 60 * 60 * 1000;
/** In-flight requests get this long to finish after SIGTERM before connections are cut. */
const SHUTDOWN_GRACE_MS = 5000;

/** `latchkey serve`: migrate, listen, and stop cleanly on SIGTERM/SIGINT (docker stop). */
export async function serve(config: Config): Promise<void> {
  // The start-up log says which migrations this start applied (or that there were none).
  const db = await openMigratedDatabase(config, (report) => console.log(appliedLine(report)));
  // SQLite: JWT_SECRET, or the one generated in DATA_DIR; PostgreSQL: JWT_SECRET, or the one generated in the
  // database, which every instance shares.
  const secrets = isPostgres(db) ? await loadSharedSecrets(config, db) : loadSecrets(config);
  if ((await bootstrapAdmin(config, db, createAuditLog(db))) === "created")
    console.log(`latchkey: created admin user ${config.bootstrapAdmin!.username} from ADMIN_USERNAME and ADMIN_PASSWORD_FILE`);

  const metrics = metricsEnabled(config) ? createMetrics(config, db) : undefined;
  const mailer = createAppMailer(config, db, secrets, undefined, metrics?.recorder);
  if (config.mail.transport.kind === "log")
    console.warn("latchkey: warning: MAIL_TRANSPORT=log prints every mail (codes and links included) to standard output instead of sending it: for local trials only");
  const app = createApp(config, db, secrets, mailer, { metrics });
  await app.ready;
  // Hourly housekeeping; with several instances on one PostgreSQL database, one of them at a time does it.
  const pruneAll = () =>
    onOneInstance(db, "prune", async () => {
      await pruneExpiredSessions(db);
      await pruneLoginThrottles(db);
      await pruneAuditEvents(db, config.auditRetentionDays);
      await pruneExpiredCodes(db);
      await pruneExpiredChallenges(db);
      await pruneOidcCodes(db);
    }).catch((error: Error) => console.error(JSON.stringify({ level: "error", event: "prune_failed", error: String(error.message) })));
  let prune: ReturnType<typeof setInterval> | undefined;
  let metricsServer: ReturnType<typeof serveMetrics> | undefined;

  // Handlers first: a supervisor may send SIGTERM as soon as it sees the "listening" line.
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`latchkey: ${signal} received, finishing in-flight requests`);
    clearInterval(prune);
    void metricsServer?.stop(true);
    await mailer.outbox.stop();
    const forced = setTimeout(() => app.server?.stop(true), SHUTDOWN_GRACE_MS);
    if (app.server) await app.stop(false);
    clearTimeout(forced);
    await closeDatabase(db);
    console.log("latchkey: stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));

  try {
    app.listen({
      port: config.port,
      hostname: config.host,
      // Elysia turns SO_REUSEPORT on: a second server on a busy port would start and silently take half the
      // requests. Off, it fails here instead.
      reusePort: false,
      // Bun's development mode serves its own error pages; every error here is answered by the error handler.
      development: false,
      // Bun's own limit answers with an empty 413; leave the limit to the body parser, which answers JSON 413
      // from Content-Length before reading, or after 64 KiB of a chunked body, so nothing large is buffered.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    });
  } catch (error) {
    await closeDatabase(db);
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === "EADDRINUSE"
        ? `PORT=${config.port} is already in use on HOST=${config.host}: stop the other server or choose another PORT`
        : `HOST=${config.host} PORT=${config.port}: cannot listen there (${code ?? (error as Error).message})`,
    );
  }

  if (metrics && config.metrics.listen) {
    try {
      metricsServer = serveMetrics(metrics, config.metrics.listen);
    } catch (error) {
      await app.stop(true);
      await closeDatabase(db);
      throw error;
    }
  }

  prune = setInterval(() => void pruneAll(), PRUNE_INTERVAL_MS);
  await pruneAll();
  // Mail queued before a restart goes out now.
  mailer.outbox.start();

  // Before the "listening" line, which supervisors and tests take as the sign that start-up is over.
  for (const line of startupHints(config, await countUsers(db))) console.log(line);
  console.log(
    `latchkey ${VERSION} listening on http://${hostInUrl(config.host)}:${config.port} (public URL ${config.publicUrl}), ` +
      `token delivery ${config.tokenDelivery}, registration ${config.allowRegistration ? "open" : "closed"}, ` +
      (config.databaseUrl === undefined ? `data in ${config.dataDir}` : `data in PostgreSQL (${postgresHost(config.databaseUrl)})`) +
      (metricsServer ? `, metrics on http://${hostInUrl(config.metrics.listen!.host)}:${metricsServer.port}/metrics` : "") +
      (config.metrics.token !== undefined ? ", /metrics for METRICS_TOKEN" : ""),
  );
}

/** Where the database is, for the log: host, port and database name, never the user or password. */
const postgresHost = (url: string) => {
  const parsed = new URL(url);
  return `${parsed.host}${parsed.pathname}`;
};

/** An IPv6 listen address in a URL is bracketed: `http://[::1]:3000`. */
const hostInUrl = (host: string) => (host.includes(":") ? `[${host}]` : host);

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** What a new self-hoster needs to hear at start: how to get a first user, and why browsers may be refused. */
function startupHints(config: Config, users: number): string[] {
  const hints: string[] = [];
  // Started as root without PUID it stays root (src/privileges.ts): said once, with the ways out.
  if (process.getuid?.() === 0 && config.runAs === undefined)
    hints.push('latchkey: running as root (PUID is not set): to run as another user, start it with the systemd unit (README "systemd") or set PUID and PGID');
  if (users === 0 && !config.allowRegistration)
    hints.push(
      'latchkey: no users yet: create the first admin with "latchkey user add <name> --admin" (it reads the password from standard input), or start with ALLOW_REGISTRATION=true',
    );
  if (config.tokenDelivery === "cookie" && new URL(config.publicUrl).hostname === "localhost" && !LOOPBACK.test(config.host))
    hints.push(
      `latchkey: warning: TOKEN_DELIVERY=cookie with PUBLIC_URL=${config.publicUrl}: browsers reaching this server by any other name are refused (csrf_rejected); set PUBLIC_URL to the address they use`,
    );
  return hints;
}
