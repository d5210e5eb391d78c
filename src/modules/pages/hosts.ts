import { parseIp } from "../../lib/ip";

/**
 * A sign-in host (PUBLIC_URL or one of SIGN_IN_URLS) and the domain its session cookie covers: the parent of
 * its host name (auth.example.com signs browsers in for example.com and every *.example.com), so forward auth
 * sees the cookie on every app of that domain. An IP address, a one-label name (localhost) or a two-label name
 * (example.com, which may be a public suffix's direct child) gets a host-only cookie: it covers that name alone,
 * on any port.
 */
export interface SignInHost {
  origin: string;
  hostname: string;
  /** The cookie's Domain attribute, or undefined for a host-only cookie. */
  cookieDomain: string | undefined;
  secure: boolean;
}

function parentDomain(hostname: string): string | undefined {
  if (parseIp(hostname) !== undefined) return undefined;
  const labels = hostname.split(".");
  return labels.length >= 3 ? labels.slice(1).join(".") : undefined;
}

export function signInHosts(origins: readonly string[]): SignInHost[] {
  return origins.map((origin) => {
    const url = new URL(origin);
    return { origin: url.origin, hostname: url.hostname, cookieDomain: parentDomain(url.hostname), secure: url.protocol === "https:" };
  });
}

/** Whether `hostname` (lower-case, as URL parses it) is the sign-in host itself or inside the domain it covers. */
export function covers(host: SignInHost, hostname: string): boolean {
  if (hostname === host.hostname) return true;
  const domain = host.cookieDomain;
  return domain !== undefined && (hostname === domain || (hostname.length > domain.length + 1 && hostname.endsWith(`.${domain}`)));
}

/** The sign-in host for a protected app's host name, if this server signs browsers in for it. */
export function signInHostFor(hosts: readonly SignInHost[], hostname: string): SignInHost | undefined {
  return hosts.find((host) => covers(host, hostname));
}

/** Characters no honest `rd` contains: controls, blanks and backslashes (browsers read `\` as `/`). */
const SUSPICIOUS = /[\u0000-\u0020\u007f-\u009f\\\u00a0\u1680\u2000-\u200f\u2028\u2029\u202f\u205f\u3000\ufeff]/;

/**
 * Where a `rd` (the page a user came from) may send the browser after sign-in: a path on this sign-in host, or
 * an http(s) URL on a host one of the sign-in hosts covers, with no user info. Anything else (//evil.example,
 * javascript:, auth.example.com.evil.example, backslashes, blanks, control characters) gives undefined; the
 * caller goes to /account instead (OWASP Unvalidated Redirects and Forwards Cheat Sheet: allow-list).
 */
export function safeRedirect(raw: string | undefined, current: SignInHost, hosts: readonly SignInHost[]): string | undefined {
  if (!raw || raw.length > 2048 || SUSPICIOUS.test(raw)) return undefined;
  // A relative rd must be a path: "//host" and "/\host" are other hosts to a browser.
  const relative = !/^[a-z][a-z0-9+.-]*:/i.test(raw);
  if (relative && (!raw.startsWith("/") || raw.startsWith("//"))) return undefined;
  let url: URL;
  try {
    url = new URL(raw, current.origin);
  } catch {
    return undefined;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
  if (current.secure && url.protocol !== "https:") return undefined;
  if (url.username || url.password) return undefined;
  if (!hosts.some((host) => covers(host, url.hostname))) return undefined;
  return url.href;
}
