import { Elysia } from "elysia";
import type { ClientInfoReader } from "../http/client-ip";
import type { SecretCheckLimiter } from ".";
import type { RateLimitAudit } from "./audit";

/**
 * The `secretCheck` macro: put `secretCheck: true` on any route that checks a secret and it gets the per-IP
 * limit, in `transform`, before the body is validated and long before any hashing.
 */
export function rateLimitPlugin(deps: { limiter: SecretCheckLimiter; readClient: ClientInfoReader; auditHit: RateLimitAudit }) {
  const { limiter, readClient, auditHit } = deps;

  return new Elysia({ name: "latchkey/rate-limit" }).macro({
    secretCheck: {
      transform({ request, server }) {
        const client = readClient(request, server);
        try {
          limiter.hitIp(client.ip);
        } catch (error) {
          auditHit({ scope: "ip", client, detail: { path: new URL(request.url).pathname } });
          throw error;
        }
      },
    },
  });
}
