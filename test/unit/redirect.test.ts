import { describe, expect, test } from "bun:test";
import { covers, safeRedirect, signInHostFor, signInHosts } from "../../src/modules/pages/hosts";

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
    `/${"a".repeat(2048)}`,
    // Protocol-relative is refused even towards an allowed host (a scheme further on does not make it absolute).
    "//app.example.com/page",
    "//app.example.com/a:b",
    "https://user@app.example.com/",
    "https://:secret@app.example.com/",
    "https://[::1/",
    "https://",
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

  test("a rd of exactly 2048 characters is still followed", () => {
    const rd = `/${"a".repeat(2047)}`;
    expect(safeRedirect(rd, com, hosts)).toBe(`https://auth.example.com${rd}`);
  });

  test("under http sign-in hosts, only http(s) URLs are followed: ftp:, ws: and file: are not", () => {
    const plain = signInHosts(["http://auth.example.org"]);
    expect(safeRedirect("http://app.example.org/", plain[0]!, plain)).toBe("http://app.example.org/");
    for (const rd of ["ftp://app.example.org/", "ws://app.example.org/", "file://app.example.org/x"]) expect(safeRedirect(rd, plain[0]!, plain)).toBeUndefined();
  });

  test("cookie domains: the parent of a name of three labels or more; none for an address, a one- or two-label name", () => {
    const list = signInHosts(["https://auth.example.com", "https://example.com", "http://localhost:3000", "http://127.0.0.1:3000", "http://[::1]:3000", "https://a.b.example.co.uk"]);
    expect(list.map((host) => [host.cookieDomain, host.secure])).toEqual([
      ["example.com", true],
      [undefined, true],
      [undefined, false],
      [undefined, false],
      [undefined, false],
      ["b.example.co.uk", true],
    ]);
    // An address has no parent domain even with four labels.
    expect(signInHostFor(list, "0.0.1")).toBeUndefined();
  });

  test("a covered name is the domain itself or a label under it, never a bare dot or a look-alike", () => {
    expect(covers(com, "example.com")).toBe(true);
    expect(covers(com, "a.example.com")).toBe(true);
    expect(covers(com, "auth.example.com")).toBe(true);
    expect(covers(com, ".example.com")).toBe(false);
    expect(covers(com, "evilexample.com")).toBe(false);
    expect(covers(com, "example.com.evil")).toBe(false);
    expect(covers(signInHosts(["https://example.com"])[0]!, "a.example.com")).toBe(false);
  });

  test("each app host maps to the sign-in host of its root domain", () => {
    expect(signInHostFor(hosts, "photos.example.net")?.origin).toBe("https://auth.example.net");
    expect(signInHostFor(hosts, "example.com")?.origin).toBe("https://auth.example.com");
    expect(signInHostFor(hosts, "example.org")).toBeUndefined();
    expect(hosts.map((host) => host.cookieDomain)).toEqual(["example.com", "example.net"]);
  });
});
