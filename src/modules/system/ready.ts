import { Elysia, t } from "elysia";
import type { Db } from "../../db/client";
import { ping } from "../../db/client";
import { peersOf } from "../../db/peers";
import { apiErrors } from "../../errors";
import { errorResponses } from "../../http/error-catalogue";

/** How long /ready waits for each check: orchestrators' probes give up after a second or a few. */
const CHECK_MS = 2000;

const within = (ms: number, check: Promise<boolean>) =>
  Promise.race([check, new Promise<boolean>((resolve) => setTimeout(resolve, ms, false).unref())]);

/**
 * Readiness, for load balancers and orchestrators: may this instance take traffic? The database answers a query,
 * and on PostgreSQL this instance hears other instances' revocations (its LISTEN connection, db/peers.ts), else a
 * session revoked elsewhere would stay valid here for a cache lifetime after each missed announcement. /health
 * stays the cheap liveness answer.
 */
export function readyRoutes(db: Db) {
  const peers = peersOf(db);
  return new Elysia({ tags: ["system"] }).get(
    "/ready",
    async () => {
      if (!(await within(CHECK_MS, ping(db)))) throw apiErrors.not_ready("The database did not answer.");
      if (!(await peers.hears(CHECK_MS)))
        throw apiErrors.not_ready("This instance does not hear other instances' revocations: its LISTEN connection to PostgreSQL is down.");
      return { status: "ready" as const };
    },
    {
      response: {
        200: t.Object({ status: t.Literal("ready") }, { description: "The database answers (and on PostgreSQL, announcements from other instances arrive)" }),
        ...errorResponses({ 503: ["not_ready"] }),
      },
      detail: { summary: "Readiness: the database answers, and on PostgreSQL the LISTEN connection for other instances' revocations is up" },
    },
  );
}
