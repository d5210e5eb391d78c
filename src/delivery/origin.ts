import type { Config } from "../config";
import { apiErrors } from "../errors";

const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

const csrfRejected = (message = "Cross-site request refused: the request's Origin is neither PUBLIC_URL nor in ALLOWED_ORIGINS.") =>
  apiErrors.csrf_rejected(message);

/** Where a browser request comes from, checked against PUBLIC_URL and ALLOWED_ORIGINS. */
export function createOriginChecks(config: Pick<Config, "publicOrigin" | "allowedOrigins">) {
  const trustedOrigins = new Set([config.publicOrigin, ...config.allowedOrigins]);
  return {
    /**
     * OWASP CSRF Prevention Cheat Sheet, "Verifying Origin with standard headers" plus Fetch Metadata:
     * a state-changing request carrying a cookie credential must come from PUBLIC_URL or ALLOWED_ORIGINS.
     * With neither Origin nor Referer the request is refused too (browsers send Origin on every POST).
     */
    assertSameOrigin(request: Request): void {
      if (!STATE_CHANGING.has(request.method)) return;
      if (request.headers.get("sec-fetch-site") === "cross-site") throw csrfRejected();
      const origin = requestOrigin(request);
      // A client that sent neither header is told so: "not allowed" would send its author looking at PUBLIC_URL.
      if (!origin) throw csrfRejected("Cross-site request refused: a request authenticated by a cookie needs an Origin or Referer header, and this one has neither.");
      if (!trustedOrigins.has(origin)) throw csrfRejected();
    },

    /** A sign-in that would set cookies: refuse a foreign page that posts credentials (login CSRF). */
    assertNotCrossSite(request: Request): void {
      const origin = requestOrigin(request);
      if (request.headers.get("sec-fetch-site") === "cross-site" || (origin && !trustedOrigins.has(origin))) throw csrfRejected();
    },

    /**
     * A browser request from a page of another site, in any mode: a foreign Origin (or Referer), or Fetch
     * Metadata's `Sec-Fetch-Site: cross-site` with no Origin we trust. Machine clients send neither.
     */
    assertNotForeignPage(request: Request): void {
      const origin = requestOrigin(request);
      if (origin ? !trustedOrigins.has(origin) : request.headers.get("sec-fetch-site") === "cross-site") throw csrfRejected();
    },
  };
}

export type OriginChecks = ReturnType<typeof createOriginChecks>;

/** The Origin header, or lacking it (absent or empty), the origin of the Referer. */
function requestOrigin(request: Request): string | undefined {
  return request.headers.get("origin") || refererOrigin(request.headers.get("referer"));
}

function refererOrigin(referer: string | null): string | undefined {
  if (!referer) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}
