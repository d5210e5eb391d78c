/** TRUST_PROXY: which address of a forwarding chain is the client's, for each kind of trust (src/lib/ip.ts). */
import { describe, expect, test } from "bun:test";
import { clientIp, inNetworks, isTrustedPeer, parseNetworks, parseTrustProxy, type TrustProxy } from "../../src/lib/ip";

const forwarded = (value: string) => new Headers({ "x-forwarded-for": value });
const trust = (raw: string): TrustProxy => parseTrustProxy(raw)!;

describe("parseTrustProxy", () => {
  test("reads false, true, a hop count and address/CIDR lists; refuses anything else", () => {
    expect(parseTrustProxy(undefined)).toEqual({ kind: "none" });
    expect(parseTrustProxy("false")).toEqual({ kind: "none" });
    expect(parseTrustProxy("0")).toEqual({ kind: "none" });
    expect(parseTrustProxy("true")).toEqual({ kind: "all" });
    expect(parseTrustProxy("2")).toEqual({ kind: "hops", hops: 2 });
    expect(trust("10.0.0.0/8, 192.0.2.1, fd00::/8").kind).toBe("cidrs");
    for (const bad of ["10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/x", "300.1.1.1", "proxy.local", "10.0.0.0/8,", "yes", "[::1]"])
      expect({ bad, parsed: parseTrustProxy(bad) }).toEqual({ bad, parsed: undefined });
  });
});

describe("networks", () => {
  const networks = parseNetworks(["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"])!;
  test("match IPv4, IPv4-mapped IPv6 against IPv4 networks, and IPv6; a malformed or null address matches nothing", () => {
    expect(["10.9.8.7", "127.0.0.1", "::ffff:10.1.2.3", "2001:db8:1::5"].map((address) => inNetworks(address, networks))).toEqual([true, true, true, true]);
    expect(["11.0.0.1", "127.0.0.2", "::ffff:11.0.0.1", "2001:db9::1", "garbage", "10.0.0.1:80"].map((address) => inNetworks(address, networks))).toEqual([
      false, false, false, false, false, false,
    ]);
    expect(inNetworks(null, networks)).toBe(false);
  });
});

describe("clientIp", () => {
  test("with no trust the peer is the client, whatever the headers say (IPv4-mapped written as IPv4)", () => {
    expect(clientIp(forwarded("198.51.100.1"), "::ffff:203.0.113.9", { kind: "none" })).toBe("203.0.113.9");
  });

  test("with CIDRs the chain is walked from the nearest hop: the first address that is not a trusted proxy is the client", () => {
    const proxies = trust("10.0.0.0/8,172.16.0.0/12");
    expect(clientIp(forwarded("198.51.100.7, 172.16.3.4"), "10.0.0.5", proxies)).toBe("198.51.100.7");
    // A client that writes its own X-Forwarded-For in front cannot choose: the nearest untrusted entry wins.
    expect(clientIp(forwarded("192.0.2.66, 198.51.100.7"), "10.0.0.5", proxies)).toBe("198.51.100.7");
    // A peer that is not a trusted proxy is the client itself.
    expect(clientIp(forwarded("192.0.2.66"), "203.0.113.9", proxies)).toBe("203.0.113.9");
    // An IPv4-mapped peer in a trusted IPv4 network is trusted.
    expect(clientIp(forwarded("198.51.100.7"), "::ffff:10.0.0.5", proxies)).toBe("198.51.100.7");
    // Ports a proxy appended are dropped; a chain of nothing but proxies gives its far end.
    expect(clientIp(forwarded("[2001:db8::7]:443, 198.51.100.7:51234"), "10.0.0.5", proxies)).toBe("198.51.100.7");
    expect(clientIp(forwarded("10.1.1.1"), "10.0.0.5", proxies)).toBe("10.1.1.1");
  });

  test("hops count proxies from the peer; X-Real-IP is believed only from a trusted peer", () => {
    expect(clientIp(forwarded("192.0.2.66, 198.51.100.7"), "10.0.0.5", trust("1"))).toBe("198.51.100.7");
    expect(clientIp(forwarded("192.0.2.66, 198.51.100.7"), "10.0.0.5", trust("2"))).toBe("192.0.2.66");
    const realIp = new Headers({ "x-real-ip": "198.51.100.7" });
    expect(clientIp(realIp, "10.0.0.5", trust("10.0.0.0/8"), "x-real-ip")).toBe("198.51.100.7");
    expect(clientIp(realIp, "203.0.113.9", trust("10.0.0.0/8"), "x-real-ip")).toBe("203.0.113.9");
    expect(isTrustedPeer(trust("10.0.0.0/8"), "10.0.0.5")).toBe(true);
    expect(isTrustedPeer(trust("10.0.0.0/8"), "203.0.113.9")).toBe(false);
    expect(isTrustedPeer(trust("10.0.0.0/8"), null)).toBe(false);
  });
});
