import type { Cookie } from "elysia";
import { AUTH_PREFIX } from "../http/routes";
import { DEVICE_COOKIE } from "../http/cookies";
import { DEVICE_TRUST_SECONDS } from "../limits/device";
import type { Config } from "../config";
import { ApiError, invalidRefreshToken, invalidToken } from "../errors";
import type { IssuedAccessToken } from "../tokens/access";
import type { PublicUser } from "../modules/users/service";

/**
 * How tokens travel (TOKEN_DELIVERY), kept apart from what they are: the auth service hands over
 * an IssuedTokens and this module decides whether it becomes JSON, a `Token` header or cookies.
 */

export interface IssuedTokens {
  access: IssuedAccessToken;
  refreshToken: string;
  refreshExpiresIn: number;
  user: PublicUser;
  /** After a sign-in with a password: the device cookie that exempts this browser from the account-wide backstop. */
  device?: string;
}

type ResponseHeaders = Record<string, string | number | string[] | undefined>;

/**
 * Where tokens are written: Elysia's `set` and cookie jar. A handler must name `cookie` in its parameters
 * (Elysia only builds the jar for handlers it can see use it).
 */
export interface TokenWriter {
  set: { headers: ResponseHeaders };
  cookie: Record<string, Cookie<unknown>>;
}

export interface PresentedToken {
  token: string;
  /** Came from a cookie, so the browser may have sent it on another site's behalf: subject to the CSRF check. */
  viaCookie: boolean;
}

const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export const csrfRejected = (message = "Cross-site request refused: the request's Origin is neither PUBLIC_URL nor in ALLOWED_ORIGINS.") =>
  new ApiError(403, "csrf_rejected", message);

export function createDelivery(config: Config) {
  const mode = config.tokenDelivery;
  const trustedOrigins = new Set([config.publicOrigin, ...config.allowedOrigins]);

  const accessCookie = { httpOnly: true, sameSite: "lax", path: "/", secure: config.secureCookies } as const;
  // Read only at sign-in; Lax so that the sign-in page (reached by a link) also sends it.
  const deviceCookie = { httpOnly: true, sameSite: "lax", path: "/", secure: config.secureCookies } as const;
  const refreshCookie = { httpOnly: true, sameSite: "strict", path: AUTH_PREFIX, secure: config.secureCookies } as const;

  function noStore(headers: ResponseHeaders) {
    headers["cache-control"] = "no-store";
    headers["pragma"] = "no-cache";
  }

  /**
   * A cookie's value, read from the request itself (independent of which handlers Elysia built a jar for).
   * Sent twice, as when a sibling subdomain plants one for the parent domain or a longer path beside ours, it is
   * refused with `duplicate()` rather than one copy picked: picking would let the planted one sign the browser in
   * as someone else (cookie tossing).
   */
  function readCookie(request: Request, name: string, duplicate: () => ApiError): string | undefined {
    const header = request.headers.get("cookie");
    if (!header) return undefined;
    let value: string | undefined;
    for (const pair of header.split(";")) {
      const equals = pair.indexOf("=");
      if (equals === -1 || pair.slice(0, equals).trim() !== name) continue;
      if (value !== undefined) throw duplicate();
      value = pair.slice(equals + 1).trim();
    }
    return value || undefined;
  }

  return {
    mode,

    /**
     * Reads the access token. `Authorization: Bearer` works in every mode (machine clients of /token);
     * header mode adds the `token` request header, cookie mode the access cookie.
     */
    readAccessToken(request: Request): PresentedToken | undefined {
      const authorization = request.headers.get("authorization");
      if (authorization) {
        const match = /^Bearer +([^\s]+) *$/i.exec(authorization);
        return match ? { token: match[1]!, viaCookie: false } : undefined;
      }
      if (mode === "header") {
        const token = request.headers.get("token");
        return token ? { token, viaCookie: false } : undefined;
      }
      if (mode === "cookie") {
        const token = readCookie(request, config.accessCookieName, invalidToken);
        return token ? { token, viaCookie: true } : undefined;
      }
      return undefined;
    },

    /** The refresh token: the refresh cookie in cookie mode, `refresh_token` in the JSON body otherwise. */
    readRefreshToken(request: Request, body: { refresh_token?: unknown } | undefined): PresentedToken | undefined {
      if (mode === "cookie") {
        const token = readCookie(request, config.refreshCookieName, invalidRefreshToken);
        return token ? { token, viaCookie: true } : undefined;
      }
      const token = body?.refresh_token;
      return typeof token === "string" && token ? { token, viaCookie: false } : undefined;
    },

    /**
     * OWASP CSRF Prevention Cheat Sheet, "Verifying Origin with standard headers" plus Fetch Metadata:
     * a state-changing request carrying a cookie credential must come from PUBLIC_URL or ALLOWED_ORIGINS.
     * With neither Origin nor Referer the request is refused too (browsers send Origin on every POST).
     */
    assertSameOrigin(request: Request): void {
      if (!STATE_CHANGING.has(request.method)) return;
      if (request.headers.get("sec-fetch-site") === "cross-site") throw csrfRejected();
      const origin = requestOrigin(request);
      // A client that sent neither header is told so: "not allowed" would send its author looking at PUBLIC_URL.
      if (!origin) throw csrfRejected("Cross-site request refused: a request authenticated by a cookie needs an Origin or Referer header, and this one has neither.");
      if (!trustedOrigins.has(origin)) throw csrfRejected();
    },

    /** Cookie-mode login and register: refuse a foreign page that posts credentials (login CSRF). */
    assertNotCrossSite(request: Request): void {
      if (mode !== "cookie") return;
      const origin = requestOrigin(request);
      if (request.headers.get("sec-fetch-site") === "cross-site" || (origin && !trustedOrigins.has(origin)))
        throw csrfRejected();
    },

    /**
     * A browser request from a page of another site, in any mode: a foreign Origin (or Referer), or Fetch
     * Metadata's `Sec-Fetch-Site: cross-site` with no Origin we trust. Machine clients send neither.
     */
    assertNotForeignPage(request: Request): void {
      const origin = requestOrigin(request);
      if (origin ? !trustedOrigins.has(origin) : request.headers.get("sec-fetch-site") === "cross-site") throw csrfRejected();
    },

    /** Writes the tokens where this mode carries them and returns the response body. */
    respond(out: TokenWriter, tokens: IssuedTokens) {
      noStore(out.set.headers);
      // Cookie mode only: bearer and header mode answer with no cookie at all (their clients are recognised by address).
      if (mode === "cookie" && tokens.device) out.cookie[DEVICE_COOKIE]!.set({ value: tokens.device, maxAge: DEVICE_TRUST_SECONDS, ...deviceCookie });
      if (mode === "cookie") {
        out.cookie[config.accessCookieName]!.set({ value: tokens.access.token, maxAge: tokens.access.expiresIn, ...accessCookie });
        out.cookie[config.refreshCookieName]!.set({ value: tokens.refreshToken, maxAge: tokens.refreshExpiresIn, ...refreshCookie });
        return { message: "Signed in.", expires_in: tokens.access.expiresIn, user: tokens.user };
      }
      if (mode === "header") out.set.headers["token"] = tokens.access.token;
      return {
        access_token: tokens.access.token,
        token_type: "bearer" as const,
        expires_in: tokens.access.expiresIn,
        refresh_token: tokens.refreshToken,
        user: tokens.user,
      };
    },

    /** Header mode: every authenticated response carries a fresh access token (sliding expiry). */
    get slidesAccessToken() {
      return mode === "header";
    },

    attachAccessToken(headers: ResponseHeaders, access: IssuedAccessToken): void {
      noStore(headers);
      headers["token"] = access.token;
    },

    /** After logout: forget every credential this mode handed out. */
    clear(out: TokenWriter): void {
      delete out.set.headers["token"];
      if (mode !== "cookie") return;
      out.set.headers["clear-site-data"] = '"cookies"';
      out.cookie[config.accessCookieName]!.set({ value: "", maxAge: 0, ...accessCookie });
      out.cookie[config.refreshCookieName]!.set({ value: "", maxAge: 0, ...refreshCookie });
    },
  };
}

/** The Origin header, or lacking it (absent or empty), the origin of the Referer. */
function requestOrigin(request: Request): string | undefined {
  return request.headers.get("origin") || refererOrigin(request.headers.get("referer"));
}

function refererOrigin(referer: string | null): string | undefined {
  if (!referer) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}

export type Delivery = ReturnType<typeof createDelivery>;
