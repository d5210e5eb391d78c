// The references: /validate, a bare Elysia server that verifies an HS256 JWT with @elysiajs/jwt and answers 200,
// with no database (what validate is measured against); /bare, an Elysia route that answers 200 with an empty
// body and does nothing else, the framework limit forward auth is measured against.
// Usage: bun bench/ceiling.ts <port> <secret>
import { Elysia } from "elysia";
import { jwt } from "@elysiajs/jwt";

const [port, secret] = process.argv.slice(2);
if (!port || !secret) throw new Error("usage: bun bench/ceiling.ts <port> <secret>");

new Elysia()
  .use(jwt({ name: "jwt", secret }))
  .get("/validate", async ({ headers, jwt, status }) => {
    const token = headers.authorization?.slice("Bearer ".length);
    const payload = token ? await jwt.verify(token) : false;
    return payload ? { sub: payload.sub } : status(401);
  })
  .all("/bare", () => new Response(null))
  .listen({ hostname: "127.0.0.1", port: Number(port) });
console.log(`ceiling listening on ${port}`);
