import { Elysia, t } from "elysia";
import { openapi } from "@elysiajs/openapi";
import type { Db } from "../../db/client";
import { ping } from "../../db/client";
import { VERSION } from "../../version";
// The docs UI ships inside the binary: /docs must work with no internet access.
import scalarBundle from "../../../node_modules/@scalar/api-reference/dist/browser/standalone.js" with { type: "file" };

/** Health and the API docs; `accessCookieName` names the cookie scheme as this instance is configured. */
export function systemRoutes(db: Db, accessCookieName: string) {
  return new Elysia({ tags: ["system"] })
    .get(
      "/health",
      ({ set }) => {
        if (ping(db)) return { status: "ok" as const };
        set.status = 503;
        return { status: "unavailable" as const };
      },
      {
        response: { 200: t.Object({ status: t.Literal("ok") }), 503: t.Object({ status: t.Literal("unavailable") }) },
        detail: { summary: "Liveness with a real database round trip" },
      },
    )
    .get("/docs/scalar.js", () => new Response(Bun.file(scalarBundle), { headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "public, max-age=86400" } }), {
      detail: { hide: true },
    })
    .use(
      openapi({
        path: "/docs",
        specPath: "/docs/json",
        // No font requests to Scalar's CDN: the page must not call out (the CSP would refuse them anyway).
        scalar: { cdn: "/docs/scalar.js", withDefaultFonts: false } as NonNullable<Parameters<typeof openapi>[0]>["scalar"],
        documentation: {
          info: {
            title: "Latchkey",
            version: VERSION,
            description: "Self-hosted authentication server: accounts, JWT access tokens, rotating refresh tokens.",
          },
          tags: [
            { name: "auth", description: "Accounts, sign-in and tokens" },
            { name: "sessions", description: "Your signed-in sessions" },
            { name: "api keys", description: "Long-lived keys for scripts and services" },
            { name: "admin", description: "User administration (role admin)" },
            { name: "audit", description: "Security events" },
            { name: "system", description: "Health" },
          ],
          components: {
            securitySchemes: {
              bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "Authorization: Bearer <access token> (every mode; header mode also reads a `token` header)" },
              cookie: { type: "apiKey", in: "cookie", name: accessCookieName, description: "TOKEN_DELIVERY=cookie (name set by ACCESS_COOKIE_NAME)" },
              apiKey: { type: "apiKey", in: "header", name: "X-API-Key", description: "An API key (lk_...); also accepted as Authorization: Bearer lk_..." },
            },
          },
        },
      }),
    );
}
