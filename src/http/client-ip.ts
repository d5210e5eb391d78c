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

/** Builds the per-request ClientInfo reader for the TRUST_PROXY and TRUST_PROXY_HEADER settings. */
export function clientInfoReader(trust: TrustProxy, header: ProxyHeader) {
  return (request: Request, server: PeerSource): ClientInfo => ({
    ip: clientIp(request.headers, server?.requestIP(request)?.address ?? null, trust, header),
    // Bounded once here: a client chooses it, and it is stored with sessions and audit events.
    userAgent: request.headers.get("user-agent")?.slice(0, MAX_USER_AGENT) ?? null,
    device: readCookie(request.headers.get("cookie"), DEVICE_COOKIE),
  });
}

export type ClientInfoReader = ReturnType<typeof clientInfoReader>;
