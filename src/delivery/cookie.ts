import { AUTH_PREFIX } from "../http/routes";
import { DEVICE_COOKIE, readCookie } from "../http/cookies";
import { DEVICE_TRUST_SECONDS } from "../limits/device";
import type { Config } from "../config";
import { invalidRefreshToken, invalidToken } from "../errors";
import type { OriginChecks } from "./origin";
import { tokenResponseHeaders, readAuthorization, type Transport } from "./transport";

/**
 * TOKEN_DELIVERY=cookie: HttpOnly cookies a browser sends by itself (script never sees a token), which makes
 * every cookie-authenticated write subject to the Origin check, and a sign-in form on another site a threat.
 */
export function createCookieTransport(
  config: Pick<Config, "secureCookies" | "accessCookieName" | "refreshCookieName">,
  origins: OriginChecks,
): Transport {
  const accessCookie = { httpOnly: true, sameSite: "lax", path: "/", secure: config.secureCookies } as const;
  // Read only at sign-in; Lax so that the sign-in page (reached by a link) also sends it.
  const deviceCookie = { httpOnly: true, sameSite: "lax", path: "/", secure: config.secureCookies } as const;
  // Strict, and only on the auth routes: no other request, and no other site's, ever carries it.
  const refreshCookie = { httpOnly: true, sameSite: "strict", path: AUTH_PREFIX, secure: config.secureCookies } as const;

  return {
    readAccessToken(request) {
      const authorization = readAuthorization(request);
      if (authorization !== null) return authorization;
      const token = readCookie(request.headers.get("cookie"), config.accessCookieName, invalidToken);
      return token ? { token, viaCookie: true } : undefined;
    },
    readRefreshToken(request) {
      const token = readCookie(request.headers.get("cookie"), config.refreshCookieName, invalidRefreshToken);
      return token ? { token, viaCookie: true } : undefined;
    },
    respond(out, tokens) {
      tokenResponseHeaders(out.set.headers);
      if (tokens.device) out.cookie[DEVICE_COOKIE]!.set({ value: tokens.device, maxAge: DEVICE_TRUST_SECONDS, ...deviceCookie });
      out.cookie[config.accessCookieName]!.set({ value: tokens.access.token, maxAge: tokens.access.expiresIn, ...accessCookie });
      out.cookie[config.refreshCookieName]!.set({ value: tokens.refreshToken, maxAge: tokens.refreshExpiresIn, ...refreshCookie });
      return { message: "Signed in.", expires_in: tokens.access.expiresIn, user: tokens.user };
    },
    clear(out) {
      delete out.set.headers["token"];
      out.set.headers["clear-site-data"] = '"cookies"';
      out.cookie[config.accessCookieName]!.set({ value: "", maxAge: 0, ...accessCookie });
      out.cookie[config.refreshCookieName]!.set({ value: "", maxAge: 0, ...refreshCookie });
    },
    refuseCrossSiteSignIn: origins.assertNotCrossSite,
  };
}
