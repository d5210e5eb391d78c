import { hmacBase64url, randomToken, safeEqual } from "../../lib/crypto";

/**
 * Per-form CSRF tokens (OWASP CSRF Prevention Cheat Sheet, "Signed double-submit cookie" / synchronizer token):
 * an HMAC of the form's name and what the browser is bound to, its session id when signed in, else a random
 * pre-session cookie. A token for one form does not work on another, nor in another browser or session. Every
 * form POST also passes an origin check (`sameOriginPost`).
 */
export function formTokens(key: Uint8Array) {
  return {
    issue: (form: string, binding: string) => hmacBase64url(key, `${form}|${binding}`),
    check: (form: string, binding: string, presented: unknown) =>
      typeof presented === "string" && safeEqual(presented, hmacBase64url(key, `${form}|${binding}`)),
    newBinding: () => randomToken(24),
  };
}

export type FormTokens = ReturnType<typeof formTokens>;

/**
 * A form POST from one of our own sign-in origins: browsers send Origin on every POST; lacking it, Referer; a
 * cross-site Fetch Metadata header is refused outright. Under `Referrer-Policy: no-referrer` (ours is same-origin,
 * but a proxy in front may impose no-referrer) a browser sends `Origin: null` and no Referer on a page's own form
 * posts (Fetch, "serializing a request origin"): then `Sec-Fetch-Site: same-origin`, which no page can set (a
 * forbidden header), says where the post came from.
 */
export function sameOriginPost(request: Request, origins: ReadonlySet<string>): boolean {
  const site = request.headers.get("sec-fetch-site");
  if (site === "cross-site") return false;
  let origin = request.headers.get("origin");
  if ((!origin || origin === "null") && site === "same-origin") return true;
  if (!origin || origin === "null") {
    const referer = request.headers.get("referer");
    // Mutation testing (test/mutation/README.md): without this line or the catch's return, a missing or bad Referer
    // still ends refused (new URL throws; origins never hold null): both are kept to say so where it is decided.
    if (!referer) return false;
    try {
      origin = new URL(referer).origin;
    } catch {
      return false;
    }
  }
  return origins.has(origin);
}
