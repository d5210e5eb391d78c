import { hmacBase64url, safeEqual } from "../lib/crypto";

/** How long a browser that signed in stays recognised (OWASP's example is "e.g. 90 days"). */
export const DEVICE_TRUST_SECONDS = 90 * 86_400;

/**
 * OWASP "Slow Down Online Guessing Attacks with Device Cookies": a browser that signed in to an account holds a
 * signed cookie naming that account, and is exempt from the account-wide backstop, which strangers could
 * otherwise fill from many addresses to lock the owner out. It still has its own per-(account, address)
 * counter. `<user id>.<expiry, unix seconds>.<HMAC-SHA256>`: nothing secret inside, HttpOnly, forged or
 * expired ones are simply not recognised (never an error).
 */
export function deviceCookies(key: Uint8Array) {
  return {
    issue(userId: string, now = Date.now()): string {
      const body = `${userId}.${Math.floor(now / 1000) + DEVICE_TRUST_SECONDS}`;
      return `${body}.${hmacBase64url(key, body)}`;
    },

    /** True when `value` is a live device cookie this server signed for `userId`. */
    vouchesFor(value: string | undefined, userId: string, now = Date.now()): boolean {
      if (!value) return false;
      const cut = value.lastIndexOf(".");
      const body = value.slice(0, cut);
      const [id, expiry] = body.split(".");
      if (cut === -1 || id !== userId || !(Number(expiry) * 1000 > now)) return false;
      return safeEqual(value.slice(cut + 1), hmacBase64url(key, body));
    },
  };
}

export type DeviceCookies = ReturnType<typeof deviceCookies>;
