import type { Pending } from "../lib/pending";

/**
 * GET routes that Bun's router serves directly, outside Elysia: the two that run on every request of every
 * protected app (/validate and forward auth). On SQLite they answer synchronously; on PostgreSQL a cache miss
 * answers later (a promise).
 *
 * Through Elysia, such a request also builds a context object (with the URL and path split from `request.url`),
 * runs the global `onRequest` hook (security headers and CORS written into `set.headers`, which these routes then
 * throw away: they answer a Response with the same headers prebuilt, http/security.ts `headersWith`), defines a
 * `server` getter on the context and maps the returned Response: about 1 µs of the 8–12 µs of server CPU such a
 * request costs (bench/README.md, finding 11). Elysia passes its `serve.routes` to `Bun.serve` beside its own, and these win
 * for their path and method; every other method of the path (HEAD, OPTIONS, POST...) still reaches Elysia.
 *
 * The answer must be the same Response the route gives through Elysia (test/unit/hot-routes.test.ts compares
 * them over a socket). Anything it throws (a 401 to explain, a database away) is not answered here: the request
 * goes through Elysia instead (`elysia`), which decides again and answers the error with its status, code and
 * headers, exactly as without this shortcut. Deciding twice is safe: what a decision writes is idempotent (a
 * session's or key's activity, at most once a minute), or is spent again only by a request that is refused anyway
 * (an API key's quota, once it is exhausted).
 */
type DirectAnswer = (request: Request) => Pending<Response>;

export function directRoutes(elysia: () => (request: Request) => Pending<Response>) {
  const routes: Record<string, { GET: (request: Request) => Pending<Response> }> = {};
  return {
    /** For Elysia's `serve.routes` (read when it listens). */
    routes,
    /** Serves GET `path` with `answer`; what it throws is answered by Elysia's route for the path. */
    get(path: string, answer: DirectAnswer): void {
      routes[path] = {
        GET(request) {
          try {
            const response = answer(request);
            return response instanceof Promise ? response.catch(() => elysia()(request)) : response;
          } catch {
            return elysia()(request);
          }
        },
      };
    },
  };
}

export type DirectRoutes = ReturnType<typeof directRoutes>;
