/**
 * HTTP helpers for the end-to-end contract tests (issue 2): raw requests that keep the exact response text and
 * Set-Cookie lines, and a delivery-mode-aware client with a cookie jar that behaves like a browser or an
 * axios interceptor would (respects cookie paths, forgets cleared cookies, copies the `Token` header).
 */
export const MODES = ["bearer", "header", "cookie"] as const;
export type Mode = (typeof MODES)[number];

export const AUTH = "/api/v1/auth";
export const ACCESS_COOKIE = "latchkey_access";
export const REFRESH_COOKIE = "latchkey_refresh";
/** The sign-in pages' browser session (SESSION_COOKIE_NAME's default). */
export const SESSION_COOKIE = "latchkey_session";

/** One Set-Cookie line: name, value, and attributes by lower-cased name (flags map to true). */
export interface SetCookie {
  name: string;
  value: string;
  attributes: Record<string, string | true>;
  /** The attribute names and values as sent, e.g. ["Max-Age=900", "Path=/", "HttpOnly", "SameSite=Lax"]. */
  rawAttributes: string[];
}

export function parseSetCookie(line: string): SetCookie {
  const [pair, ...rest] = line.split(";").map((part) => part.trim());
  const separator = pair!.indexOf("=");
  const rawAttributes = rest.filter(Boolean);
  const attributes: Record<string, string | true> = {};
  for (const attribute of rawAttributes) {
    const at = attribute.indexOf("=");
    if (at === -1) attributes[attribute.toLowerCase()] = true;
    else attributes[attribute.slice(0, at).toLowerCase()] = attribute.slice(at + 1);
  }
  return { name: pair!.slice(0, separator), value: pair!.slice(separator + 1), attributes, rawAttributes };
}

export interface Reply<T = any> {
  status: number;
  headers: Headers;
  /** The body exactly as received. */
  text: string;
  /** The body parsed as JSON, or undefined when it is empty or not JSON. */
  body: T;
  /** Set-Cookie lines by cookie name. */
  cookies: Record<string, SetCookie>;
}

/** Anything fetch takes as a body. */
export type RawBody = NonNullable<RequestInit["body"]>;

export interface RequestOptions {
  /** Sent as JSON with `content-type: application/json`. */
  json?: unknown;
  /** Sent as `application/x-www-form-urlencoded`. */
  form?: Record<string, string>;
  /** Sent as is; set the content type in `headers`. */
  raw?: RawBody;
  headers?: Record<string, string>;
}

/** A plain request: no cookies, no credentials, unless given in `headers`. */
export async function send<T = any>(base: string, method: string, path: string, options: RequestOptions = {}): Promise<Reply<T>> {
  const headers: Record<string, string> = {};
  let body: RawBody | undefined;
  if (options.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.form !== undefined) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(options.form).toString();
  } else if (options.raw !== undefined) {
    body = options.raw;
  }
  Object.assign(headers, options.headers);
  const response = await fetch(`${base}${path}`, { method, headers, body, redirect: "manual" });
  const text = await response.text();
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  const cookies: Record<string, SetCookie> = {};
  for (const line of response.headers.getSetCookie()) {
    const cookie = parseSetCookie(line);
    cookies[cookie.name] = cookie;
  }
  return { status: response.status, headers: response.headers, text, body: parsed, cookies };
}

/** The headers that present an access token the way `mode` reads it (cookie: the access cookie). */
export function credential(mode: Mode, accessToken: string): Record<string, string> {
  if (mode === "bearer") return { authorization: `Bearer ${accessToken}` };
  if (mode === "header") return { token: accessToken };
  return { cookie: `${ACCESS_COOKIE}=${accessToken}` };
}

/** The claims of a JWT, without verifying it. */
export function jwtClaims(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString());
}

interface JarEntry {
  value: string;
  path: string;
}

/**
 * One user agent in one delivery mode. It keeps what the mode hands out and presents it the mode's way:
 * bearer: `access_token` from the body into `Authorization: Bearer`; header: the `Token` response header into
 * the next request's `token` header; cookie: a cookie jar (path-matched, cleared by Max-Age=0) plus an Origin.
 */
export class Client {
  readonly jar = new Map<string, JarEntry>();
  /** bearer and header modes: the access token the client will present next. */
  accessToken: string | undefined;
  /** bearer and header modes: the refresh token from the last token response. */
  refreshToken: string | undefined;
  /** Sent as `Origin` on every request unless a request's headers override it (undefined: none). */
  origin: string | undefined;

  constructor(
    readonly base: string,
    readonly mode: Mode,
    options: { origin?: string } = {},
  ) {
    this.origin = options.origin;
  }

  /** The access credential whichever way this mode keeps it. */
  get access(): string | undefined {
    return this.mode === "cookie" ? this.jar.get(ACCESS_COOKIE)?.value : this.accessToken;
  }

  /** The refresh credential whichever way this mode keeps it. */
  get refresh(): string | undefined {
    return this.mode === "cookie" ? this.jar.get(REFRESH_COOKIE)?.value : this.refreshToken;
  }

  /** Replaces the refresh credential (to present an older one again). */
  setRefresh(token: string): void {
    if (this.mode === "cookie") this.jar.set(REFRESH_COOKIE, { value: token, path: `${AUTH}` });
    else this.refreshToken = token;
  }

  /** Replaces the access credential (to present an older one again). */
  setAccess(token: string): void {
    if (this.mode === "cookie") this.jar.set(ACCESS_COOKIE, { value: token, path: "/" });
    else this.accessToken = token;
  }

  /** Forgets every credential. */
  reset(): void {
    this.jar.clear();
    this.accessToken = undefined;
    this.refreshToken = undefined;
  }

  private cookieHeader(path: string): string | undefined {
    const matching = [...this.jar].filter(([, entry]) => path === entry.path || path.startsWith(entry.path.endsWith("/") ? entry.path : `${entry.path}/`));
    return matching.length ? matching.map(([name, entry]) => `${name}=${entry.value}`).join("; ") : undefined;
  }

  async request<T = any>(method: string, path: string, options: RequestOptions = {}): Promise<Reply<T>> {
    const headers: Record<string, string> = {};
    if (this.origin !== undefined) headers.origin = this.origin;
    if (this.mode === "bearer" && this.accessToken) headers.authorization = `Bearer ${this.accessToken}`;
    if (this.mode === "header" && this.accessToken) headers.token = this.accessToken;
    const cookie = this.cookieHeader(path.split("?")[0]!);
    if (cookie) headers.cookie = cookie;
    const reply = await send<T>(this.base, method, path, { ...options, headers: { ...headers, ...options.headers } });

    for (const set of Object.values(reply.cookies)) {
      const maxAge = set.attributes["max-age"];
      if (maxAge !== undefined && Number(maxAge) <= 0) this.jar.delete(set.name);
      else this.jar.set(set.name, { value: set.value, path: typeof set.attributes.path === "string" ? set.attributes.path : "/" });
    }
    const body = reply.body as any;
    if (this.mode === "bearer" || this.mode === "header") {
      if (typeof body?.access_token === "string") this.accessToken = body.access_token;
      if (typeof body?.refresh_token === "string") this.refreshToken = body.refresh_token;
    }
    // The axios interceptor: whatever Token a response carries becomes the next request's `token`.
    if (this.mode === "header" && reply.headers.get("token")) this.accessToken = reply.headers.get("token")!;
    return reply;
  }

  register(username: string, password: string, email?: string): Promise<Reply> {
    return this.request("POST", `${AUTH}/register`, { json: email === undefined ? { username, password } : { username, password, email } });
  }

  login(login: string, password: string): Promise<Reply> {
    return this.request("POST", `${AUTH}/login`, { json: { username: login, password } });
  }

  /** POST /refresh with this client's refresh token (the body in bearer/header mode, the cookie in cookie mode). */
  refreshSession(headers: Record<string, string> = {}): Promise<Reply> {
    return this.request("POST", `${AUTH}/refresh`, { json: this.mode === "cookie" ? {} : { refresh_token: this.refreshToken }, headers });
  }

  logout(headers: Record<string, string> = {}): Promise<Reply> {
    return this.request("POST", `${AUTH}/logout`, { headers });
  }

  me(): Promise<Reply> {
    return this.request("GET", `${AUTH}/me`);
  }

  validate(): Promise<Reply> {
    return this.request("GET", `${AUTH}/validate`);
  }
}

/**
 * Polls `probe` until `done` holds for its result (e.g. a revocation made by another process reaching the
 * server, whose session cache lives 1 s); throws after `timeoutMs`, naming what it waited for and the last result.
 */
export async function waitFor<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      const last = (value as { status?: unknown; body?: unknown })?.status !== undefined ? value : String(value);
      throw new Error(`waitFor: ${done.toString()} did not hold within ${timeoutMs} ms; last result: ${JSON.stringify(last)}`);
    }
    await Bun.sleep(50);
  }
}

/** Signs `claims` as a JWT with an HMAC key, to forge tokens the server must refuse (or accept, as a control). */
export function signJwt(claims: Record<string, unknown>, key: string, alg: "HS256" | "HS384" | "HS512" = "HS256"): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${encode({ alg, typ: "JWT" })}.${encode(claims)}`;
  const hash = ({ HS256: "sha256", HS384: "sha384", HS512: "sha512" } as const)[alg];
  const signature = Buffer.from(new Bun.CryptoHasher(hash, key).update(input).digest()).toString("base64url");
  return `${input}.${signature}`;
}
