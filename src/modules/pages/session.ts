import type { Config } from "../../config";
import type { BrowserSessionPrincipal, SessionService } from "../sessions/service";
import { DEVICE_COOKIE, readCookie } from "../../http/cookies";
import { hmacBase64url, safeEqual } from "../../lib/crypto";
import { DEVICE_TRUST_SECONDS } from "../../limits/device";
import { signInHosts, type SignInHost } from "./hosts";

type ResponseHeaders = Record<string, string | number | string[] | undefined>;

/**
 * The page cookie's name: SESSION_COOKIE_NAME (without a prefix of its own) and `_page`, under https with the
 * `__Host-` prefix, which makes the browser refuse it unless it is Secure, Path=/ and has no Domain: no sibling
 * subdomain can set or overwrite it (RFC 6265bis §4.1.3.2). Every sign-in host shares one scheme (config.ts).
 */
export function pageCookieName(sessionCookieName: string, secure: boolean): string {
  const base = `${sessionCookieName.replace(/^__(host|secure)-/i, "")}_page`;
  return secure ? `__Host-${base}` : base;
}

/**
 * The browser session: an opaque random cookie (not a signed one: a bad signature would answer 400 on every
 * route), HttpOnly, SameSite=Lax, Secure under https, backed by a row of the sessions table. It travels as two
 * cookies with two roles:
 *  - the session cookie (SESSION_COOKIE_NAME), set for the domain each sign-in host covers (see hosts.ts), so
 *    forward auth sees it on every app of that domain: it is good for forward auth only, and every protected app
 *    receives it;
 *  - the page cookie (pageCookieName), host-only on the sign-in host: the session token and an HMAC of it under a
 *    server key. Only it opens the sign-in host's own pages (account, API-key minting, admin, OpenID Connect
 *    authorisation, the handoff to another root domain), so an app that logs or leaks its request headers holds
 *    nothing that opens Latchkey itself: the HMAC cannot be made from the session cookie without the key.
 * Both name one session row, so a sign-out, a password change or a disabled account ends both at once.
 */
export function createBrowserSessions(config: Config, sessions: SessionService, pageCookieKey: Uint8Array) {
  const hosts = signInHosts(config.signInOrigins);
  const name = config.sessionCookieName;
  const primary = hosts[0]!;
  const pageName = pageCookieName(name, primary.secure);

  function cookie(host: SignInHost, value: string, maxAge: number, cookieName = name): string {
    return (
      `${cookieName}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax` +
      (host.cookieDomain ? `; Domain=${host.cookieDomain}` : "") +
      (host.secure ? "; Secure" : "")
    );
  }

  /** The page cookie's value for a session token: the token, a dot, and its HMAC. */
  const pageValue = (token: string) => `${token}.${hmacBase64url(pageCookieKey, token)}`;

  /** The session token inside a page cookie's value, if its HMAC is right (compared in constant time). */
  function tokenOfPage(value: string | undefined): string | undefined {
    const dot = value?.lastIndexOf(".") ?? -1;
    if (!value || dot < 1) return undefined;
    const token = value.slice(0, dot);
    return safeEqual(value.slice(dot + 1), hmacBase64url(pageCookieKey, token)) ? token : undefined;
  }

  function appendCookie(headers: ResponseHeaders, value: string): void {
    const existing = headers["set-cookie"];
    headers["set-cookie"] = existing === undefined ? [value] : Array.isArray(existing) ? [...existing, value] : [String(existing), value];
  }

  return {
    hosts,
    primary,
    cookieName: name,

    /** The sign-in host this request came to (by its Host header), PUBLIC_URL's when it is none of them. */
    hostOf(request: Request): SignInHost {
      const host = request.headers.get("host")?.toLowerCase();
      if (host) {
        const exact = hosts.find((candidate) => new URL(candidate.origin).host === host);
        if (exact) return exact;
        const hostname = host.replace(/:\d+$/, "");
        const byName = hosts.find((candidate) => candidate.hostname === hostname);
        if (byName) return byName;
      }
      return primary;
    },

    /**
     * The domain-wide session cookie's value as sent, if sent exactly once: forward auth's credential, and
     * nothing else's (the pages read the page cookie: `current`).
     */
    token(request: Request): string | undefined {
      return readCookie(request.headers.get("cookie"), name);
    },

    /**
     * The browser session of this request on the sign-in host's pages, or null: a live page cookie of an enabled
     * user (the domain-wide session cookie alone is not enough). One cached lookup (see
     * SessionService.browserPrincipal). Reusable by any page that needs to know who the browser is.
     */
    async current(request: Request): Promise<BrowserSessionPrincipal | null> {
      const token = tokenOfPage(readCookie(request.headers.get("cookie"), pageName));
      return (token && (await sessions.browserPrincipal(token))) || null;
    },

    /**
     * A signed-in browser whose domain-wide cookie is gone or another (cleared, expired first, dropped by a full
     * cookie jar) gets it back from its page cookie: otherwise forward auth would send it to /login, which would
     * send it straight back to the app, round and round.
     */
    restoreSession(request: Request, headers: ResponseHeaders, host: SignInHost): void {
      const cookies = request.headers.get("cookie");
      const token = tokenOfPage(readCookie(cookies, pageName));
      if (token && readCookie(cookies, name) !== token) appendCookie(headers, cookie(host, token, config.refreshTokenTtl));
    },

    /** Both cookies of a new browser session: the domain-wide one for forward auth, the page cookie for this host. */
    setSession(headers: ResponseHeaders, host: SignInHost, token: string): void {
      appendCookie(headers, cookie(host, token, config.refreshTokenTtl));
      appendCookie(headers, cookie({ ...host, cookieDomain: undefined }, pageValue(token), config.refreshTokenTtl, pageName));
    },

    /** The device cookie of a successful sign-in (limits/device.ts), for this host only. */
    setDevice(headers: ResponseHeaders, host: SignInHost, value: string): void {
      appendCookie(headers, cookie({ ...host, cookieDomain: undefined }, value, DEVICE_TRUST_SECONDS, DEVICE_COOKIE));
    },

    clearSession(headers: ResponseHeaders, host: SignInHost): void {
      appendCookie(headers, cookie(host, "", 0));
      appendCookie(headers, cookie({ ...host, cookieDomain: undefined }, "", 0, pageName));
    },

    /** A pre-session cookie that binds the sign-in form's CSRF token and a handoff to this browser. */
    setBinding(headers: ResponseHeaders, host: SignInHost, value: string): void {
      appendCookie(headers, cookie({ ...host, cookieDomain: undefined }, value, 3600, `${name}_csrf`));
    },

    binding(request: Request): string | undefined {
      return readCookie(request.headers.get("cookie"), `${name}_csrf`);
    },

    /** The sealed message a form leaves for the page it redirects to (flash.ts), for this host, two minutes at most; "" clears it. */
    setFlash(headers: ResponseHeaders, host: SignInHost, value: string): void {
      appendCookie(headers, cookie({ ...host, cookieDomain: undefined }, value, value ? 120 : 0, `${name}_flash`));
    },

    flash(request: Request): string | undefined {
      return readCookie(request.headers.get("cookie"), `${name}_flash`) || undefined;
    },
  };
}

export type BrowserSessions = ReturnType<typeof createBrowserSessions>;
