import type { Cookie } from "elysia";
import type { IssuedAccessToken } from "../tokens/access";
import { noStore } from "../http/cache";

/**
 * How a token travels, apart from what it is (fastapi-users' Transport vs Strategy): one `Transport` per
 * TOKEN_DELIVERY mode (bearer.ts, header.ts, cookie.ts), chosen once at start by `createDelivery`. The auth
 * service hands over `IssuedTokens`; the transport reads credentials from requests and writes token responses.
 */

/** The user a token response names (the users module's PublicUser, which this layer does not import). */
export type TokenUser = { readonly id: string };

export interface IssuedTokens<User extends TokenUser = TokenUser> {
  access: IssuedAccessToken;
  refreshToken: string;
  refreshExpiresIn: number;
  user: User;
  /** After a sign-in with a password: the device cookie that exempts this browser from the account-wide backstop. */
  device?: string;
}

export type ResponseHeaders = Record<string, string | number | string[] | undefined>;

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

export interface Transport {
  /** The access credential: `Authorization: Bearer` in every mode (machine clients of /token), plus the mode's own. */
  readAccessToken(request: Request): PresentedToken | undefined;
  /** The refresh credential: the JSON body's `refresh_token`, or the refresh cookie. */
  readRefreshToken(request: Request, body: { refresh_token?: unknown } | undefined): PresentedToken | undefined;
  /** Writes the tokens where this mode carries them and returns the response body. */
  respond<User extends TokenUser>(out: TokenWriter, tokens: IssuedTokens<User>): TokenResponseBody<User>;
  /** After logout: forget every credential this mode handed out. */
  clear(out: TokenWriter): void;
  /** Modes with a sliding session (header): put a fresh access token on an authenticated answer. */
  slide?: (headers: ResponseHeaders, access: IssuedAccessToken) => void;
  /** Modes whose sign-in sets cookies: refuse another site's page posting credentials (login CSRF). */
  refuseCrossSiteSignIn(request: Request): void;
}

/** A token response's body: RFC 6749's with the user (bearer, header), or only the user (cookie: tokens in cookies). */
export type TokenResponseBody<User> =
  | (ReturnType<typeof oauthTokenBody> & { user: User })
  | { message: string; expires_in: number; user: User };

/** RFC 6749 §5.1: a token response is never cached, said also the HTTP/1.0 way. */
export function tokenResponseHeaders(headers: ResponseHeaders): void {
  noStore(headers);
  headers["pragma"] = "no-cache";
}

/** The RFC 6749 §5.1 body: what /token always answers, and bearer and header mode's body without its `user`. */
export function oauthTokenBody(tokens: IssuedTokens) {
  return {
    access_token: tokens.access.token,
    token_type: "bearer" as const,
    expires_in: tokens.access.expiresIn,
    refresh_token: tokens.refreshToken,
  };
}

/**
 * `Authorization: Bearer <token>` (RFC 6750 §2.1): the token; undefined for a malformed header, which presents
 * nothing (the mode's own carrier is not read then); null when there is no header (the mode's carrier is read).
 */
export function readAuthorization(request: Request): PresentedToken | undefined | null {
  const authorization = request.headers.get("authorization");
  if (!authorization) return null;
  const match = /^Bearer +([^\s]+) *$/i.exec(authorization);
  return match ? { token: match[1]!, viaCookie: false } : undefined;
}

/** The JSON body's `refresh_token` (bearer and header mode). */
export function readBodyRefreshToken(body: { refresh_token?: unknown } | undefined): PresentedToken | undefined {
  const token = body?.refresh_token;
  return typeof token === "string" && token ? { token, viaCookie: false } : undefined;
}
