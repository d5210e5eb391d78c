import { Elysia, t } from "elysia";
import { openapi } from "@elysiajs/openapi";
import type { Db } from "../../db/client";
import { ping } from "../../db/client";
import { COMMIT, VERSION } from "../../version";
// The docs UI ships inside the binary: /docs must work with no internet access.
import scalarBundle from "../../../node_modules/@scalar/api-reference/dist/browser/standalone.js" with { type: "file" };

/** Which build answers /health: a report or a monitor can say which version and commit runs. */
const BUILD = { version: VERSION, commit: COMMIT };
const BUILD_FIELDS = {
  version: t.String({ description: "Latchkey's version (package.json)" }),
  commit: t.String({ description: "The git commit it was built from (`unknown` for a build outside a git checkout)" }),
};

export const DOCS_PATH = "/docs";
export const SPEC_PATH = "/docs/json";
const SCALAR_PATH = "/docs/scalar.js";

const TITLE = "Latchkey";
const DESCRIPTION = "Self-hosted authentication server: accounts, JWT access tokens, rotating refresh tokens, API keys.";

const escapeHtml = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("'", "&#39;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/**
 * Scalar's configuration. The spec URL is absolute, so /docs/ works as well as /docs. Nothing may call out:
 * no default fonts, no telemetry, no AI agent, no button to Scalar's hosted client.
 */
const SCALAR_CONFIGURATION = {
  url: SPEC_PATH,
  withDefaultFonts: false,
  telemetry: false,
  hideClientButton: true,
  agent: { disabled: true },
  showDeveloperTools: "never",
};

/**
 * The API docs page. Rendered here rather than by @elysiajs/openapi, whose page hard-codes
 * `"_integration":"elysiajs"` (after the caller's options, so it cannot be overridden: no response may name the
 * framework) and a relative spec URL. The configuration sits in a non-executable element (Scalar reads
 * `#api-reference[data-configuration]`), so the page runs no inline script and its CSP needs no 'unsafe-inline'
 * for scripts.
 */
const DOCS_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${escapeHtml(TITLE)} API</title>
    <meta name="description" content="${escapeHtml(DESCRIPTION)}" />
    <link rel="icon" href="data:," />
    <style>body { margin: 0; }</style>
  </head>
  <body>
    <script id="api-reference" type="application/json" data-configuration="${escapeHtml(JSON.stringify(SCALAR_CONFIGURATION))}"></script>
    <script src="${SCALAR_PATH}"></script>
  </body>
</html>
`;

const VOID_CONTENT_TYPES = new Set(["void", "null", "undefined"]);

/**
 * @elysiajs/openapi turns a `t.Void()` response (our 204s) into `content: {type: "void"}`, which is not a valid
 * OpenAPI Media Type map. A response without a body is `{description}` alone. Mutates the (cached) document.
 */
function dropVoidContent(spec: { paths?: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, any> }> }>> }) {
  for (const item of Object.values(spec.paths ?? {}))
    for (const operation of Object.values(item))
      for (const response of Object.values(operation.responses ?? {})) {
        if (response.content && typeof response.content.type === "string" && VOID_CONTENT_TYPES.has(response.content.type))
          delete response.content;
        // A page (a string schema with contentMediaType text/html) is served as text/html, not the plugin's text/plain.
        const plain = response.content?.["text/plain"];
        if (plain?.schema?.contentMediaType === "text/html") response.content = { "text/html": plain };
      }
  return spec;
}

/** Health and the API docs; `accessCookieName` names the cookie scheme as this instance is configured. */
export function systemRoutes(db: Db, accessCookieName: string) {
  let served: { spec: object; body: string; etag: string } | undefined;
  return new Elysia({ tags: ["system"] })
    // Someone who opens the server's address finds their way: a browser goes to its account page (which asks it
    // to sign in first), anything else gets the links.
    .get(
      "/",
      ({ request, set }) => {
        if (request.headers.get("accept")?.includes("text/html")) {
          set.status = 302;
          set.headers.location = "/account";
          return;
        }
        return { name: TITLE, version: VERSION, docs: DOCS_PATH, openapi: SPEC_PATH, health: "/health", sign_in: "/login" };
      },
      {
        response: {
          200: t.Object(
            { name: t.String(), version: t.String(), docs: t.String(), openapi: t.String(), health: t.String(), sign_in: t.String() },
            { description: "Where to go from here" },
          ),
          302: t.Void({ description: "A browser (Accept: text/html) is sent to /account" }),
        },
        detail: { summary: "Links to the API docs, the OpenAPI document, health and the sign-in page" },
      },
    )
    .get(
      "/health",
      async ({ set }) => {
        if (await ping(db)) return { status: "ok" as const, ...BUILD };
        set.status = 503;
        return { status: "unavailable" as const, ...BUILD };
      },
      {
        response: {
          200: t.Object({ status: t.Literal("ok"), ...BUILD_FIELDS }, { description: "The server answers and its database too" }),
          503: t.Object({ status: t.Literal("unavailable"), ...BUILD_FIELDS }, { description: "- `unavailable`: the database did not answer" }),
        },
        detail: { summary: "Liveness with a real database round trip" },
      },
    )
    .get(SCALAR_PATH, () => new Response(Bun.file(scalarBundle), { headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "public, max-age=86400" } }), {
      detail: { hide: true },
    })
    // Served at /docs and, Elysia's paths being loose, /docs/ (src/http/security.ts gives both the page's CSP).
    .get(DOCS_PATH, () => new Response(DOCS_HTML, { headers: { "content-type": "text/html; charset=utf-8" } }), { detail: { hide: true } })
    // Local to this instance: applies to the spec route the plugin adds below, and costs the other routes nothing.
    // The plugin caches the document object but it would be serialised again on every request (~1 ms of CPU for
    // 128 kB, an unauthenticated way to load the server): serialise it once per document, with an ETag.
    .onAfterHandle(({ responseValue, request }) => {
      if (!responseValue || typeof responseValue !== "object" || responseValue instanceof Response || !("openapi" in responseValue)) return;
      if (served?.spec !== responseValue) {
        const body = JSON.stringify(dropVoidContent(responseValue as Parameters<typeof dropVoidContent>[0]));
        served = { spec: responseValue, body, etag: `"${Bun.hash(body).toString(36)}"` };
      }
      const headers = { "content-type": "application/json; charset=utf-8", "cache-control": "no-cache", etag: served.etag };
      if (request.headers.get("if-none-match") === served.etag) return new Response(null, { status: 304, headers });
      return new Response(served.body, { headers });
    })
    .use(
      openapi({
        // The page above replaces the plugin's; it serves only the document.
        provider: null,
        path: DOCS_PATH,
        specPath: SPEC_PATH,
        // The plugin leaves out paths with a dot as static files; /.well-known/jwks.json is an API route.
        exclude: { staticFile: false },
        documentation: {
          info: { title: TITLE, version: VERSION, description: DESCRIPTION },
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
              cookie: { type: "apiKey", in: "cookie", name: accessCookieName, description: "`TOKEN_DELIVERY=cookie` (name set by `ACCESS_COOKIE_NAME`)" },
              apiKey: { type: "apiKey", in: "header", name: "X-API-Key", description: "An API key (lk_...); also accepted as Authorization: Bearer lk_..." },
            },
          },
        },
      }),
    );
}
