import { Elysia } from "elysia";
import type { Config } from "../config";

const JSON_CSP = "default-src 'none'; frame-ancestors 'none'";
/** The API docs page: its script and the spec from this server only; Scalar styles elements inline. */
const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'";

const PREFLIGHT_HEADERS = "authorization, content-type, token, x-api-key";

type ResponseHeaders = Record<string, string | number | string[] | undefined>;

/**
 * The headers every answer carries, written in one `onRequest` hook: the security headers (OWASP Secure Headers
 * Project / HTTP Headers Cheat Sheet) and CORS for the origins in ALLOWED_ORIGINS only, with credentials (any other
 * origin gets no CORS header at all, never a reflected origin; header mode exposes the `Token` response header).
 *
 * The routes that run on every request of every protected app (/validate, /forward) build their whole answer
 * instead: `headersWith` gives them the same headers as a prebuilt `Headers` object, and `hand` passes their
 * Response through Elysia untouched (see there).
 */
export function responseHeaders(config: Config) {
  const fixed: Record<string, string> = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": JSON_CSP,
  };
  if (config.secureCookies) fixed["strict-transport-security"] = "max-age=31536000; includeSubDomains";
  fixed["vary"] = "Origin";
  const allowed = new Set(config.allowedOrigins);

  /** What `onRequest` writes for this request (set per request rather than with .headers(): Elysia's defaults would override a per-route CSP). */
  function write(headers: ResponseHeaders, request: Request, origin: string | null): void {
    Object.assign(headers, fixed);
    if (isDocsPage(request.url)) headers["content-security-policy"] = DOCS_CSP;
    if (origin !== null && allowed.has(origin)) {
      headers["access-control-allow-origin"] = origin;
      headers["access-control-allow-credentials"] = "true";
      headers["access-control-expose-headers"] = "Token";
    }
  }

  /** A request from no allowed Origin: its answer gets no CORS headers. */
  const noCors = (request: Request) => {
    const origin = request.headers.get("origin");
    return origin === null || !allowed.has(origin);
  };

  return {
    plugin: new Elysia({ name: "latchkey/response-headers" }).onRequest(({ request, set }) => {
      const origin = request.headers.get("origin");
      write(set.headers, request, origin);
      if (request.method === "OPTIONS" && request.headers.has("access-control-request-method")) {
        if (origin !== null && allowed.has(origin)) {
          set.headers["access-control-allow-methods"] = "GET, POST, PUT, PATCH, DELETE";
          set.headers["access-control-allow-headers"] = PREFLIGHT_HEADERS;
          set.headers["access-control-max-age"] = "600";
        }
        return new Response(null, { status: 204, headers: set.headers as Record<string, string> });
      }
    }),

    /**
     * The headers of a whole answer that adds `extra` to what every answer carries: `shared` is one Headers
     * object, built here once, for the usual request (no allowed Origin), and `with(request, more)` a new one with
     * per-answer headers and CORS for an allowed Origin. `prebuilt(request, template, body, more)` answers from a
     * Response built once with `shared` (and `more`), never sent itself: a clone of it for the usual request
     * (cloning a Response costs a third of building one from a Headers object, and copying a Headers object a
     * quarter of converting a plain object; profiled), else `body` with CORS and `more`; `empty(request)` is that
     * for an empty answer. Only for routes whose path is never the docs page (/validate, forward auth): the usual
     * request's URL is not read (a new string per read).
     */
    headersWith(extra: Record<string, string>) {
      const shared = new Headers({ ...fixed, ...extra });
      const build = (request: Request, more?: Record<string, string>) => {
        const headers: ResponseHeaders = {};
        write(headers, request, request.headers.get("origin"));
        return new Headers({ ...(headers as Record<string, string>), ...extra, ...more });
      };
      const prebuilt = (request: Request, template: Response, body: string | null, more?: Record<string, string>): Response =>
        noCors(request) ? (template.clone() as Response) : new Response(body, { headers: build(request, more) });
      const emptyAnswer = new Response(null, { headers: shared });
      return {
        shared,
        prebuilt,
        empty: (request: Request) => prebuilt(request, emptyAnswer, null),
        with: build,
      };
    },

    /**
     * Hands Elysia a Response built with `headersWith` so that Elysia sends it as it is. Elysia copies a returned
     * Response into a new one to merge `set.headers` into it (two header copies; profiled at a fifth of a forward
     * auth), unless `set.headers` is empty; what the hook wrote there is already in the Response, so it is
     * emptied. Call it last, once nothing can throw: an error answer still gets the headers from `set`.
     */
    hand(set: { headers: ResponseHeaders }, response: Response): Response {
      set.headers = {};
      return response;
    },
  };
}

export type ResponseHeadersOf = ReturnType<typeof responseHeaders>;

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
