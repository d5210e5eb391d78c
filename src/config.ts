import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseIp, parseTrustProxy, type ProxyHeader, type TrustProxy } from "./lib/ip";
import { parseDuration } from "./lib/duration";
import { configRoleProblem } from "./lib/names";
import { credentialsIntact, UNENCODED_CREDENTIALS } from "./lib/postgres-url";
import { JWT_ALGS, type JwtAlg } from "./lib/jwt-algs";
import { ConfigError } from "./errors";

export type TokenDelivery = "bearer" | "header" | "cookie";

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly databasePath: string;
  /** Which variable decided databasePath (DATABASE_PATH, or DATA_DIR when it is unset): named in errors. */
  readonly databasePathVariable: "DATABASE_PATH" | "DATA_DIR";
  /** DATABASE_URL: PostgreSQL instead of the SQLite file (several instances share it); undefined: SQLite. */
  readonly databaseUrl: string | undefined;
  /** DATABASE_POOL_SIZE: connections each instance keeps to PostgreSQL. */
  readonly databasePoolSize: number;
  readonly publicUrl: string;
  /** Origin of PUBLIC_URL, e.g. "https://auth.example.com": the JWT issuer and the cookie-mode CSRF origin. */
  readonly publicOrigin: string;
  readonly secureCookies: boolean;
  /** JWT_SECRET from the environment; undefined means "generate one in DATA_DIR". */
  readonly jwtSecret: string | undefined;
  readonly tokenDelivery: TokenDelivery;
  readonly allowRegistration: boolean;
  readonly accessTokenTtl: number;
  readonly refreshTokenTtl: number;
  readonly refreshReuseInterval: number;
  readonly passwordMinLength: number;
  readonly passwordHash: { readonly memoryCost: number; readonly timeCost: number };
  readonly allowedOrigins: readonly string[];
  readonly accessCookieName: string;
  readonly refreshCookieName: string;
  readonly trustProxy: TrustProxy;
  /** Where a trusted proxy puts the client's address. */
  readonly trustProxyHeader: ProxyHeader;
  /** Brute-force limits (RATE_LIMIT_*); undefined when RATE_LIMIT=off. */
  readonly rateLimit: RateLimitConfig | undefined;
  /** First-start admin: created only when no admin exists. */
  readonly bootstrapAdmin: { readonly username: string; readonly passwordFile: string } | undefined;
  readonly auditRetentionDays: number;
  readonly apiKeysMaxPerUser: number;
  /** Per-key request quota; undefined (the default) means none. */
  readonly apiKeyRateLimit: { readonly requests: number; readonly periodSeconds: number } | undefined;
  // ---- Signing keys and OpenID Connect (issue 15)
  /** JWT_ALG: how access tokens are signed; asymmetric keys are generated on first need and kept in the database. */
  readonly jwtAlg: JwtAlg;
  /** OIDC_ID_TOKEN_ALG: how ID tokens are signed (RS256 by default: every OIDC client must support it). */
  readonly oidcIdTokenAlg: Exclude<JwtAlg, "HS256">;
  // ---- Mail and second factors (issue 13)
  readonly mail: MailConfig;
  // ---- Browser pages, the browser session and forward auth (issue 12)
  /** Shown on every page and in mail (APP_NAME). */
  readonly appName: string;
  /** APP_LOGO (a file read at start, served at /branding/logo) and APP_ACCENT_COLOR (#rrggbb) on every page. */
  readonly branding: { readonly accent?: string; readonly logo?: { readonly bytes: Uint8Array; readonly type: string } };
  /** The browser session cookie (SESSION_COOKIE_NAME). */
  readonly sessionCookieName: string;
  /** A browser session ends after this long without a request (SESSION_IDLE_TTL, seconds). */
  readonly sessionIdleTtl: number;
  /**
   * Origins of the sign-in pages, PUBLIC_URL's first, then SIGN_IN_URLS: one per root domain this server signs
   * browsers in for (a cookie cannot span example.com and example.net).
   */
  readonly signInOrigins: readonly string[];
  /** ACCESS_RULES_FILE: forward-auth rules (TOML), read and checked at start; undefined = signed in is enough. */
  readonly accessRulesFile: string | undefined;
  // ---- Running as root (issues 14, 22)
  /**
   * PUID/PGID: who a process started as root becomes (the server gives DATA_DIR to it first); undefined (no PUID)
   * or uid 0: it stays as it was started. PGID defaults to PUID.
   */
  readonly runAs: { readonly uid: number; readonly gid: number } | undefined;
  // ---- Observability (issue 22)
  /** Where /metrics is served: METRICS_ADDR (a listener of its own), METRICS_TOKEN (the main one, bearer token); neither: off. */
  readonly metrics: MetricsConfig;
  // ---- Passkeys (issue 25)
  /** The WebAuthn relying party: its ID and the sign-in origins whose pages and apps may use it. */
  readonly passkeys: PasskeyConfig;
}

export interface PasskeyConfig {
  /** PASSKEY_RP_ID, or PUBLIC_URL's host: a passkey is bound to it and works on every host under it. */
  readonly rpId: string;
  /** The sign-in origins (PUBLIC_URL, SIGN_IN_URLS) on that domain: a ceremony from any other origin is refused. */
  readonly origins: readonly string[];
}

export interface MetricsConfig {
  /** METRICS_ADDR: a second listener that serves /metrics alone, without a token (bind it to loopback or a private network). */
  readonly listen: { readonly host: string; readonly port: number } | undefined;
  /** METRICS_TOKEN: /metrics on the main listener for `Authorization: Bearer <token>` only. */
  readonly token: string | undefined;
}

/** How mail leaves: SMTP (nodemailer), printed to stdout (MAIL_TRANSPORT=log), or not at all. */
export type MailTransportConfig =
  | {
      readonly kind: "smtp";
      readonly host: string;
      readonly port: number;
      /** smtps://: TLS from the first byte; smtp://: STARTTLS when offered, or insisted on with ?starttls=required. */
      readonly tls: "implicit" | "starttls" | "starttls-required";
      readonly user: string | undefined;
      readonly password: string | undefined;
      /** SMTP_TLS_CA_FILE's PEM, read at start. */
      readonly ca: string | undefined;
    }
  | { readonly kind: "log" }
  | { readonly kind: "none" };

export interface MailConfig {
  readonly transport: MailTransportConfig;
  readonly from: string;
  readonly appName: string;
  readonly templatesDir: string | undefined;
  readonly retryInterval: number;
  readonly maxAttempts: number;
  readonly requireEmailVerification: boolean;
  readonly loginEmailCode: boolean;
  readonly mfaRequiredRoles: readonly string[];
  /** Lifetime of emailed codes, verification links and sign-in challenges (seconds). */
  readonly codeTtl: number;
  readonly passwordResetTtl: number;
}

export interface RateLimitConfig {
  /** Token bucket per client IP on the routes that check a secret. */
  readonly ipRequests: number;
  readonly ipPeriodSeconds: number;
  readonly ipBurst: number;
  /** Consecutive failures per (account, IP) before delays start. */
  readonly accountIpFailures: number;
  /** Consecutive failures per account from all IPs before delays start (NIST SP 800-63B §5.2.2 caps it at 100). */
  readonly accountFailures: number;
  /** Delays double from 1 s up to this. */
  readonly maxDelaySeconds: number;
}

/** A configuration value the server cannot run with; main prints `message` alone and exits 2. */
type Env = Record<string, string | undefined>;

function value(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === "" ? undefined : raw.trim();
}

/** DATABASE_URL: a postgres:// (or postgresql://) URL with a host; the password in it is never echoed. */
function postgresUrl(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (/^postgres(ql)?:\/\//.test(raw) && !credentialsIntact(raw, url)) throw new ConfigError(`DATABASE_URL is invalid: ${UNENCODED_CREDENTIALS}`);
  if (!url || (url.protocol !== "postgres:" && url.protocol !== "postgresql:") || !url.hostname)
    throw new ConfigError("DATABASE_URL is invalid: expected postgres://user:password@host:5432/database (PostgreSQL; unset it for SQLite)");
  return raw;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max)
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected a whole number from ${min} to ${max}`);
  return Number(raw);
}

function duration(env: Env, name: string, fallback: string, allowZero = false): number {
  const raw = value(env, name) ?? fallback;
  const seconds = parseDuration(raw);
  if (seconds === undefined || (seconds === 0 && !allowZero))
    throw new ConfigError(
      `${name}=${JSON.stringify(raw)} is invalid: expected ${allowZero ? "0 or " : ""}a number of seconds or a duration like 30s, 15m, 1h, 30d (at most 3650d)`,
    );
  return seconds;
}

/** An IPv4 or IPv6 address, or an RFC 1123 host name. */
function isHost(raw: string): boolean {
  return (
    parseIp(raw) !== undefined ||
    /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(raw)
  );
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected true or false`);
}

function origin(name: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name}: ${JSON.stringify(raw)} is not a URL: expected e.g. https://auth.example.com`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ConfigError(`${name}: ${JSON.stringify(raw)} must start with http:// or https://`);
  return url;
}

function cookieName(env: Env, name: string, fallback: string): string {
  const raw = value(env, name) ?? fallback;
  // RFC 6265 §4.1.1 cookie-name is an RFC 7230 token.
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/.test(raw))
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected 1-64 letters, digits or !#$%&'*+-.^_\`|~`);
  return raw;
}

/** `<requests>/<period>`, e.g. 600/1m; `off` (undefined) only where `offAllowed`. */
function rateLimit(env: Env, name: string, offAllowed: boolean): { requests: number; periodSeconds: number } | undefined {
  const raw = value(env, name);
  if (raw === undefined || (offAllowed && raw === "off")) return undefined;
  const match = /^(\d{1,9})\/(.+)$/.exec(raw);
  const periodSeconds = match ? parseDuration(match[2]!) : undefined;
  if (!match || Number(match[1]) < 1 || !periodSeconds)
    throw new ConfigError(
      `${name}=${JSON.stringify(raw)} is invalid: expected ${offAllowed ? "off or " : ""}<requests>/<period>, e.g. 600/1m or 10000/1d (period at most 3650d)`,
    );
  return { requests: Number(match[1]), periodSeconds };
}

function rateLimitConfig(env: Env): RateLimitConfig | undefined {
  const switchValue = value(env, "RATE_LIMIT") ?? "on";
  if (switchValue === "off") return undefined;
  if (switchValue !== "on") throw new ConfigError(`RATE_LIMIT=${JSON.stringify(switchValue)} is invalid: expected on or off`);
  // Not "off": RATE_LIMIT=off is the one switch for every brute-force limit.
  const ip = rateLimit(env, "RATE_LIMIT_IP", false) ?? { requests: 20, periodSeconds: 60 };
  return Object.freeze({
    ipRequests: ip.requests,
    ipPeriodSeconds: ip.periodSeconds,
    ipBurst: integer(env, "RATE_LIMIT_IP_BURST", 10, 1, 1_000_000),
    accountIpFailures: integer(env, "RATE_LIMIT_ACCOUNT_IP_FAILURES", 5, 1, 1000),
    accountFailures: integer(env, "RATE_LIMIT_ACCOUNT_FAILURES", 50, 1, 100),
    maxDelaySeconds: duration(env, "RATE_LIMIT_MAX_DELAY", "15m"),
  });
}

const SMTP_URL_EXAMPLE = "expected smtp://user:pass@host:587 (STARTTLS when offered; ?starttls=required insists) or smtps://user:pass@host:465";

function smtpTransport(env: Env): MailTransportConfig {
  const raw = value(env, "SMTP_URL");
  if (raw === undefined) return { kind: "none" };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`SMTP_URL is not a URL: ${SMTP_URL_EXAMPLE}`);
  }
  // The URL carries a password: never echo it.
  if ((url.protocol !== "smtp:" && url.protocol !== "smtps:") || !url.hostname)
    throw new ConfigError(`SMTP_URL is invalid: ${SMTP_URL_EXAMPLE}`);
  const starttls = url.searchParams.get("starttls");
  if (starttls !== null && (starttls !== "required" || url.protocol === "smtps:"))
    throw new ConfigError(`SMTP_URL: starttls=${JSON.stringify(starttls)} is invalid: only smtp://...?starttls=required`);
  const caFile = value(env, "SMTP_TLS_CA_FILE");
  let ca: string | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(resolve(caFile), "utf8");
    } catch (error) {
      throw new ConfigError(`SMTP_TLS_CA_FILE=${caFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError(`SMTP_TLS_CA_FILE=${caFile} holds no PEM certificate`);
  }
  return Object.freeze({
    kind: "smtp" as const,
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port ? Number(url.port) : url.protocol === "smtps:" ? 465 : 587,
    tls: url.protocol === "smtps:" ? ("implicit" as const) : starttls === "required" ? ("starttls-required" as const) : ("starttls" as const),
    user: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    ca,
  });
}

/**
 * Mail and the features that need it. A feature that mails (REQUIRE_EMAIL_VERIFICATION, LOGIN_EMAIL_CODE) without
 * SMTP_URL or MAIL_TRANSPORT=log would lock users out: the start stops naming the missing variable instead.
 */
function mailConfig(env: Env): MailConfig {
  const transportName = value(env, "MAIL_TRANSPORT") ?? "smtp";
  if (transportName !== "smtp" && transportName !== "log")
    throw new ConfigError(`MAIL_TRANSPORT=${JSON.stringify(transportName)} is invalid: expected smtp or log`);
  const transport: MailTransportConfig = transportName === "log" ? { kind: "log" } : smtpTransport(env);
  const from = value(env, "MAIL_FROM");
  if (transport.kind === "smtp" && from === undefined) throw new ConfigError("MAIL_FROM is required with SMTP_URL (e.g. MAIL_FROM=\"Latchkey <auth@example.com>\")");
  if (from !== undefined && !/^([^<>\r\n]*<[^\s@<>]+@[^\s@<>]+>|[^\s@<>]+@[^\s@<>]+)$/.test(from))
    throw new ConfigError(`MAIL_FROM=${JSON.stringify(from)} is invalid: expected auth@example.com or "Name <auth@example.com>"`);
  const appName = value(env, "APP_NAME") ?? "Latchkey";
  // Also the title of every page: no control characters at all.
  if (appName.length > 100 || /\p{Cc}/u.test(appName)) throw new ConfigError("APP_NAME is invalid: expected one line of at most 100 characters");
  const requireEmailVerification = boolean(env, "REQUIRE_EMAIL_VERIFICATION", false);
  const loginEmailCode = boolean(env, "LOGIN_EMAIL_CODE", false);
  for (const [name, on] of [["REQUIRE_EMAIL_VERIFICATION", requireEmailVerification], ["LOGIN_EMAIL_CODE", loginEmailCode]] as const)
    if (on && transport.kind === "none") throw new ConfigError(`${name}=true sends mail: set SMTP_URL (and MAIL_FROM), or MAIL_TRANSPORT=log for local trials`);
  const templatesDir = value(env, "MAIL_TEMPLATES_DIR");
  const mfaRequiredRoles = (value(env, "MFA_REQUIRED_ROLES") ?? "").split(",").map((role) => role.trim()).filter(Boolean);
  for (const role of mfaRequiredRoles) {
    const problem = configRoleProblem(role);
    if (problem) throw new ConfigError(`MFA_REQUIRED_ROLES: ${problem}`);
  }
  return Object.freeze({
    transport,
    from: from ?? `${appName.replace(/[<>"]/g, "")} <noreply@localhost>`,
    appName,
    templatesDir: templatesDir === undefined ? undefined : resolve(templatesDir),
    retryInterval: duration(env, "MAIL_RETRY_INTERVAL", "5s"),
    maxAttempts: integer(env, "MAIL_MAX_ATTEMPTS", 15, 1, 1000),
    requireEmailVerification,
    loginEmailCode,
    mfaRequiredRoles: Object.freeze(mfaRequiredRoles),
    codeTtl: duration(env, "EMAIL_CODE_TTL", "10m"),
    passwordResetTtl: duration(env, "PASSWORD_RESET_TTL", "15m"),
  });
}

// ---- Signing keys and OpenID Connect (issue 15)

function signingConfig(env: Env): Pick<Config, "jwtAlg" | "oidcIdTokenAlg"> {
  const jwtAlg = value(env, "JWT_ALG") ?? "HS256";
  if (!(JWT_ALGS as readonly string[]).includes(jwtAlg))
    throw new ConfigError(`JWT_ALG=${JSON.stringify(jwtAlg)} is invalid: expected HS256, RS256, ES256 or EdDSA`);
  const idTokenAlg = value(env, "OIDC_ID_TOKEN_ALG") ?? "RS256";
  // An ID token is verified by clients from the JWKS: a shared secret is not an option (OpenID Connect Core §10.1).
  if (!(JWT_ALGS as readonly string[]).includes(idTokenAlg) || idTokenAlg === "HS256")
    throw new ConfigError(`OIDC_ID_TOKEN_ALG=${JSON.stringify(idTokenAlg)} is invalid: expected RS256, ES256 or EdDSA`);
  return { jwtAlg: jwtAlg as JwtAlg, oidcIdTokenAlg: idTokenAlg as Exclude<JwtAlg, "HS256"> };
}

/** Reads and validates every environment variable once; the result is frozen and passed around explicitly. */
export function loadConfig(env: Env = process.env): Config {
  const port = integer(env, "PORT", 3000, 1, 65535);
  const host = value(env, "HOST") ?? "0.0.0.0";
  if (!isHost(host))
    throw new ConfigError(`HOST=${JSON.stringify(host)} is invalid: expected an IP address (0.0.0.0, ::, 127.0.0.1) or a host name`);
  const databaseUrl = postgresUrl(value(env, "DATABASE_URL"));
  // At least 2: the hourly housekeeping holds one connection for its advisory lock while its queries use another.
  const databasePoolSize = integer(env, "DATABASE_POOL_SIZE", 10, 2, 1000);
  const dataDir = resolve(value(env, "DATA_DIR") ?? "./data");
  const databasePath = resolve(value(env, "DATABASE_PATH") ?? join(dataDir, "latchkey.db"));
  const databasePathVariable = value(env, "DATABASE_PATH") === undefined ? "DATA_DIR" : "DATABASE_PATH";

  const publicUrl = origin("PUBLIC_URL", value(env, "PUBLIC_URL") ?? `http://localhost:${port}`);

  const jwtSecret = value(env, "JWT_SECRET");
  if (jwtSecret !== undefined && Buffer.byteLength(jwtSecret) < 32)
    throw new ConfigError("JWT_SECRET is too short: it must be at least 32 bytes (or unset, to generate one in DATA_DIR)");

  const tokenDelivery = value(env, "TOKEN_DELIVERY") ?? "bearer";
  if (tokenDelivery !== "bearer" && tokenDelivery !== "header" && tokenDelivery !== "cookie")
    throw new ConfigError(`TOKEN_DELIVERY=${JSON.stringify(tokenDelivery)} is invalid: expected bearer, header or cookie`);

  const allowedOrigins = (value(env, "ALLOWED_ORIGINS") ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => origin("ALLOWED_ORIGINS", entry).origin);

  const accessCookieName = cookieName(env, "ACCESS_COOKIE_NAME", "latchkey_access");
  const refreshCookieName = cookieName(env, "REFRESH_COOKIE_NAME", "latchkey_refresh");
  if (accessCookieName === refreshCookieName)
    throw new ConfigError("ACCESS_COOKIE_NAME and REFRESH_COOKIE_NAME must differ");
  // Browsers keep a __Secure- cookie only with Secure, and a __Host- one only with Secure, Path=/ and no Domain
  // (RFC 6265bis §4.1.3): what a sibling subdomain cannot plant. The refresh cookie's path is /api/v1/auth.
  for (const [name, cookie] of [["ACCESS_COOKIE_NAME", accessCookieName], ["REFRESH_COOKIE_NAME", refreshCookieName]] as const) {
    if (/^__(host|secure)-/i.test(cookie) && publicUrl.protocol !== "https:")
      throw new ConfigError(`${name}=${JSON.stringify(cookie)}: the __Host- and __Secure- prefixes need an https PUBLIC_URL (the cookie must be Secure)`);
  }
  if (/^__host-/i.test(refreshCookieName))
    throw new ConfigError(`REFRESH_COOKIE_NAME=${JSON.stringify(refreshCookieName)}: a __Host- cookie must have Path=/, and the refresh cookie's is /api/v1/auth: use __Secure-`);

  const trustProxy = parseTrustProxy(value(env, "TRUST_PROXY"));
  if (!trustProxy)
    throw new ConfigError(`TRUST_PROXY=${JSON.stringify(value(env, "TRUST_PROXY"))} is invalid: expected false, true, a hop count or a comma list of proxy addresses/CIDRs`);

  const trustProxyHeader = (value(env, "TRUST_PROXY_HEADER") ?? "x-forwarded-for").toLowerCase();
  if (trustProxyHeader !== "x-forwarded-for" && trustProxyHeader !== "x-real-ip")
    throw new ConfigError(`TRUST_PROXY_HEADER=${JSON.stringify(trustProxyHeader)} is invalid: expected x-forwarded-for or x-real-ip`);

  const adminUsername = value(env, "ADMIN_USERNAME");
  const adminPasswordFile = value(env, "ADMIN_PASSWORD_FILE");
  if ((adminUsername === undefined) !== (adminPasswordFile === undefined))
    throw new ConfigError("ADMIN_USERNAME and ADMIN_PASSWORD_FILE must be set together (the password comes from the file, never the environment)");
  const bootstrapAdmin =
    adminUsername && adminPasswordFile ? Object.freeze({ username: adminUsername, passwordFile: resolve(adminPasswordFile) }) : undefined;

  const mail = mailConfig(env);
  const browser = browserConfig(env, publicUrl, [accessCookieName, refreshCookieName], trustProxy);
  return Object.freeze({
    port,
    host,
    dataDir,
    databasePath,
    databaseUrl,
    databasePoolSize,
    databasePathVariable,
    publicUrl: publicUrl.href.replace(/\/$/, ""),
    publicOrigin: publicUrl.origin,
    secureCookies: publicUrl.protocol === "https:",
    jwtSecret,
    tokenDelivery,
    allowRegistration: boolean(env, "ALLOW_REGISTRATION", false),
    accessTokenTtl: duration(env, "ACCESS_TOKEN_TTL", "3600"),
    refreshTokenTtl: duration(env, "REFRESH_TOKEN_TTL", "30d"),
    refreshReuseInterval: duration(env, "REFRESH_REUSE_INTERVAL", "10s", true),
    passwordMinLength: integer(env, "PASSWORD_MIN_LENGTH", 8, 1, 1024),
    // OWASP Password Storage Cheat Sheet: argon2id with at least 19 MiB and t=2.
    passwordHash: Object.freeze({
      memoryCost: integer(env, "PASSWORD_HASH_MEMORY_KIB", 19456, 19456, 4194304),
      timeCost: integer(env, "PASSWORD_HASH_TIME_COST", 2, 2, 100),
    }),
    allowedOrigins: Object.freeze(allowedOrigins),
    accessCookieName,
    refreshCookieName,
    trustProxy,
    trustProxyHeader,
    rateLimit: rateLimitConfig(env),
    bootstrapAdmin,
    auditRetentionDays: integer(env, "AUDIT_RETENTION_DAYS", 90, 1, 36500),
    apiKeysMaxPerUser: integer(env, "API_KEYS_MAX_PER_USER", 25, 0, 10000),
    apiKeyRateLimit: rateLimit(env, "API_KEY_RATE_LIMIT", true),
    mail,
    ...signingConfig(env),
    ...browser,
    passkeys: passkeyConfig(env, publicUrl, browser.signInOrigins),
    // One APP_NAME for mail and pages, checked once (in mailConfig).
    appName: mail.appName,
    runAs: runAsConfig(env),
    metrics: metricsConfig(env),
    branding: brandingConfig(env),
  });
}

// ---- Observability (issue 22) ----

/** METRICS_ADDR (`host:port`, `[v6]:port`) and METRICS_TOKEN; metrics are off unless one is set. */
function metricsConfig(env: Env): MetricsConfig {
  const addr = value(env, "METRICS_ADDR");
  let listen: MetricsConfig["listen"];
  if (addr !== undefined) {
    const match = /^(?:\[([0-9a-f:.]+)\]|([^:\[\]]+)):(\d{1,5})$/i.exec(addr);
    const host = match?.[1] ?? match?.[2];
    const port = Number(match?.[3]);
    if (!match || !host || !isHost(host) || (match[1] !== undefined && parseIp(host) === undefined) || port < 1 || port > 65535)
      throw new ConfigError(`METRICS_ADDR=${JSON.stringify(addr)} is invalid: expected host:port, e.g. 127.0.0.1:9464 or [::1]:9464`);
    listen = Object.freeze({ host, port });
  }
  const token = value(env, "METRICS_TOKEN");
  // RFC 6750 §2.1 b64token characters, and as long as JWT_SECRET: a scraper's secret, guessed by no one.
  if (token !== undefined && !/^[A-Za-z0-9\-._~+/]{32,512}=*$/.test(token))
    throw new ConfigError("METRICS_TOKEN is invalid: expected 32 to 512 letters, digits or -._~+/ (e.g. openssl rand -hex 32)");
  return Object.freeze({ listen, token });
}


// ---- The pages' logo and accent colour (issue 24) ----

/** The largest APP_LOGO: a logo, not a photo (it is held in memory and sent with every page view). */
const LOGO_MAX_BYTES = 512 * 1024;

/** An image type by its first bytes (never by the file name): PNG, JPEG, GIF, WebP, or SVG text. */
function imageType(bytes: Uint8Array): string | undefined {
  const starts = (...signature: number[]) => signature.every((byte, index) => bytes[index] === byte);
  if (starts(0x89, 0x50, 0x4e, 0x47)) return "image/png";
  if (starts(0xff, 0xd8, 0xff)) return "image/jpeg";
  if (starts(0x47, 0x49, 0x46, 0x38)) return "image/gif";
  if (starts(0x52, 0x49, 0x46, 0x46) && bytes[8] === 0x57 && bytes[9] === 0x45 && bytes[10] === 0x42 && bytes[11] === 0x50) return "image/webp";
  const head = new TextDecoder().decode(bytes.subarray(0, 1024)).trimStart();
  if (/^(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!doctype svg[^>]*>\s*)?<svg[\s>]/i.test(head)) return "image/svg+xml";
  return undefined;
}

function brandingConfig(env: Env): Config["branding"] {
  const accent = value(env, "APP_ACCENT_COLOR");
  if (accent !== undefined && !/^#[0-9a-f]{6}$/i.test(accent))
    throw new ConfigError(`APP_ACCENT_COLOR=${JSON.stringify(accent)} is invalid: expected a colour as #rrggbb, e.g. #2456d6`);
  const logoFile = value(env, "APP_LOGO");
  let logo: { bytes: Uint8Array; type: string } | undefined;
  if (logoFile !== undefined) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(resolve(logoFile));
    } catch (error) {
      throw new ConfigError(`APP_LOGO=${JSON.stringify(logoFile)} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    if (bytes.length === 0 || bytes.length > LOGO_MAX_BYTES)
      throw new ConfigError(`APP_LOGO=${JSON.stringify(logoFile)} is invalid: expected an image of 1 byte to ${LOGO_MAX_BYTES / 1024} KiB`);
    const type = imageType(bytes);
    if (!type) throw new ConfigError(`APP_LOGO=${JSON.stringify(logoFile)} is invalid: expected a PNG, JPEG, GIF, WebP or SVG image`);
    logo = Object.freeze({ bytes, type });
  }
  return Object.freeze({ accent: accent?.toLowerCase(), logo });
}

// ---- Running as root (issues 14, 22) ----

/** The highest uid/gid Linux accepts: 2^32 - 2 (2^32 - 1 is "no change" for setuid/chown). */
const MAX_ID = 4294967294;

/**
 * Only an explicit PUID changes the user (the image sets PUID=1000 PGID=1000): a default uid would hand DATA_DIR,
 * the JWT secret and the password hashes to whoever uid 1000 is on the host (issue 22).
 */
function runAsConfig(env: Env): Config["runAs"] {
  if (value(env, "PUID") === undefined) {
    if (value(env, "PGID") !== undefined) throw new ConfigError("PGID is set without PUID: set both (PUID alone also works: PGID defaults to it)");
    return undefined;
  }
  const uid = integer(env, "PUID", 0, 0, MAX_ID);
  return Object.freeze({ uid, gid: integer(env, "PGID", uid, 0, MAX_ID) });
}

// ---- Browser pages, the browser session and forward auth (issue 12) ----

function browserConfig(env: Env, publicUrl: URL, otherCookies: string[], trustProxy: TrustProxy) {
  const sessionCookieName = cookieName(env, "SESSION_COOKIE_NAME", "latchkey_session");
  if (otherCookies.includes(sessionCookieName))
    throw new ConfigError("SESSION_COOKIE_NAME must differ from ACCESS_COOKIE_NAME and REFRESH_COOKIE_NAME");
  if (/^__(host|secure)-/i.test(sessionCookieName) && publicUrl.protocol !== "https:")
    throw new ConfigError(`SESSION_COOKIE_NAME=${JSON.stringify(sessionCookieName)}: the __Host- and __Secure- prefixes need an https PUBLIC_URL (the cookie must be Secure)`);

  const signInOrigins = [publicUrl.origin];
  for (const entry of (value(env, "SIGN_IN_URLS") ?? "").split(",").map((raw) => raw.trim()).filter(Boolean)) {
    const url = origin("SIGN_IN_URLS", entry);
    if (url.pathname !== "/" || url.search || url.hash)
      throw new ConfigError(`SIGN_IN_URLS: ${JSON.stringify(entry)} must be an origin only, e.g. https://auth.example.net`);
    if (url.protocol !== publicUrl.protocol)
      throw new ConfigError(`SIGN_IN_URLS: ${JSON.stringify(entry)} must use ${publicUrl.protocol}// like PUBLIC_URL (cookies are Secure on all of them or none)`);
    if (!signInOrigins.includes(url.origin)) signInOrigins.push(url.origin);
  }

  const rulesFile = value(env, "ACCESS_RULES_FILE");
  // Rules match the request the proxy describes, which is believed only from a proxy TRUST_PROXY allows: without
  // one every rule would be ignored (and every forward request denied), so the start refuses instead.
  if (rulesFile !== undefined && trustProxy.kind === "none")
    throw new ConfigError("TRUST_PROXY must name your reverse proxy when ACCESS_RULES_FILE is set: the rules match the request only a trusted proxy can describe");
  return {
    sessionCookieName,
    sessionIdleTtl: duration(env, "SESSION_IDLE_TTL", "7d"),
    signInOrigins: Object.freeze(signInOrigins),
    accessRulesFile: rulesFile === undefined ? undefined : resolve(rulesFile),
  };
}

// ---- Passkeys (issue 25) ----

/**
 * The WebAuthn relying-party ID: PASSKEY_RP_ID, or PUBLIC_URL's host. A passkey is scoped to it and usable from
 * that host and every host under it (W3C WebAuthn Level 3 §5.1.4.1: the RP ID must be a registrable domain suffix
 * of the origin's host). A set PASSKEY_RP_ID must be such a suffix of every sign-in host, or the start stops;
 * the default keeps only the sign-in origins under PUBLIC_URL's host (another registrable domain cannot share it).
 */
function passkeyConfig(env: Env, publicUrl: URL, signInOrigins: readonly string[]): PasskeyConfig {
  const raw = value(env, "PASSKEY_RP_ID");
  const underRpId = (rpId: string, origin: string) => {
    const host = new URL(origin).hostname;
    return host === rpId || host.endsWith(`.${rpId}`);
  };
  if (raw === undefined) {
    const rpId = publicUrl.hostname;
    return Object.freeze({ rpId, origins: Object.freeze(signInOrigins.filter((origin) => underRpId(rpId, origin))) });
  }
  const rpId = raw.toLowerCase();
  // A domain (not an IP address, not a bare top-level domain like "com"); localhost for trials.
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(rpId) || parseIp(rpId) !== undefined || (!rpId.includes(".") && rpId !== "localhost"))
    throw new ConfigError(`PASSKEY_RP_ID=${JSON.stringify(raw)} is invalid: expected a domain such as example.com`);
  const outside = signInOrigins.find((origin) => !underRpId(rpId, origin));
  if (outside !== undefined)
    throw new ConfigError(`PASSKEY_RP_ID=${JSON.stringify(raw)} is not a suffix of the sign-in host ${outside} (PUBLIC_URL, SIGN_IN_URLS): passkeys would not work there`);
  return Object.freeze({ rpId, origins: Object.freeze([...signInOrigins]) });
}
