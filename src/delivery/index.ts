import type { Config } from "../config";
import { createBearerTransport } from "./bearer";
import { createCookieTransport } from "./cookie";
import { createHeaderTransport } from "./header";
import { createOriginChecks } from "./origin";
import type { Transport } from "./transport";

export { oauthTokenBody, tokenResponseHeaders, type IssuedTokens } from "./transport";

/**
 * How tokens travel (TOKEN_DELIVERY), kept apart from what they are: the one `Transport` of the configured mode,
 * chosen here once at start (no route asks which mode it is in), and the origin checks every mode shares.
 */
export function createDelivery(config: Config): Transport & ReturnType<typeof createOriginChecks> {
  const origins = createOriginChecks(config);
  const transports = {
    bearer: createBearerTransport,
    header: createHeaderTransport,
    cookie: () => createCookieTransport(config, origins),
  } satisfies Record<Config["tokenDelivery"], () => Transport>;
  return { ...origins, ...transports[config.tokenDelivery]() };
}

export type Delivery = ReturnType<typeof createDelivery>;
