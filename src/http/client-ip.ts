import { Elysia } from "elysia";
import { clientIp, type ProxyHeader, type TrustProxy } from "../lib/ip";
import { DEVICE_COOKIE, readCookie } from "./cookies";

/** The client of one request as the audit log and sessions record it (the address parsing is in lib/ip.ts). */
export interface ClientInfo {
  ip: string | null;
  userAgent: string | null;
  /** The device cookie a browser presented (limits/device.ts): checked, never trusted as is. */
  device?: string;
}

const MAX_USER_AGENT = 512;

type PeerSource = { requestIP(request: Request): { address: string } | null } | null;

/**
 * Builds the per-request ClientInfo reader for the TRUST_PROXY and TRUST_PROXY_HEADER settings. It reads each
 * request once: the per-IP limit (in transform) and the route (`requester`, below) share the answer.
 */
export function clientInfoReader(trust: TrustProxy, header: ProxyHeader) {
  const read = new WeakMap<Request, ClientInfo>();
  return (request: Request, server: PeerSource): ClientInfo => {
    let client = read.get(request);
    if (!client) {
      client = {
        ip: clientIp(request.headers, server?.requestIP(request)?.address ?? null, trust, header),
        // Bounded once here: a client chooses it, and it is stored with sessions and audit events.
        userAgent: request.headers.get("user-agent")?.slice(0, MAX_USER_AGENT) ?? null,
        device: readCookie(request.headers.get("cookie"), DEVICE_COOKIE),
      };
      read.set(request, client);
    }
    return client;
  };
}

export type ClientInfoReader = ReturnType<typeof clientInfoReader>;

/**
 * `requester` (who sent the request: address, user agent, device cookie) in the context of every route of a
 * module that uses this plugin, read once per request, so no handler parses the address itself.
 */
export function requesterPlugin(readClient: ClientInfoReader) {
  return new Elysia({ name: "latchkey/requester" }).derive({ as: "scoped" }, ({ request, server }) => ({ requester: readClient(request, server) }));
}

export type RequesterPlugin = ReturnType<typeof requesterPlugin>;
