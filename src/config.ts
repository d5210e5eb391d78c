import { join, resolve } from "node:path";
import { parseIp, parseTrustProxy, type ProxyHeader, type TrustProxy } from "./http/client-ip";
import { parseDuration } from "./lib/duration";

export type TokenDelivery = "bearer" | "header" | "cookie";

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly databasePath: string;
  /** Which variable decided databasePath (DATABASE_PATH, or DATA_DIR when it is unset): named in errors. */
  readonly databasePathVariable: "DATABASE_PATH" | "DATA_DIR";
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

  // Browser pages, the browser session and forward auth (issue 12).
  /** Shown on every page (APP_NAME). */
  readonly appName: string;
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
export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function value(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === "" ? undefined : raw.trim();
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

/** Reads and validates every environment variable once; the result is frozen and passed around explicitly. */
export function loadConfig(env: Env = process.env): Config {
  const port = integer(env, "PORT", 3000, 1, 65535);
  const host = value(env, "HOST") ?? "0.0.0.0";
  if (!isHost(host))
    throw new ConfigError(`HOST=${JSON.stringify(host)} is invalid: expected an IP address (0.0.0.0, ::, 127.0.0.1) or a host name`);
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

  return Object.freeze({
    port,
    host,
    dataDir,
    databasePath,
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
    ...browserConfig(env, publicUrl, [accessCookieName, refreshCookieName]),
  });
}

// ---- Browser pages, the browser session and forward auth (issue 12) ----

function browserConfig(env: Env, publicUrl: URL, otherCookies: string[]) {
  const appName = value(env, "APP_NAME") ?? "Latchkey";
  if ([...appName].length > 64 || /\p{C}/u.test(appName))
    throw new ConfigError(`APP_NAME=${JSON.stringify(appName)} is invalid: expected at most 64 visible characters`);

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
  return {
    appName,
    sessionCookieName,
    sessionIdleTtl: duration(env, "SESSION_IDLE_TTL", "7d"),
    signInOrigins: Object.freeze(signInOrigins),
    accessRulesFile: rulesFile === undefined ? undefined : resolve(rulesFile),
  };
}
