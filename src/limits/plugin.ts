import { Elysia } from "elysia";
import type { ClientInfoReader } from "../http/client-ip";
import type { AuditLog } from "../modules/audit/service";
import type { SecretCheckLimiter } from ".";

/** rate_limited audit rows per client IP at most once a minute, so a flood cannot flood the audit table. */
const AUDIT_EVERY_MS = 60_000;

/**
 * The `secretCheck` macro: put `secretCheck: true` on any route that checks a secret and it gets the per-IP
 * limit, in `transform`, before the body is validated and long before any hashing.
 */
export function rateLimitPlugin(deps: { limiter: SecretCheckLimiter; readClient: ClientInfoReader; audit: AuditLog }) {
  const { limiter, readClient, audit } = deps;
  const lastAudited = new Map<string, number>();

  return new Elysia({ name: "latchkey/rate-limit" }).macro({
    secretCheck: {
      transform({ request, server }) {
        const client = readClient(request, server);
        try {
          limiter.hitIp(client.ip);
        } catch (error) {
          const now = Date.now();
          const key = client.ip ?? "unknown";
          if (now - (lastAudited.get(key) ?? 0) >= AUDIT_EVERY_MS) {
            if (lastAudited.size > 10_000) lastAudited.clear();
            lastAudited.set(key, now);
            audit.record({ event: "rate_limited", ...client, detail: { scope: "ip", path: new URL(request.url).pathname } });
          }
          throw error;
        }
      },
    },
  });
}
