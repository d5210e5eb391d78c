/**
 * What /metrics reports (issue 22), in Prometheus's text format through prom-client. The services do not import
 * this: app.ts hands each one a callback of the `Recorder` below (or `NO_METRICS` when metrics are off, so that
 * nothing is counted for nobody).
 *
 * Forward auth runs on every request of every protected app: its decisions and their latency go into typed arrays
 * (a few array writes, no allocation per request), turned into prom-client's shapes only when scraped. Everything
 * else is counted through prom-client's own counters, whose label children are resolved once here.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Config } from "../../config";
import { isPostgres } from "../../db/atomic";
import type { Db } from "../../db/client";
import { connectionsByState } from "../../db/postgres";
import { outboxDepth } from "../../mail/outbox";
import { BUILD_TARGET, VERSION } from "../../version";
import type { RateLimitHit } from "../../limits/audit";
import type { AuditEntry } from "../audit/service";

/** Forward auth's answers: 200, a redirect to sign in (302/303, or nginx's 401 with a Location), 403, a bare 401. */
const DECISIONS = ["allow", "redirect", "deny", "unauthorized"] as const;
/** Seconds. In-process forward auth takes tens of microseconds (a cached session) to milliseconds (a database read). */
const FORWARD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** The sign-in's last step: the password alone, or the second factor that completed it. */
const SIGN_IN_METHODS = ["password", "totp", "email_code", "recovery_code"] as const;
const SIGN_IN_RESULTS = ["success", "invalid_credentials", "account_disabled", "user_not_verified"] as const;

/** The callbacks app.ts passes to the parts it counts. */
export interface Recorder {
  /**
   * Nanoseconds, for forward auth's latency: `Bun.nanoseconds` (about 60 ns a reading here, against 100 for
   * `performance.now()`), or 0 without metrics, so that nothing reads the clock for nobody.
   */
  clock(): number;
  /** Forward auth answered `response`; it started at `startedAt` (`clock()`). Returns the response. */
  forwardAnswered(response: Response, startedAt: number): Response;
  /** An audit event: sign-ins (`login_succeeded`, `login_failed`) and second-factor answers. */
  audited(entry: AuditEntry): void;
  /** A brute-force limit refused a request (limits/audit.ts's hits, before they are thinned out for the trail). */
  rateLimited(scope: RateLimitHit["scope"]): void;
  /** Sessions ended before their time: sign-outs, revocations, password changes, a replayed refresh token. */
  sessionsRevoked(count: number): void;
  /** The outbox tried to send a mail. */
  mailAttempted(sent: boolean): void;
  /** The outbox gave a mail up. */
  mailDropped(): void;
  /** A request failed because the database did not answer (503 database_unavailable). */
  databaseFailed(): void;
}

const ignore = () => {};
/** Metrics off: nothing is counted. */
export const NO_METRICS: Recorder = {
  clock: () => 0,
  forwardAnswered: (response) => response,
  audited: ignore,
  rateLimited: ignore,
  sessionsRevoked: ignore,
  mailAttempted: ignore,
  mailDropped: ignore,
  databaseFailed: ignore,
};

type Labels = Record<string, string | number>;
type Sample = { value: number; labels: Labels; metricName?: string };

/**
 * A histogram of forward auth's latency by decision, kept in typed arrays. prom-client's own histogram builds a
 * label object and a hash string on every observation; this one finds the bucket and adds. It is a prom-client
 * Histogram to the registry, which asks it for its samples when scraped (`getForPromString` and `get`: what
 * prom-client 15's registry calls; package.json pins 15.1.x, and test/unit/metrics.test.ts reads the samples back).
 */
class DecisionHistogram extends Histogram<"decision"> {
  readonly metricName: string;
  readonly metricHelp: string;
  readonly counts = new Float64Array(DECISIONS.length * (FORWARD_BUCKETS.length + 1));
  readonly sums = new Float64Array(DECISIONS.length);
  readonly totals = new Float64Array(DECISIONS.length);

  constructor(config: { name: string; help: string; registers: Registry[] }) {
    super({ ...config, labelNames: ["decision"], buckets: FORWARD_BUCKETS });
    this.metricName = config.name;
    this.metricHelp = config.help;
  }

  record(decision: number, seconds: number): void {
    let bucket = 0;
    while (bucket < FORWARD_BUCKETS.length && seconds > FORWARD_BUCKETS[bucket]!) bucket++;
    this.counts[decision * (FORWARD_BUCKETS.length + 1) + bucket]!++;
    this.sums[decision]! += seconds;
    this.totals[decision]!++;
  }

  samples(): Sample[] {
    const samples: Sample[] = [];
    DECISIONS.forEach((decision, index) => {
      let cumulative = 0;
      for (let bucket = 0; bucket <= FORWARD_BUCKETS.length; bucket++) {
        cumulative += this.counts[index * (FORWARD_BUCKETS.length + 1) + bucket]!;
        const le = bucket < FORWARD_BUCKETS.length ? FORWARD_BUCKETS[bucket]! : "+Inf";
        samples.push({ metricName: `${this.metricName}_bucket`, labels: { decision, le }, value: cumulative });
      }
      samples.push({ metricName: `${this.metricName}_sum`, labels: { decision }, value: this.sums[index]! });
      samples.push({ metricName: `${this.metricName}_count`, labels: { decision }, value: this.totals[index]! });
    });
    return samples;
  }

  /** What the registry renders (prom-client calls this rather than `get` for the text format). */
  getForPromString() {
    return Promise.resolve({ name: this.metricName, help: this.metricHelp, type: "histogram", aggregator: "sum", values: this.samples() });
  }

  override get() {
    return this.getForPromString() as unknown as ReturnType<Histogram<"decision">["get"]>;
  }
}

/** The registry and the recorder of one server. `db` answers the gauges read when scraped. */
export function createMetrics(config: Pick<Config, "databasePoolSize" | "databaseUrl">, db: Db) {
  const registry = new Registry();
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers });
  /** A counter's child for these labels, resolved once and exposed from zero (so that a rate() sees its first increase). */
  const child = <L extends string>(metric: Counter<L>, labels: Record<L, string>) => {
    metric.inc(labels as Partial<Record<L, string>>, 0);
    return metric.labels(labels as Partial<Record<L, string>>);
  };

  new Gauge({ name: "latchkey_build_info", help: "Always 1; the labels name the running build.", labelNames: ["version", "target"], registers })
    .labels(VERSION, BUILD_TARGET)
    .set(1);

  const signIns = counter("latchkey_sign_ins_total", "Sign-ins by their last step (method) and result, through the API and the sign-in page.", ["method", "result"]);
  const signInChildren = new Map<string, { inc(): void }>();
  for (const method of SIGN_IN_METHODS) for (const result of SIGN_IN_RESULTS) signInChildren.set(`${method}|${result}`, child(signIns, { method, result }));
  const secondFactor = counter("latchkey_second_factor_total", "Answers to a sign-in's second step (TOTP, emailed or recovery code) by result.", ["result"]);
  const secondFactorSuccess = child(secondFactor, { result: "success" });
  const secondFactorFailure = child(secondFactor, { result: "failure" });

  const forward = new DecisionHistogram({
    name: "latchkey_forward_auth_duration_seconds",
    help: "Time forward auth took to decide, by decision (allow, redirect, deny, unauthorized).",
    registers,
  });
  new Counter({
    name: "latchkey_forward_auth_decisions_total",
    help: "Forward-auth answers by decision: allow (200), redirect (to sign in), deny (403), unauthorized (401).",
    labelNames: ["decision"],
    registers,
    collect() {
      this.reset();
      DECISIONS.forEach((decision, index) => this.inc({ decision }, forward.totals[index]!));
    },
  });

  const rateLimited = counter("latchkey_rate_limited_total", "Requests refused by the brute-force limits: per client address (ip), per account, or per account's second step (second_factor).", ["scope"]);
  const rateLimitChildren: Record<RateLimitHit["scope"], { inc(): void }> = {
    ip: child(rateLimited, { scope: "ip" }),
    account: child(rateLimited, { scope: "account" }),
    second_factor: child(rateLimited, { scope: "second_factor" }),
  };
  const sessionsRevoked = counter("latchkey_sessions_revoked_total", "Sessions ended before their time: sign-outs, revocations, password changes, refresh-token replays.");
  const mailSent = counter("latchkey_mail_sent_total", "Mails handed to the mail transport.");
  const mailFailures = counter("latchkey_mail_failures_total", "Failed attempts to send a mail (each is retried until MAIL_MAX_ATTEMPTS).");
  const mailDropped = counter("latchkey_mail_dropped_total", "Mails given up after MAIL_MAX_ATTEMPTS failures (or sealed under another JWT_SECRET).");
  const databaseErrors = counter("latchkey_database_errors_total", "Requests and scrapes that failed because the database did not answer.");

  /** A gauge read from the database when scraped; a database that does not answer leaves it out and is counted. */
  const databaseGauge = (name: string, help: string, labelNames: string[], read: (gauge: Gauge) => Promise<void>) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        this.reset();
        await read(this).catch(() => databaseErrors.inc());
      },
    });
  databaseGauge("latchkey_mail_queue_depth", "Mails waiting in the outbox (all instances of the database).", [], async (gauge) => gauge.set(await outboxDepth(db)));
  new Gauge({ name: "latchkey_database_pool_size", help: "Connections this instance may open to the database (DATABASE_POOL_SIZE; 1 for SQLite).", registers }).set(
    config.databaseUrl === undefined ? 1 : config.databasePoolSize,
  );
  // PostgreSQL only (SQLite has one connection and no pool): no samples there.
  const postgres = isPostgres(db);
  databaseGauge(
    "latchkey_database_connections",
    "This instance's PostgreSQL connections by state (active, idle, ...), from pg_stat_activity: its pool, its LISTEN connection and the scrape's own.",
    ["state"],
    async (gauge) => {
      if (postgres) for (const { state, connections } of await connectionsByState(db)) gauge.set({ state }, connections);
    },
  );

  const decisionOf = (response: Response): number => {
    switch (response.status) {
      case 200:
        return 0;
      case 302:
      case 303:
        return 1;
      case 401:
        // nginx's auth_request cannot pass a redirect on: its "sign in" is a 401 carrying the Location.
        return response.headers.has("location") ? 1 : 3;
      default:
        return 2;
    }
  };

  const recorder: Recorder = {
    clock: Bun.nanoseconds,
    forwardAnswered(response, startedAt) {
      forward.record(decisionOf(response), (Bun.nanoseconds() - startedAt) / 1e9);
      return response;
    },
    audited({ event, detail }) {
      if (event === "login_succeeded") {
        const method = typeof detail?.second_factor === "string" ? (detail.second_factor === "totp_enrollment" ? "totp" : detail.second_factor) : "password";
        signInChildren.get(`${method}|success`)?.inc();
        if (method !== "password") secondFactorSuccess.inc();
      } else if (event === "login_failed") signInChildren.get(`password|${String(detail?.reason)}`)?.inc();
      else if (event === "mfa_challenge_failed") secondFactorFailure.inc();
    },
    rateLimited: (scope) => rateLimitChildren[scope].inc(),
    sessionsRevoked: (count) => sessionsRevoked.inc(count),
    mailAttempted: (sent) => (sent ? mailSent : mailFailures).inc(),
    mailDropped: () => mailDropped.inc(),
    databaseFailed: () => databaseErrors.inc(),
  };

  return {
    recorder,
    /** The exposition: Prometheus's text format. */
    async render(): Promise<{ body: string; contentType: string }> {
      return { body: await registry.metrics(), contentType: registry.contentType };
    },
    /** Every metric name this server exposes (the dashboard's test checks its queries against them). */
    names: () => registry.getMetricsAsArray().map((metric) => metric.name),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
