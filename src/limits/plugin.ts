import { Elysia } from "elysia";
import type { ClientInfo, ClientInfoReader } from "../http/client-ip";
import type { SecretCheckLimiter } from ".";
import type { RateLimitAudit } from "./audit";

/**
 * The per-address limit of every route that checks a secret: one request from `client` to `path`, refused (429,
 * audited) when its address is over the limit. The `secretCheck` macro and the sign-in page both call it.
 */
export function createIpLimit(limiter: SecretCheckLimiter, auditHit: RateLimitAudit) {
  return (client: ClientInfo, path: string): void => {
    try {
      limiter.hitIp(client.ip);
    } catch (error) {
      // Answered at once (this check is synchronous); the audit row follows.
      void auditHit({ scope: "ip", client, detail: { path } });
      throw error;
    }
  };
}

export type IpLimit = ReturnType<typeof createIpLimit>;

/**
 * The `secretCheck` macro: put `secretCheck: true` on any route that checks a secret and it gets the per-IP
 * limit, in `transform`, before the body is validated and long before any hashing. `secretCheck: "same-site"`
 * (a route that takes HTML form posts but is not meant for other sites' pages: /token) first refuses a
 * cross-site browser request with 403 csrf_rejected, so that such a post counts toward no limit: otherwise any
 * web page's visitors could be made to spend an account's failures from their own addresses. `secretCheck:
 * "sign-in"` (the routes that answer with tokens) first asks the delivery mode whether such a post may sign in:
 * cookie mode refuses it (login CSRF), so it spends nothing either.
 */
export function rateLimitPlugin(deps: {
  ipLimit: IpLimit;
  readClient: ClientInfoReader;
  refuseCrossSite: (request: Request) => void;
  refuseCrossSiteSignIn: (request: Request) => void;
}) {
  const { ipLimit, readClient, refuseCrossSite, refuseCrossSiteSignIn } = deps;

  return new Elysia({ name: "latchkey/rate-limit" }).macro({
    secretCheck: (kind: true | "same-site" | "sign-in") => ({
      transform({ request, server }: { request: Request; server: Parameters<ClientInfoReader>[1] }) {
        if (kind === "same-site") refuseCrossSite(request);
        if (kind === "sign-in") refuseCrossSiteSignIn(request);
        ipLimit(readClient(request, server), new URL(request.url).pathname);
      },
    }),
  });
}
