import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/errors";
import { canonicalPath } from "../../src/modules/forward/paths";
import { parseAccessRules, policyFor } from "../../src/modules/forward/rules";

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
