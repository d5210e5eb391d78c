import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/errors";
import { canonicalPath } from "../../src/modules/forward/paths";
import { loadAccessRules, parseAccessRules, policyFor } from "../../src/modules/forward/rules";

const RULES = `
default_policy = "deny"

[[rule]]
name = "health"
hosts = ["*.example.com"]
paths = ["/api/health"]
methods = ["GET"]
policy = "bypass"

[[rule]]
name = "lan only admin"
paths = ["/admin"]
networks = ["192.168.0.0/16"]
roles = ["admin"]

[[rule]]
name = "family photos"
hosts = ["photos.example.com"]
users = ["Alice", "bob"]

[[rule]]
name = "everything else on example.com"
hosts = ["*.example.com", "example.com"]
policy = "signed_in"
`;

describe("ACCESS_RULES_FILE", () => {
  const rules = parseAccessRules(RULES, "rules.toml");
  const at = (host: string, path: string, method = "GET", ip: string | null = "10.0.0.1") => policyFor(rules, { host, path, method, ip });

  test("first match wins, in order; then the default policy", () => {
    expect(at("app.example.com", "/api/health")).toEqual({ kind: "bypass" });
    expect(at("app.example.com", "/api/health/deep")).toEqual({ kind: "bypass" });
    expect(at("app.example.com", "/api/healthz")).toEqual({ kind: "signed_in" });
    expect(at("app.example.com", "/api/health", "POST")).toEqual({ kind: "signed_in" });
    expect(at("example.com", "/api/health")).toEqual({ kind: "signed_in" });
    expect(at("photos.example.com", "/")).toMatchObject({ kind: "restricted", users: new Set(["alice", "bob"]) });
    expect(at("other.example.org", "/")).toEqual({ kind: "deny" });
  });

  test("networks match the client address", () => {
    expect(at("app.example.com", "/admin", "GET", "192.168.1.20")).toMatchObject({ kind: "restricted", roles: new Set(["admin"]) });
    expect(at("app.example.com", "/admin", "GET", "10.0.0.1")).toEqual({ kind: "signed_in" });
    expect(at("app.example.com", "/admin", "GET", null)).toEqual({ kind: "signed_in" });
  });

  test("paths are decoded once and resolved; the broad form drops ;params and case; bad input is undefined", () => {
    expect(canonicalPath("/api/health/../../admin")).toEqual({ exact: "/admin", canonical: false, broad: [] });
    expect(canonicalPath("/%61dmin")).toEqual({ exact: "/admin", canonical: true, broad: [] });
    expect(canonicalPath("/api/health/%2e%2e/%2e%2e/admin")).toEqual({ exact: "/admin", canonical: false, broad: [] });
    expect(canonicalPath("/private/%252e%252e/api/health")).toEqual({ exact: "/private/%2e%2e/api/health", canonical: false, broad: [] });
    expect(canonicalPath("/api/health/..;/..;/Private")).toEqual({ exact: "/api/health/..;/..;/Private", canonical: false, broad: ["/api/health/..;/..;/private", "/private"] });
    expect(canonicalPath("/Admin/..%3b")).toEqual({ exact: "/Admin/..;", canonical: false, broad: ["/admin/..;", "/"] });
    expect(canonicalPath("/public/%3f/..%2f..%2fprivate/s")?.exact).toBe("/private/s");
    expect(canonicalPath("//admin")).toEqual({ exact: "//admin", canonical: false, broad: ["/admin"] });
    expect(canonicalPath("/%E0%A4%A")).toBeUndefined();
    expect(canonicalPath("/a%5c..%5cadmin")).toBeUndefined();
    expect(canonicalPath("/a/%ff")).toBeUndefined();
    expect(canonicalPath("/a/%00")).toBeUndefined();
    expect(canonicalPath("/plain/path")).toEqual({ exact: "/plain/path", canonical: true, broad: [] });
  });

  const bad: [string, string][] = [
    ["[[rule]]\npolicy = \"alow\"", 'rule 1: policy must be "bypass", "signed_in" or "deny"'],
    ['[[rule]]\nname = "x"\npolicy = "bypass"\nroles = ["admin"]', 'rule 1 ("x"): roles and users go with no policy'],
    ['[[rule]]\nname = "family"\nroles = ["Family"]', 'rule 1 ("family"): role "Family" is not a role name: roles are 1-32 characters of a-z, 0-9, \'_\' or \'-\', as the API stores them (write "family")'],
    ['[[rule]]\npolicy = "deny"\n[[rule]]\nname = "lan"\nnetworks = ["10.0.0.0/33"]\npolicy = "bypass"', 'rule 2 ("lan"): network "10.0.0.0/33"'],
    ['[[rule]]\npaths = ["admin"]\npolicy = "deny"', 'rule 1: path "admin" must start with /'],
    ['[[rule]]\nhosts = ["exa mple.com"]\npolicy = "deny"', 'rule 1: host "exa mple.com"'],
    ['[[rule]]\npolicy = "deny"\nhost = ["a.example.com"]', 'rule 1: unknown key "host"'],
    ['[[rule]]\nmethods = []\npolicy = "deny"', "rule 1: methods must be a non-empty list of strings"],
    ['default_policy = "maybe"', "default_policy: policy must be"],
    ["rules = 1", 'unknown key "rules"'],
    ["[[rule]\n", "not valid TOML"],
    // A rule that says nothing of who may pass is a mistake, never "signed in" by default (fail closed).
    ['[[rule]]\nname = "empty"\nhosts = ["a.example.com"]', 'rule 1 ("empty"): policy must be "bypass", "signed_in" or "deny" (or give roles / users), not undefined'],
    ['[[rule]]\nname = "vault"\nrequire = "passkeys"', 'rule 1 ("vault"): require must be "passkey", not "passkeys"'],
    ['[[rule]]\nrequire = ["passkey"]', 'rule 1: require must be "passkey", not ["passkey"]'],
    ['[[rule]]\nrequire = true', 'rule 1: require must be "passkey", not true'],
    ['[[rule]]\npolicy = "bypass"\nrequire = "passkey"', 'rule 1: require = "passkey" goes with signed_in, roles or users, not policy = "bypass"'],
    ['[[rule]]\npolicy = "deny"\nrequire = "passkey"', 'rule 1: require = "passkey" goes with signed_in, roles or users, not policy = "deny"'],
  ];
  for (const [text, message] of bad)
    test(`a bad file is a configuration error naming the rule: ${message}`, () => {
      let error: unknown;
      try {
        parseAccessRules(text, "/etc/latchkey/rules.toml");
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toStartWith("ACCESS_RULES_FILE=/etc/latchkey/rules.toml: ");
      expect((error as Error).message).toContain(message);
    });
});

describe("ACCESS_RULES_FILE, read to the letter", () => {
  const one = (rule: string) => parseAccessRules(`[[rule]]\n${rule}`, "r.toml").rules[0]!;
  const refused = (text: string) => {
    try {
      parseAccessRules(text, "r.toml");
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error(`accepted: ${text}`);
  };

  test("no rules file, or an empty one: every request needs a signed-in user", () => {
    expect(policyFor(undefined, { host: "a.example.com", path: "/", method: "GET", ip: null })).toEqual({ kind: "signed_in" });
    const empty = parseAccessRules("", "r.toml");
    expect(empty).toEqual({ rules: [], defaultPolicy: { kind: "signed_in" }, foldsCase: false });
    expect(loadAccessRules(undefined)).toBeUndefined();
  });

  test("foldsCase: set when a rule's path has capitals, not for lower-case paths, hosts or rules without paths", () => {
    expect(parseAccessRules('[[rule]]\npaths = ["/Admin"]\npolicy = "deny"', "r.toml").foldsCase).toBe(true);
    expect(parseAccessRules('[[rule]]\npaths = ["/a", "/B"]\npolicy = "deny"', "r.toml").foldsCase).toBe(true);
    expect(parseAccessRules('[[rule]]\npaths = ["/admin"]\npolicy = "deny"\n\n[[rule]]\nhosts = ["App.example.com"]\npolicy = "deny"', "r.toml").foldsCase).toBe(false);
    expect(parseAccessRules('[[rule]]\nmethods = ["POST"]\npolicy = "deny"', "r.toml").foldsCase).toBe(false);
  });

  test("lists are trimmed, hosts lower-cased, methods upper-cased; a rule without a name is named by its place", () => {
    const rule = one('hosts = [" A.Example.COM "]\npaths = [" /x "]\nmethods = ["get"]\nroles = [" admin "]');
    expect(rule).toEqual({ name: "rule 1", hosts: ["a.example.com"], paths: ["/x"], foldedPaths: ["/x"], methods: new Set(["GET"]), networks: undefined, policy: { kind: "restricted", roles: new Set(["admin"]), users: new Set() } });
    expect(one('users = ["Bob"]\npolicy = "signed_in"').policy).toEqual({ kind: "restricted", roles: new Set(), users: new Set(["bob"]) });
    expect(one('name = "n"\npolicy = "bypass"')).toMatchObject({ name: "n", hosts: undefined, paths: undefined, methods: undefined });
  });

  test('require = "passkey" marks the rule\'s policy, with signed_in, roles, users or scopes; without it nothing is required', () => {
    expect(one('require = "passkey"').policy).toEqual({ kind: "signed_in", passkey: true });
    expect(one('policy = "signed_in"\nrequire = "passkey"').policy).toEqual({ kind: "signed_in", passkey: true });
    expect(one('roles = ["admin"]\nrequire = "passkey"').policy).toEqual({ kind: "restricted", roles: new Set(["admin"]), users: new Set(), passkey: true });
    expect(one('users = ["Bob"]\nrequire = "passkey"').policy).toEqual({ kind: "restricted", roles: new Set(), users: new Set(["bob"]), passkey: true });
    expect(one('scopes = ["s"]\nrequire = "passkey"').policy).toEqual({ kind: "signed_in", scopes: new Set(["s"]), passkey: true });
    expect(one('policy = "signed_in"').policy).toEqual({ kind: "signed_in" });
  });

  test("host names: labels of one character and more, *.domain and IPv4 addresses; nothing else", () => {
    for (const host of ["a.example.com", "x", "a-b.c", "*.example.com", "192.168.1.10", "*.a"]) expect(one(`hosts = ["${host}"]\npolicy = "deny"`).hosts).toEqual([host]);
    for (const host of ["-a.example.com", "a-.example.com", "example..com", ".example.com", "*.", "a.*.com", "*example.com", "exa_mple.com", "a.example.com."])
      expect(refused(`[[rule]]\nhosts = ["${host}"]\npolicy = "deny"`)).toContain(`host ${JSON.stringify(host)} must be a host name or *.domain`);
  });

  test("every malformed rule is refused, naming the rule", () => {
    const cases: [string, string][] = [
      ['[[rule]]\nroles = ["admin", ""]', "rule 1: roles must be a non-empty list of strings"],
      ['[[rule]]\nroles = ["admin", "  "]', "rule 1: roles must be a non-empty list of strings"],
      ['[[rule]]\nroles = ["admin", 1]', "rule 1: roles must be a non-empty list of strings"],
      ['[[rule]]\nroles = "admin"', "rule 1: roles must be a non-empty list of strings"],
      ['[[rule]]\nusers = ["a"]\npolicy = "deny"', 'not policy = "deny"'],
      ["rule = 1", "rule must be an array of tables: write [[rule]]"],
      ["rule = [1]", "rule 1: must be a table"],
      ["rule = [[1]]", "rule 1: must be a table"],
      ['rule = ["x"]', "rule 1: must be a table"],
      ['[[rule]]\nname = ""\nfoo = 1', "rule 1: unknown key"],
      ['[[rule]]\nname = 7\nfoo = 1', "rule 1: unknown key"],
      ['[[rule]]\nmethods = ["G3T"]\npolicy = "deny"', 'method "G3T" is not an HTTP method'],
      [`[[rule]]\nmethods = ["${"A".repeat(21)}"]\npolicy = "deny"`, "is not an HTTP method"],
    ];
    for (const [text, message] of cases) expect({ text, message: refused(text) }).toEqual({ text, message: expect.stringContaining(message) });
    expect(refused('[[rule]]\nname = "n"\nfoo = 1')).toBe('ACCESS_RULES_FILE=r.toml: rule 1 ("n"): unknown key "foo"');
    expect(refused("rule = [1]")).toBe("ACCESS_RULES_FILE=r.toml: rule 1: must be a table");
  });

  test("methods up to 20 letters; a wildcard host covers its subdomains, not the domain or look-alikes", () => {
    expect(one(`methods = ["${"A".repeat(20)}"]\npolicy = "deny"`).methods).toEqual(new Set(["A".repeat(20)]));
    const rules = parseAccessRules('[[rule]]\nhosts = ["*.example.com"]\npolicy = "bypass"\n[[rule]]\nhosts = ["one.example.org"]\npolicy = "bypass"', "r.toml");
    const at = (host: string) => policyFor(rules, { host, path: "/", method: "GET", ip: null }).kind;
    expect([at("a.example.com"), at("a.b.example.com"), at("example.com"), at("evilexample.com"), at(".example.com"), at("one.example.org"), at("two.example.org")]).toEqual([
      "bypass",
      "bypass",
      "signed_in",
      "signed_in",
      "signed_in",
      "bypass",
      "signed_in",
    ]);
  });

  test("scopes: with no policy or signed_in, a signed-in policy limited to them; with another policy, an error", () => {
    expect(one('scopes = ["backup:write"]').policy).toEqual({ kind: "signed_in", scopes: new Set(["backup:write"]) });
    expect(one('scopes = ["s"]\npolicy = "signed_in"').policy).toEqual({ kind: "signed_in", scopes: new Set(["s"]) });
    expect(refused('[[rule]]\nscopes = ["s"]\npolicy = "bypass"')).toBe('ACCESS_RULES_FILE=r.toml: rule 1: scopes go with no policy (or policy = "signed_in"), not policy = "bypass"');
  });

  test("an exact host is that name only; any of a rule's paths matches", () => {
    const rules = parseAccessRules('[[rule]]\nhosts = ["one.example.org"]\npaths = ["/a", "/b"]\npolicy = "deny"', "r.toml");
    const at = (host: string, path: string) => policyFor(rules, { host, path, method: "GET", ip: null }).kind;
    expect([at("one.example.org", "/a"), at("one.example.org", "/b/c"), at("xone.example.org", "/a"), at("one.example.org", "/c")]).toEqual(["deny", "deny", "signed_in", "signed_in"]);
  });

  test("a rules file that cannot be read is a configuration error naming it", () => {
    expect(() => loadAccessRules("/nonexistent/rules.toml")).toThrow(ConfigError);
    expect(() => loadAccessRules("/nonexistent/rules.toml")).toThrow(/^ACCESS_RULES_FILE=\/nonexistent\/rules\.toml /);
    const file = join(tmpdir(), `latchkey-rules-${process.pid}.toml`);
    writeFileSync(file, 'default_policy = "deny"');
    expect(loadAccessRules(file)).toEqual({ rules: [], defaultPolicy: { kind: "deny" }, foldsCase: false });
  });
});
