import { describe, expect, test } from "bun:test";
import { safeRedirect, signInHostFor, signInHosts } from "../../src/modules/pages/hosts";

const hosts = signInHosts(["https://auth.example.com", "https://auth.example.net"]);
const com = hosts[0]!;

describe("rd after sign-in: only hosts this server signs browsers in for", () => {
  // Each of these must fall back to /account (undefined here): none may leave the allowed hosts.
  const refused = [
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https://auth.example.com.evil.example/",
    "https://evil.example/?https://auth.example.com",
    "https://example.com@evil.example/",
    "https://user:pass@app.example.com/",
    "https://evil.example#@app.example.com",
    "https://notexample.com/",
    "http://app.example.com/",
    "https:\\\\evil.example",
    "https:/\\evil.example",
    "/\t/evil.example",
    "/%09/evil.example".replace("%09", "\t"),
    "\u0000https://app.example.com",
    "https://app.example.com\u2028/",
    "ftp://app.example.com/",
    "evil.example",
    "",
    "https://example.org/",
    `/${"a".repeat(2100)}`,
  ];
  for (const rd of refused)
    test(`refuses ${JSON.stringify(rd.slice(0, 60))}`, () => {
      expect(safeRedirect(rd, com, hosts)).toBeUndefined();
    });

  const allowed: [string, string][] = [
    ["/account", "https://auth.example.com/account"],
    ["/%2F%2Fevil.example", "https://auth.example.com/%2F%2Fevil.example"],
    ["https://app.example.com/photos?album=1", "https://app.example.com/photos?album=1"],
    ["https://APP.Example.COM/", "https://app.example.com/"],
    ["https://example.com/", "https://example.com/"],
    ["https://wiki.example.net/page", "https://wiki.example.net/page"],
    ["https://app.example.com:8443/x", "https://app.example.com:8443/x"],
  ];
  for (const [rd, href] of allowed)
    test(`follows ${rd}`, () => {
      expect(safeRedirect(rd, com, hosts)).toBe(href);
    });

  test("a host-only sign-in host (an address) allows that address on any port and nothing else", () => {
    const loopback = signInHosts(["http://127.0.0.1:3000"]);
    expect(safeRedirect("http://127.0.0.1:8080/app", loopback[0]!, loopback)).toBe("http://127.0.0.1:8080/app");
    expect(safeRedirect("http://127.0.0.2/", loopback[0]!, loopback)).toBeUndefined();
    expect(safeRedirect("http://localhost/", loopback[0]!, loopback)).toBeUndefined();
  });

  test("each app host maps to the sign-in host of its root domain", () => {
    expect(signInHostFor(hosts, "photos.example.net")?.origin).toBe("https://auth.example.net");
    expect(signInHostFor(hosts, "example.com")?.origin).toBe("https://auth.example.com");
    expect(signInHostFor(hosts, "example.org")).toBeUndefined();
    expect(hosts.map((host) => host.cookieDomain)).toEqual(["example.com", "example.net"]);
  });
});
