import { Elysia } from "elysia";
import type { Config } from "../config";

const JSON_CSP = "default-src 'none'; frame-ancestors 'none'";
/** The API docs page: its script and the spec from this server only; Scalar styles elements inline. */
const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'";

/** Headers every response carries (OWASP Secure Headers Project / HTTP Headers Cheat Sheet). */
export function securityHeaders(config: Config) {
  const headers: Record<string, string> = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": JSON_CSP,
  };
  if (config.secureCookies) headers["strict-transport-security"] = "max-age=31536000; includeSubDomains";
  // Set per request rather than with .headers(): Elysia's defaults would override a per-route CSP.
  return new Elysia({ name: "latchkey/security-headers" }).onRequest(({ request, set }) => {
    Object.assign(set.headers, headers);
    if (isDocsPage(request.url)) set.headers["content-security-policy"] = DOCS_CSP;
  });
}

/**
 * Whether the URL's path is the docs page, /docs or /docs/ (Elysia serves both), whatever its query string.
 * Runs on every request, so it compares a few characters instead of parsing the URL: Request.url is absolute
 * ("http://host:port/path?query"), so the path starts at the first "/" after "://" and ends at the first "?".
 */
export function isDocsPage(url: string): boolean {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  if (start === -1) return false;
  const query = url.indexOf("?", start);
  const length = (query === -1 ? url.length : query) - start;
  return (length === 5 || (length === 6 && url.charCodeAt(start + 5) === 47)) && url.startsWith("/docs", start);
}

const PREFLIGHT_HEADERS = "authorization, content-type, token, x-api-key";

/**
 * CORS for the origins in ALLOWED_ORIGINS only, with credentials; any other origin gets no CORS header at all
 * (never a reflected origin). Header mode exposes the `Token` response header to scripts.
 */
export function cors(config: Config) {
  const allowed = new Set(config.allowedOrigins);
  return new Elysia({ name: "latchkey/cors" }).onRequest(({ request, set }) => {
    const origin = request.headers.get("origin");
    set.headers["vary"] = "Origin";
    const isAllowed = origin !== null && allowed.has(origin);
    if (isAllowed) {
      set.headers["access-control-allow-origin"] = origin;
      set.headers["access-control-allow-credentials"] = "true";
      set.headers["access-control-expose-headers"] = "Token";
    }
    if (request.method === "OPTIONS" && request.headers.has("access-control-request-method")) {
      if (isAllowed) {
        set.headers["access-control-allow-methods"] = "GET, POST, PUT, PATCH, DELETE";
        set.headers["access-control-allow-headers"] = PREFLIGHT_HEADERS;
        set.headers["access-control-max-age"] = "600";
      }
      return new Response(null, { status: 204, headers: set.headers as Record<string, string> });
    }
  });
}
