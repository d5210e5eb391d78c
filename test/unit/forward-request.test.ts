/**
 * Forward auth's request parsers and the forward URL's rule, field by field (issue 23: the mutation run found the
 * parsed URL, which the sign-in redirect sends the browser back to, and each refusal's family and reason unpinned).
 */
import { describe, expect, test } from "bun:test";
import { decide, requestPolicies, urlRule } from "../../src/modules/forward/decide";
import { forwardedRequest } from "../../src/modules/forward/request";
import { canonicalPath } from "../../src/modules/forward/paths";
import { parseAccessRules } from "../../src/modules/forward/rules";

const parse = (headers: Record<string, string>) => forwardedRequest(new Headers(headers));
const forwarded = (extra: Record<string, string> = {}) => ({ "x-forwarded-host": "app.example.com", "x-forwarded-uri": "/x", "x-forwarded-method": "GET", ...extra });

describe("each family's parser", () => {
  test("forward_auth: the whole request, the host lower-cased without its port, the method upper-cased", () => {
    expect(parse({ "x-forwarded-proto": "https", "x-forwarded-host": "App.Example.com:8443", "x-forwarded-uri": "/a/./b?x=1", "x-forwarded-method": "get" })).toEqual({
      ok: true,
      family: "forwarded",
      url: "https://App.Example.com:8443/a/./b?x=1",
      method: "GET",
      host: "app.example.com",
      path: { exact: "/a/b", canonical: false, broad: [] },
    });
  });

  test("forward_auth: X-Forwarded-Proto other than https (or none) is http: the way back is never upgraded on a guess", () => {
    for (const proto of [undefined, "http", "HTTPS", "wss"]) expect(parse(forwarded(proto ? { "x-forwarded-proto": proto } : {}))).toMatchObject({ ok: true, url: "http://app.example.com/x" });
  });

  test("auth_request: the scheme lower-cased, the path from the URL (/ when it has none)", () => {
    expect(parse({ "x-original-url": "HTTPS://app.example.com/a;b/x", "x-original-method": "POST" })).toEqual({
      ok: true,
      family: "nginx",
      url: "https://app.example.com/a;b/x",
      method: "POST",
      host: "app.example.com",
      path: { exact: "/a;b/x", canonical: false, broad: ["/a/x"] },
    });
    expect(parse({ "x-original-url": "https://app.example.com", "x-original-method": "GET" })).toMatchObject({ ok: true, url: "https://app.example.com/", path: { exact: "/" } });
    expect(parse({ "x-original-url": "ftp://app.example.com/", "x-original-method": "GET" })).toEqual({ ok: false, family: "nginx", reason: "url" });
    expect(parse({ "x-original-url": "see https://app.example.com/", "x-original-method": "GET" })).toEqual({ ok: false, family: "nginx", reason: "url" });
  });

  test("every refusal names its family and its reason", () => {
    expect(parse({})).toEqual({ ok: false, family: undefined, reason: "no X-Original-URL or X-Forwarded-Host/-Uri" });
    expect(parse({ ...forwarded(), "x-original-method": "GET" })).toEqual({ ok: false, family: undefined, reason: "both X-Original-* and X-Forwarded-Host/-Uri/-Method were sent" });
    expect(parse({ "x-forwarded-method": "GET" })).toEqual({ ok: false, family: "forwarded", reason: "url" });
    expect(parse(forwarded({ "x-forwarded-host": "bad host" }))).toEqual({ ok: false, family: "forwarded", reason: "host" });
    expect(parse(forwarded({ "x-forwarded-method": "G3T" }))).toEqual({ ok: false, family: "forwarded", reason: "method" });
    expect(parse(forwarded({ "x-forwarded-uri": "/a%zz" }))).toEqual({ ok: false, family: "forwarded", reason: "path" });
    expect(parse({ "x-original-method": "GET" })).toEqual({ ok: false, family: "nginx", reason: "url" });
  });

  test("hosts: a one-letter name, ports 1 to 65535; port 0, 65536 and doubled dots are refused", () => {
    for (const host of ["a", "a:1", "a:65535", "[::1]:443", "a.example.com."]) expect(parse(forwarded({ "x-forwarded-host": host }))).toMatchObject({ ok: true });
    for (const host of ["a:0", "a:65536", "a..b", "-a", ""]) expect(parse(forwarded({ "x-forwarded-host": host }))).toMatchObject({ ok: false, reason: "host" });
  });
});

describe("paths at the edges", () => {
  test("a trailing dot segment resolves to its directory, with the slash", () => {
    expect(canonicalPath("/a/b/..")).toEqual({ exact: "/a/", canonical: false, broad: [] });
    expect(canonicalPath("/a/.")).toEqual({ exact: "/a/", canonical: false, broad: [] });
    expect(canonicalPath("/a/b/")).toEqual({ exact: "/a/b/", canonical: true, broad: [] });
    expect(canonicalPath("/a//b/")?.broad).toEqual(["/a/b/"]);
  });

  test("a lower-case plain path takes the fast path; anything to decode, resolve, drop or fold does not", () => {
    expect(canonicalPath("/plain/path")).toEqual({ exact: "/plain/path", canonical: true, broad: [] });
    expect(canonicalPath("/Plain")).toEqual({ exact: "/Plain", canonical: true, broad: ["/plain"] });
    expect(canonicalPath("/a;x")).toEqual({ exact: "/a;x", canonical: false, broad: ["/a"] });
  });
});

describe("the forward URL's own rule", () => {
  test("?roles=, ?users= (normalised) and ?scopes= are read; a URL without them, or with only others, has none", () => {
    expect(urlRule("http://latchkey/api/v1/auth/forward")).toBeUndefined();
    expect(urlRule("http://latchkey/api/v1/auth/forward?other=1&roles=")).toBeUndefined();
    expect(urlRule("http://latchkey/f?users=Bob,%20al&roles=a")).toEqual({ roles: ["a"], users: ["bob", "al"], scopes: [] });
    expect(urlRule("http://latchkey/f?scopes=s")).toEqual({ roles: [], users: [], scopes: ["s"] });
    expect(urlRule("http://latchkey/f?users=x")).toEqual({ roles: [], users: ["x"], scopes: [] });
  });

  test("only the query string holds the rule: parameter-like text in the path is no rule", () => {
    expect(urlRule("http://latchkey/f&roles=admin")).toBeUndefined();
    expect(urlRule("http://latchkey/f&roles=admin?users=x")).toEqual({ roles: [], users: ["x"], scopes: [] });
  });

  test("a bypass or a deny decides alone; a scoped key is held to its scopes even where a rule lets everyone in", () => {
    const key = { username: "bob", roles: [], keyId: "k", scopes: ["backup:write"] };
    expect(decide([{ kind: "bypass" }], key, undefined)).toBe("bypass");
    expect(decide([{ kind: "signed_in" }, { kind: "deny" }], key, undefined)).toBe("forbidden");
    expect(decide([{ kind: "signed_in" }], key, undefined)).toBe("forbidden");
    expect(decide([{ kind: "signed_in" }, { kind: "bypass" }], key, urlRule("http://l/f?scopes=backup:write"))).toBe("allow");
    expect(decide([{ kind: "signed_in" }, { kind: "bypass" }], { username: "bob", roles: [] }, undefined)).toBe("allow");
    expect(decide([{ kind: "signed_in" }], { username: "bob", roles: [], scopes: ["backup:write"] }, undefined)).toBe("allow");
    // A bypass reading beside a rule that names the key's scope admits the key: the bypass asks nothing of it.
    expect(decide([{ kind: "signed_in", scopes: new Set(["backup:write"]) }, { kind: "bypass" }], key, undefined)).toBe("allow");
  });
});

describe("the policies a request must pass", () => {
  test("without rules, signed in is the one policy", () => {
    expect(requestPolicies(undefined, parse(forwarded()), null)).toEqual([{ kind: "signed_in" }]);
  });

  test("the broad reading is matched against the rules' paths lower-cased: a rule written /Admin holds /ADMIN", () => {
    const rules = parseAccessRules('default_policy = "signed_in"\n[[rule]]\npaths = ["/Admin"]\npolicy = "deny"\n', "rules.toml");
    expect(requestPolicies(rules, parse(forwarded({ "x-forwarded-uri": "/ADMIN/users" })), null)).toEqual([{ kind: "signed_in" }, { kind: "deny" }]);
    expect(requestPolicies(rules, parse(forwarded({ "x-forwarded-uri": "/Admin" })), null)).toEqual([{ kind: "deny" }]);
  });
});
