import type { Config } from "../../config";
import type { BrowserSessionPrincipal, SessionService } from "../sessions/service";
import { DEVICE_COOKIE, readCookie } from "../../http/cookies";
import { DEVICE_TRUST_SECONDS } from "../../limits/device";
import { signInHosts, type SignInHost } from "./hosts";

type ResponseHeaders = Record<string, string | number | string[] | undefined>;

/**
 * The browser session: an opaque random cookie (not a signed one: a bad signature would answer 400 on every
 * route), HttpOnly, SameSite=Lax, Secure under https, backed by a row of the sessions table. Each sign-in host
 * sets it for the domain it covers (see hosts.ts).
 */
export function createBrowserSessions(config: Config, sessions: SessionService) {
  const hosts = signInHosts(config.signInOrigins);
  const name = config.sessionCookieName;
  const primary = hosts[0]!;

  function cookie(host: SignInHost, value: string, maxAge: number, cookieName = name): string {
    return (
      `${cookieName}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax` +
      (host.cookieDomain ? `; Domain=${host.cookieDomain}` : "") +
      (host.secure ? "; Secure" : "")
    );
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

    /** The session cookie's value as sent, if sent exactly once. */
    token(request: Request): string | undefined {
      return readCookie(request.headers.get("cookie"), name);
    },

    /**
     * The browser session of this request, or null: a live session cookie of an enabled user. One cached lookup
     * (see SessionService.browserPrincipal). Reusable by any page that needs to know who the browser is.
     */
    async current(request: Request): Promise<BrowserSessionPrincipal | null> {
      const token = readCookie(request.headers.get("cookie"), name);
      return (token && (await sessions.browserPrincipal(token))) || null;
    },

    setSession(headers: ResponseHeaders, host: SignInHost, token: string): void {
      appendCookie(headers, cookie(host, token, config.refreshTokenTtl));
    },

    /** The device cookie of a successful sign-in (limits/device.ts), for this host only. */
    setDevice(headers: ResponseHeaders, host: SignInHost, value: string): void {
      appendCookie(headers, cookie({ ...host, cookieDomain: undefined }, value, DEVICE_TRUST_SECONDS, DEVICE_COOKIE));
    },

    clearSession(headers: ResponseHeaders, host: SignInHost): void {
      appendCookie(headers, cookie(host, "", 0));
    },

    /** A pre-session cookie that binds the sign-in form's CSRF token and a handoff to this browser. */
    setBinding(headers: ResponseHeaders, host: SignInHost, value: string): void {
      appendCookie(headers, cookie({ ...host, cookieDomain: undefined }, value, 3600, `${name}_csrf`));
    },

    binding(request: Request): string | undefined {
      return readCookie(request.headers.get("cookie"), `${name}_csrf`);
    },
  };
}

export type BrowserSessions = ReturnType<typeof createBrowserSessions>;
