import { BlockList, isIP } from "node:net";

/**
 * The client's address. Forwarding headers are believed only as far as TRUST_PROXY says, so a client
 * talking to Latchkey directly cannot pick its own rate-limit bucket with a spoofed X-Forwarded-For.
 */
export type TrustProxy =
  | { kind: "none" }
  | { kind: "all" }
  | { kind: "hops"; hops: number }
  | { kind: "cidrs"; cidrs: Networks };

/**
 * A set of networks (TRUST_PROXY's proxies, an access rule's `networks`): node:net's BlockList, which matches an
 * IPv4-mapped IPv6 address against IPv4 networks and checks a 3-hop chain in about half the time of BigInt masks.
 */
export type Networks = BlockList;

/** Parses an IPv4 or IPv6 address (IPv4-mapped IPv6 counts as IPv4); undefined if it is neither. */
export function parseIp(raw: string): { version: 4 | 6; value: bigint } | undefined {
  let address = raw.trim();
  if (address.startsWith("[") && address.endsWith("]")) address = address.slice(1, -1);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) address = mapped[1]!;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(address)) {
    const parts = address.split(".").map(Number);
    if (parts.some((part) => part > 255)) return undefined;
    return { version: 4, value: parts.reduce((acc, part) => (acc << 8n) | BigInt(part), 0n) };
  }
  if (!address.includes(":") || !/^[0-9a-f:]+$/i.test(address)) return undefined;
  const halves = address.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return undefined;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (groups.some((group) => group.length === 0 || group.length > 4)) return undefined;
  return { version: 6, value: groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n) };
}

/** Parses `a,b/n,...` (addresses or CIDR blocks, IPv4 or IPv6) into one set; undefined if any entry is invalid. */
export function parseNetworks(entries: readonly string[]): Networks | undefined {
  const networks = new BlockList();
  for (const entry of entries) {
    const [address = "", bitsText] = entry.trim().split("/");
    const version = isIP(address);
    if (version === 0) return undefined;
    const width = version === 4 ? 32 : 128;
    const bits = bitsText === undefined ? width : Number(bitsText);
    if (!/^\d+$/.test(bitsText ?? "0") || bits > width) return undefined;
    networks.addSubnet(address, bits, version === 4 ? "ipv4" : "ipv6");
  }
  return networks;
}

/** Whether an address lies in any of the networks (a malformed address lies in none). */
export function inNetworks(address: string | null, networks: Networks): boolean {
  const version = address === null ? 0 : isIP(address);
  return version !== 0 && networks.check(address!, version === 4 ? "ipv4" : "ipv6");
}

/**
 * The unit a per-address limit counts: an IPv4 address, or an IPv6 /64, the smallest block a single host is
 * usually given (RFC 6177): one host must not get a fresh bucket for each of its 2^64 addresses.
 */
export function addressGroup(address: string): string {
  const ip = parseIp(address);
  if (!ip) return address;
  return ip.version === 4 ? normalise(address) : `${(ip.value >> 64n).toString(16)}::/64`;
}

/** Normalised text form: IPv4-mapped IPv6 written as IPv4. */
function normalise(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** The header a trusted proxy writes the client's address into (TRUST_PROXY_HEADER). */
export type ProxyHeader = "x-forwarded-for" | "x-real-ip";

/**
 * One entry of a forwarding header as an address: "[2001:db8::1]:443" and "203.0.113.5:51234" (proxies that
 * append the client's port) lose the port. Anything else is kept as it is, never dropped: dropping an entry
 * would move the next one, which the client wrote, into the slot the trusted proxy filled.
 */
function forwardedAddress(entry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed) return bracketed[1]!;
  const withPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(entry);
  return withPort ? withPort[1]! : entry;
}

export function clientIp(headers: Headers, peer: string | null, trust: TrustProxy, header: ProxyHeader = "x-forwarded-for"): string | null {
  if (trust.kind === "none" || peer === null) return peer === null ? null : normalise(peer);

  // X-Real-IP is one address set by the nearest proxy: believed when that proxy (the peer) is trusted.
  if (header === "x-real-ip") {
    const peerTrusted = trust.kind === "all" || (trust.kind === "hops" ? trust.hops > 0 : inNetworks(peer, trust.cidrs));
    const realIp = headers.get("x-real-ip")?.trim();
    return normalise(peerTrusted && realIp && parseIp(realIp) ? realIp : peer);
  }

  const forwarded = (headers.get("x-forwarded-for") ?? "")
    .split(",")
    .map((entry) => forwardedAddress(entry.trim()))
    .filter(Boolean);
  const chain = [...forwarded, peer];
  switch (trust.kind) {
    case "all":
      return normalise(chain[0]!);
    case "hops":
      return normalise(chain[Math.max(0, chain.length - 1 - trust.hops)]!);
    case "cidrs": {
      // Walk from the nearest hop outwards; the first address that is not a trusted proxy is the client.
      for (let i = chain.length - 1; i >= 0; i--) if (!inNetworks(chain[i]!, trust.cidrs)) return normalise(chain[i]!);
      return normalise(chain[0]!);
    }
  }
}

/** Whether the peer is a proxy TRUST_PROXY allows to speak for the client (its forwarding headers count). */
export function isTrustedPeer(trust: TrustProxy, peer: string | null): boolean {
  if (peer === null) return false;
  switch (trust.kind) {
    case "none":
      return false;
    case "all":
      return true;
    case "hops":
      return trust.hops > 0;
    case "cidrs":
      return inNetworks(peer, trust.cidrs);
  }
}

/** TRUST_PROXY: false (default), true, a hop count, or a comma list of addresses/CIDRs of your proxies. */
export function parseTrustProxy(raw: string | undefined): TrustProxy | undefined {
  if (raw === undefined || raw === "false" || raw === "0") return { kind: "none" };
  if (raw === "true") return { kind: "all" };
  if (/^\d{1,2}$/.test(raw)) return { kind: "hops", hops: Number(raw) };
  const cidrs = parseNetworks(raw.split(","));
  return cidrs && { kind: "cidrs", cidrs };
}
