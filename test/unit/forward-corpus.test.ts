/**
 * Forward auth's decision through its pure functions (no HTTP): the request parser of each proxy family, the
 * rules applied to both forms of the path, and the verdict, for every request of the corpus an attacker would try
 * (test/support/forward-corpus.ts), for each proxy family, each kind of caller, hosts, ports, methods, mixed header
 * families and scoped keys; then random paths checked against a model of how app servers read them.
 */
import { describe, expect, test } from "bun:test";
import { decide, requestPolicies, urlRule, type Caller, type Verdict } from "../../src/modules/forward/decide";
import { forwardedRequest, type ForwardedRequest } from "../../src/modules/forward/request";
import { parseAccessRules } from "../../src/modules/forward/rules";
import { appReadings, CORPUS_PATHS, CORPUS_RULES, inside, type PathClass } from "../support/forward-corpus";

const rules = parseAccessRules(CORPUS_RULES, "corpus.toml");
const BOB: Caller = { username: "bob", roles: [] };
const ROOT: Caller = { username: "root", roles: ["admin"] };
const CALLERS = [undefined, BOB, ROOT] as const;

/** The verdict for a request the proxy described with `headers`, asked by `who` through forward URL `url`. */
function verdict(headers: Record<string, string>, who: Caller | undefined, url = "http://latchkey/api/v1/auth/forward"): Verdict {
  const policies = requestPolicies(rules, forwardedRequest(new Headers(headers)), "203.0.113.9");
  return decide(policies, who, urlRule(url));
}

const EXPECTED: Record<PathClass, [Verdict, Verdict, Verdict]> = {
  P: ["bypass", "bypass", "bypass"],
  S: ["sign_in", "allow", "allow"],
  A: ["sign_in", "forbidden", "allow"],
  D: ["forbidden", "forbidden", "forbidden"],
  X: ["forbidden", "forbidden", "forbidden"],
};

const forwarded = (target: string, method = "GET", host = "app.example.com") => ({
  "x-forwarded-proto": "https",
  "x-forwarded-host": host,
  "x-forwarded-uri": target,
  "x-forwarded-method": method,
});
const nginx = (target: string, method = "GET", host = "app.example.com") => ({ "x-original-url": `https://${host}${target}`, "x-original-method": method });

const all = (headers: Record<string, string>) => CALLERS.map((who) => verdict(headers, who));

describe("paths, through each proxy family's parser", () => {
  for (const [family, build] of [["forward_auth", forwarded], ["auth_request", nginx]] as const)
    for (const [path, kind] of CORPUS_PATHS)
      test(`${family} ${path} → ${kind}`, () => {
        expect(all(build(path))).toEqual(EXPECTED[kind]);
      });
});

describe("methods", () => {
  const cases: [string, string, PathClass][] = [
    ["GET", "/api/health", "P"],
    ["HEAD", "/api/health", "P"],
    ["get", "/api/health", "P"],
    ["POST", "/api/health", "S"],
    ["PUT", "/api/health", "S"],
    ["DELETE", "/api/health", "S"],
    ["OPTIONS", "/api/health", "S"],
    ["PATCH", "/api/health/x", "S"],
    ["PROPFIND", "/api/health", "S"],
    ["POST", "/admin-area", "A"],
    ["DELETE", "/blocked", "D"],
    ["G3T", "/api/health", "X"],
    ["GET /admin-area", "/api/health", "X"],
    ["", "/api/health", "X"],
  ];
  for (const [method, path, kind] of cases) {
    test(`forward_auth ${JSON.stringify(method)} ${path} → ${kind}`, () => expect(all(forwarded(path, method))).toEqual(EXPECTED[kind]));
    test(`auth_request ${JSON.stringify(method)} ${path} → ${kind}`, () => expect(all(nginx(path, method))).toEqual(EXPECTED[kind]));
  }
});

describe("hosts and ports: a trailing dot or a port is the same host; a bad one is denied", () => {
  const cases: [string, PathClass][] = [
    ["admin.example.com", "A"],
    ["ADMIN.Example.COM", "A"],
    ["admin.example.com.", "A"],
    ["admin.example.com:443", "A"],
    ["admin.example.com:80", "A"],
    ["admin.example.com.:8443", "A"],
    ["app.example.com", "S"],
    ["app.example.com:8080", "S"],
    ["[::1]:8080", "S"],
    ["127.0.0.1", "S"],
    ["admin.example.com:99999", "X"],
    ["admin.example.com:abc", "X"],
    ["admin.example.com:80:80", "X"],
    ["admin.example.com:0", "X"],
    ["admin.example.com:", "X"],
    ["admin..example.com", "X"],
    ["admin.example.com..", "X"],
    [".admin.example.com", "X"],
    ["admin.example.com@evil.example", "X"],
    ["evil.example?admin.example.com", "X"],
    ["evil.example#admin.example.com", "X"],
    ["admin.example.com\\x", "X"],
    ["admin example.com", "X"],
    ["", "X"],
  ];
  for (const [host, kind] of cases) {
    test(`forward_auth host ${JSON.stringify(host)} → ${kind}`, () => expect(all(forwarded("/", "GET", host))).toEqual(EXPECTED[kind]));
    test(`auth_request host ${JSON.stringify(host)} → ${kind}`, () => expect(all(nginx("/", "GET", host))).toEqual(EXPECTED[kind]));
  }
  const urls: [string, PathClass][] = [
    ["http://admin.example.com", "A"],
    ["HTTPS://admin.example.com/x", "A"],
    ["https://user@admin.example.com/", "X"],
    ["https://app.example.com@admin.example.com/", "X"],
    ["ftp://admin.example.com/", "X"],
    ["//admin.example.com/", "X"],
    ["/api/health", "X"],
    ["https://app.example.com/api/health#frag", "X"],
    ["https://app.example.com\\@admin.example.com/", "X"],
  ];
  for (const [url, kind] of urls)
    test(`auth_request X-Original-URL ${url} → ${kind}`, () => expect(all({ "x-original-url": url, "x-original-method": "GET" })).toEqual(EXPECTED[kind]));
});

describe("only the proxy's own headers decide: a mix of families, or missing parts, is denied", () => {
  const cases: [string, Record<string, string>, PathClass][] = [
    ["forward_auth for /private plus a client's X-Original-URL of the bypass", { ...forwarded("/private"), "x-original-url": "https://app.example.com/api/health" }, "X"],
    ["forward_auth POST plus a client's X-Original-Method: GET", { ...forwarded("/api/health", "POST"), "x-original-method": "GET" }, "X"],
    ["forward_auth for the admin host plus X-Original-URL naming another host", { ...forwarded("/", "GET", "admin.example.com"), "x-original-url": "https://app.example.com/" }, "X"],
    ["auth_request for /private plus a client's X-Forwarded-Uri", { ...nginx("/private"), "x-forwarded-uri": "/api/health" }, "X"],
    ["auth_request plus a client's X-Forwarded-Host", { ...nginx("/"), "x-forwarded-host": "app.example.com" }, "X"],
    ["auth_request plus a client's X-Forwarded-Method", { ...nginx("/api/health", "POST"), "x-forwarded-method": "GET" }, "X"],
    ["auth_request with an X-Forwarded-Proto (an outer load balancer's) is still auth_request", { ...nginx("/private"), "x-forwarded-proto": "https" }, "S"],
    ["forward_auth without X-Forwarded-Method", { "x-forwarded-host": "app.example.com", "x-forwarded-uri": "/api/health" }, "X"],
    ["forward_auth without X-Forwarded-Uri", { "x-forwarded-host": "app.example.com", "x-forwarded-method": "GET" }, "X"],
    ["forward_auth without X-Forwarded-Host", { "x-forwarded-uri": "/api/health", "x-forwarded-method": "GET" }, "X"],
    ["forward_auth with a relative X-Forwarded-Uri", forwarded("api/health"), "X"],
    ["forward_auth with an absolute X-Forwarded-Uri", forwarded("https://app.example.com/api/health"), "X"],
    ["auth_request without X-Original-Method", { "x-original-url": "https://app.example.com/api/health" }, "X"],
    ["auth_request with only X-Original-Method", { "x-original-method": "GET" }, "X"],
    ["no proxy headers at all", {}, "X"],
    ["Remote-User and Remote_User from the client count for nothing", { ...forwarded("/admin-area"), "remote-user": "root", remote_user: "root", "remote-groups": "admin" }, "A"],
  ];
  for (const [name, headers, kind] of cases) test(`${name} → ${kind}`, () => expect(all(headers)).toEqual(EXPECTED[kind]));

  test("a request no trusted proxy described, with rules in force, is denied; without rules signed in is enough", () => {
    const untrusted: ForwardedRequest = { ok: false, family: undefined, reason: "untrusted" };
    expect(CALLERS.map((who) => decide(requestPolicies(rules, untrusted, null), who, undefined))).toEqual(EXPECTED.X);
    expect(CALLERS.map((who) => decide(requestPolicies(undefined, untrusted, null), who, undefined))).toEqual(EXPECTED.S);
  });
});

test("a rule's networks see the client address, worked out only when that rule is reached", () => {
  const lan = parseAccessRules('[[rule]]\nhosts = ["lan.example.com"]\nnetworks = ["192.168.0.0/16"]\npolicy = "bypass"\n', "lan.toml");
  let asked = 0;
  const ip = (address: string) => () => {
    asked++;
    return address;
  };
  const at = (host: string, address: string) => decide(requestPolicies(lan, forwardedRequest(new Headers(forwarded("/", "GET", host))), ip(address)), undefined, undefined);
  expect(at("app.example.com", "192.168.1.5")).toBe("sign_in");
  expect(asked).toBe(0);
  expect(at("lan.example.com", "192.168.1.5")).toBe("bypass");
  expect(at("lan.example.com", "203.0.113.9")).toBe("sign_in");
  expect(asked).toBe(2);
});

describe("scoped API keys pass only where the forward URL or a rule names one of their scopes", () => {
  const scoped: Caller = { username: "bob", roles: [], keyId: "k1", scopes: ["backup:write"] };
  const scopedAdmin: Caller = { username: "root", roles: ["admin"], keyId: "k2", scopes: ["backup:write", "photos:read"] };
  const unscoped: Caller = { username: "bob", roles: [], keyId: "k3", scopes: [] };
  const forward = "http://latchkey/api/v1/auth/forward";
  const cases: [string, Record<string, string>, Caller, string, Verdict][] = [
    ["no scope named", forwarded("/"), scoped, forward, "forbidden"],
    ["?scopes= names its scope", forwarded("/"), scoped, `${forward}?scopes=backup:write`, "allow"],
    ["?scopes= names another", forwarded("/"), scoped, `${forward}?scopes=photos:read`, "forbidden"],
    ["?scopes= lists several", forwarded("/"), scoped, `${forward}?scopes=photos:read,%20backup:write`, "allow"],
    ["a rule's scopes name it", forwarded("/", "GET", "backup.example.com"), scoped, forward, "allow"],
    ["a bypass needs nothing", forwarded("/api/health"), scoped, forward, "bypass"],
    ["roles still apply to a key with the scope", forwarded("/admin-area"), scoped, `${forward}?scopes=backup:write`, "forbidden"],
    ["an admin's scoped key, scope named, admin path", forwarded("/admin-area"), scopedAdmin, `${forward}?scopes=photos:read`, "allow"],
    ["an admin's scoped key, no scope named, admin path", forwarded("/admin-area"), scopedAdmin, forward, "forbidden"],
    ["an unscoped key is a full key", forwarded("/"), unscoped, forward, "allow"],
    ["an unscoped key on the scoped host", forwarded("/", "GET", "backup.example.com"), unscoped, forward, "allow"],
    ["a session is not limited by ?scopes=", forwarded("/"), BOB, `${forward}?scopes=backup:write`, "allow"],
    ["a session on the scoped host", forwarded("/", "GET", "backup.example.com"), BOB, forward, "allow"],
    ["?roles= still restricts", forwarded("/"), BOB, `${forward}?roles=family`, "forbidden"],
    ["?users= allows by name", forwarded("/"), BOB, `${forward}?users=Bob`, "allow"],
    ["?roles= and ?scopes= together", forwarded("/"), scopedAdmin, `${forward}?roles=admin&scopes=photos:read`, "allow"],
  ];
  for (const [name, headers, who, url, expected] of cases) test(`${name} → ${expected}`, () => expect(verdict(headers, who, url)).toBe(expected));
});

describe("random paths: what forward auth lets through is what the app serves", () => {
  // A seeded generator: the same paths on every run, so a failure can be replayed.
  let seed = 20;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const TOKENS = ["/", "/", "/", "api", "health", "admin-area", "ADMIN-AREA", "blocked", "x", ".", "..", "%2e", "%2E", "%2e%2e", "%2f", "%2F",
    "%5c", "%25", "%252e", "%252f", ";", ";x=1", "%3b", "%3f", "%23", "%61", "%ff", "%00", "%20", "A", "-", "?", "%3F"];
  const paths = Array.from({ length: 4000 }, () => {
    let path = "/";
    for (let n = 1 + Math.floor(random() * 12); n > 0; n--) path += TOKENS[Math.floor(random() * TOKENS.length)];
    return path;
  });

  test("a bypass resolves inside /api/health for every app reading; a denied or admin path is never let through", () => {
    const problems: string[] = [];
    for (const target of paths) {
      const query = target.indexOf("?");
      const readings = appReadings(query === -1 ? target : target.slice(0, query));
      const [anonymous, bob] = [verdict(forwarded(target), undefined), verdict(forwarded(target), BOB)];
      // An app that refuses the path (undecodable) serves nothing; forward auth may answer anything there.
      if (!readings) continue;
      if (anonymous === "bypass" && !readings.every((path) => inside("/api/health", path))) problems.push(`bypass ${target} → ${readings}`);
      const protectedReading = readings.some((path) => inside("/admin-area", path.toLowerCase()) || inside("/blocked", path.toLowerCase()));
      if (protectedReading && (bob !== "forbidden" || anonymous === "bypass")) problems.push(`${bob} ${target} → ${readings}`);
    }
    expect(problems).toEqual([]);
  });

  test("every random path gets a verdict, never an exception", () => {
    for (const target of paths) for (const build of [forwarded, nginx]) expect(["bypass", "allow", "sign_in", "forbidden"]).toContain(verdict(build(target), BOB));
  });
});

describe('require = "passkey": only a session made with a passkey (amr hwk) passes; API keys never do', () => {
  const passkeyRules = parseAccessRules(
    `
[[rule]]
name = "vault, with a passkey"
hosts = ["vault.example.com"]
require = "passkey"

[[rule]]
name = "admin console, admins with a passkey"
hosts = ["console.example.com"]
roles = ["admin"]
require = "passkey"

[[rule]]
name = "health"
paths = ["/api/health"]
policy = "bypass"
`,
    "passkeys.toml",
  );
  const at = (host: string, who: Caller | undefined, path = "/") => decide(requestPolicies(passkeyRules, forwardedRequest(new Headers(forwarded(path, "GET", host))), null), who, undefined);
  const password: Caller = { username: "bob", roles: [], amr: ["pwd"] };
  const totp: Caller = { username: "bob", roles: [], amr: ["pwd", "otp", "mfa"] };
  const passkey: Caller = { username: "bob", roles: [], amr: ["hwk", "user", "mfa"] };
  const passkeyAdmin: Caller = { username: "root", roles: ["admin"], amr: ["pwd", "hwk", "mfa"] };
  const passwordAdmin: Caller = { username: "root", roles: ["admin"], amr: ["pwd"] };
  const unknownAmr: Caller = { username: "bob", roles: [] };
  const key: Caller = { username: "bob", roles: ["admin"], keyId: "k1", scopes: [] };
  const keyClaimingHwk: Caller = { username: "bob", roles: ["admin"], keyId: "k1", scopes: [], amr: ["hwk"] };
  const cases: [string, string, Caller | undefined, Verdict][] = [
    ["anonymous signs in first", "vault.example.com", undefined, "sign_in"],
    ["a password session is sent to the passkey step", "vault.example.com", password, "passkey"],
    ["password and TOTP is not a passkey", "vault.example.com", totp, "passkey"],
    ["a session without a known amr fails closed", "vault.example.com", unknownAmr, "passkey"],
    ["a passkey session passes", "vault.example.com", passkey, "allow"],
    ["an API key never passes", "vault.example.com", key, "passkey"],
    ["an API key claiming hwk still does not", "vault.example.com", keyClaimingHwk, "passkey"],
    ["roles come first: a passkey without the role is refused", "console.example.com", passkey, "forbidden"],
    ["an admin with a password is sent to the passkey step", "console.example.com", passwordAdmin, "passkey"],
    ["an admin with a passkey second step passes", "console.example.com", passkeyAdmin, "allow"],
    ["elsewhere a password is enough", "app.example.com", password, "allow"],
  ];
  for (const [name, host, who, expected] of cases) test(`${name} → ${expected}`, () => expect(at(host, who)).toBe(expected));

  test("the requirement holds on every reading of a path: a broad reading that reaches the rule asks for a passkey too", () => {
    const rules = parseAccessRules('[[rule]]\npaths = ["/vault"]\nrequire = "passkey"', "r.toml");
    const on = (path: string, who: Caller) => decide(requestPolicies(rules, forwardedRequest(new Headers(forwarded(path))), null), who, undefined);
    expect(on("/vault/x", password)).toBe("passkey");
    expect(on("/VAULT/x", password)).toBe("passkey");
    expect(on("/other/..;/vault", password)).toBe("passkey");
    expect(on("/other", password)).toBe("allow");
    expect(on("/other/..;/vault", passkey)).toBe("allow");
  });
});

describe("rule paths written with capitals", () => {
  // A rule's paths are matched exactly, and also folded for the broad readings. A rule written `/Admin` must then
  // hold for `/admin` as for `/ADMIN`: on an app that folds case they are one page (mutation testing found
  // `/admin`, a plain lower-case path with no broad reading, given the default policy).
  const rules = parseAccessRules(
    '[[rule]]\npaths = ["/Admin"]\npolicy = "deny"\n\n[[rule]]\npaths = ["/Vault"]\nroles = ["admin"]\n\n[[rule]]\npaths = ["/Public"]\npolicy = "bypass"\n\n[[rule]]\npaths = ["/Shop"]\nrequire = "passkey"',
    "capitals.toml",
  );
  const on = (path: string, who: Caller | undefined) => decide(requestPolicies(rules, forwardedRequest(new Headers(forwarded(path))), null), who, undefined);
  const password: Caller = { username: "bob", roles: [], amr: ["pwd"] };
  const cases: [string, Caller | undefined, Verdict][] = [
    ["/Admin", ROOT, "forbidden"],
    ["/admin", ROOT, "forbidden"],
    ["/ADMIN", ROOT, "forbidden"],
    ["/admin/x", ROOT, "forbidden"],
    ["/vault", BOB, "forbidden"],
    ["/Vault", BOB, "forbidden"],
    ["/vault", ROOT, "allow"],
    ["/shop", password, "passkey"],
    // A bypass stays exact: only the path as written skips sign-in.
    ["/Public", undefined, "bypass"],
    ["/public", undefined, "sign_in"],
    ["/PUBLIC", undefined, "sign_in"],
    ["/other", BOB, "allow"],
  ];
  for (const [path, who, expected] of cases) test(`${path} as ${who?.username ?? "nobody"} → ${expected}`, () => expect(on(path, who)).toBe(expected));
});
