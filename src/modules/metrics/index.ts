import { Elysia, t } from "elysia";
import type { MetricsConfig } from "../../config";
import { apiErrors, ConfigError } from "../../errors";
import { NO_STORE } from "../../http/cache";
import { errorResponses } from "../../http/error-catalogue";
import { safeEqual, sha256Hex } from "../../lib/crypto";
import type { Metrics } from "./service";

const METRICS_PATH = "/metrics";

/** The exposition as an answer; nobody caches a snapshot of counters. */
async function exposition(metrics: Metrics): Promise<Response> {
  const { body, contentType } = await metrics.render();
  return new Response(body, { headers: { "content-type": contentType, "x-content-type-options": "nosniff", ...NO_STORE } });
}

/**
 * /metrics on the main listener (METRICS_TOKEN): for `Authorization: Bearer <METRICS_TOKEN>` only, compared in
 * constant time (OWASP ASVS V11.2); both sides are hashed first, so neither the length nor a prefix of the token
 * shows in the time taken. The counts say how many sign-ins fail and which apps are asked about: not for everyone.
 */
export function metricsRoutes(metrics: Metrics, token: string) {
  const expected = sha256Hex(token);
  return new Elysia({ tags: ["system"] }).get(
    METRICS_PATH,
    ({ request }) => {
      const presented = /^Bearer +(\S+)$/i.exec(request.headers.get("authorization")?.trim() ?? "")?.[1];
      if (presented === undefined || !safeEqual(sha256Hex(presented), expected))
        throw apiErrors.invalid_metrics_token("Send Authorization: Bearer with METRICS_TOKEN.", undefined, { "WWW-Authenticate": 'Bearer realm="metrics"' });
      return exposition(metrics);
    },
    {
      response: {
        200: t.String({ description: "Prometheus's text format (version 0.0.4): the metrics README.md lists" }),
        ...errorResponses({ 401: ["invalid_metrics_token"] }),
      },
      detail: {
        summary: "Prometheus metrics, for Authorization: Bearer <METRICS_TOKEN> (served here only when METRICS_TOKEN is set)",
        description: "The metrics README.md lists. `METRICS_ADDR` serves the same on a listener of its own, without a token.",
      },
    },
  );
}

/**
 * METRICS_ADDR: a listener of its own that serves /metrics and nothing else, without a token: bind it to
 * loopback or a network only Prometheus reaches. Fails the start (exit 2) when it cannot listen there.
 */
export function serveMetrics(metrics: Metrics, listen: NonNullable<MetricsConfig["listen"]>) {
  const refuse = (status: number, error: string, message: string) =>
    Response.json({ error, message }, { status, headers: { "x-content-type-options": "nosniff", ...NO_STORE } });
  try {
    return Bun.serve({
      hostname: listen.host,
      port: listen.port,
      reusePort: false,
      development: false,
      fetch(request) {
        if (new URL(request.url).pathname !== METRICS_PATH) return refuse(404, "not_found", "This listener serves /metrics only.");
        if (request.method !== "GET" && request.method !== "HEAD") return refuse(405, "method_not_allowed", "This path answers GET, HEAD.");
        return exposition(metrics);
      },
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const where = `METRICS_ADDR=${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${listen.port}`;
    throw new ConfigError(
      code === "EADDRINUSE" ? `${where} is already in use: choose another port` : `${where}: cannot listen there (${code ?? (error as Error).message})`,
    );
  }
}
