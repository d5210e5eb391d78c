// The references: /validate, a bare Elysia server that verifies an HS256 JWT with @elysiajs/jwt and answers 200,
// with no database (what validate is measured against); /bare, an Elysia route that answers 200 with an empty
// body and does nothing else, the framework limit forward auth is measured against; and /floor, the part of
// forward auth no implementation can leave out (below), to show how much of the gap to /bare is Bun's own; and
// /memo, the floor plus the cheapest decision there could be (below).
// Usage: bun bench/ceiling.ts <port> <secret> [<forward auth's allow answer headers, JSON>]
import type { Server } from "bun";
import { Elysia } from "elysia";
import { jwt } from "@elysiajs/jwt";

const [port, secret, allowHeaders] = process.argv.slice(2);
if (!port || !secret) throw new Error("usage: bun bench/ceiling.ts <port> <secret> [<allow headers JSON>]");

/**
 * What forward auth must do for any request, whatever it decides, and nothing more: read the request headers it
 * reads (the six of both proxy families, since a request carrying both is refused; the three credential headers;
 * Origin, for CORS), read its own URL (a proxy may restrict an app with `?roles=`, `?users=` or `?scopes=` on it:
 * Bun builds `request.url` on first read), ask the peer's address (`TRUST_PROXY`: only a trusted proxy may
 * describe the request), and answer the allowed answer Latchkey sends, the same headers (the bench passes them,
 * read from a real answer), the way Latchkey answers it: a clone of a Response built once, served by Bun's router
 * as Latchkey's hot GET is (src/http/direct.ts). No decision, no lookup, no hash.
 */
const READ = ["x-original-url", "x-original-method", "x-forwarded-host", "x-forwarded-uri", "x-forwarded-proto", "x-forwarded-method", "authorization", "x-api-key", "cookie", "origin"];
const allowed = new Response(null, { headers: JSON.parse(allowHeaders ?? "{}") as Record<string, string> });
function floor(request: Request, server: Server<unknown>): Response {
  const headers = request.headers;
  for (const name of READ) headers.get(name);
  request.url.includes("?");
  server.requestIP(request);
  return allowed.clone() as Response;
}

/**
 * The floor plus the cheapest decision conceivable: the whole request (peer, URL and the ten headers) looked up
 * in a Map of answers. No credential is checked and no rule read: it is what a cache of whole answers would cost,
 * in a process that holds nothing else (bench/README.md, finding 14). The first request fills the Map; every
 * later one of the run finds its answer there.
 */
const answers = new Map<string, Response>();
function memo(request: Request, server: Server<unknown>): Response {
  const headers = request.headers;
  let key = `${server.requestIP(request)?.address} ${request.url}`;
  for (const name of READ) key += `\n${headers.get(name)}`;
  let answer = answers.get(key);
  if (answer === undefined) answers.set(key, (answer = allowed));
  return answer.clone() as Response;
}

new Elysia({ serve: { routes: { "/floor": { GET: floor }, "/memo": { GET: memo } } } })
  .use(jwt({ name: "jwt", secret }))
  .get("/validate", async ({ headers, jwt, status }) => {
    const token = headers.authorization?.slice("Bearer ".length);
    const payload = token ? await jwt.verify(token) : false;
    return payload ? { sub: payload.sub } : status(401);
  })
  .all("/bare", () => new Response(null))
  .listen({ hostname: "127.0.0.1", port: Number(port) });
console.log(`ceiling listening on ${port}`);
