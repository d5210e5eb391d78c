import { readFileSync } from "node:fs";
import { normalizeUsername } from "../../lib/names";
import { ConfigError } from "../../errors";
import { inNetworks, parseNetworks, type Networks } from "../../lib/ip";

/**
 * ACCESS_RULES_FILE: central forward-auth rules in TOML (read with Bun's built-in parser). Ordered rules, first
 * match wins, then `default_policy`:
 *
 *   default_policy = "signed_in"          # or "deny" / "bypass"
 *   [[rule]]
 *   name = "health checks"
 *   hosts = ["*.example.com"]             # exact names or *.domain (any subdomain); omitted = any host
 *   paths = ["/api/health"]               # path prefixes on segment boundaries; omitted = any path
 *   methods = ["GET", "HEAD"]             # omitted = any method
 *   networks = ["192.168.0.0/16"]         # client address (the real one under TRUST_PROXY); omitted = anywhere
 *   policy = "bypass"                     # bypass | signed_in | deny; or give roles / users (any match allows)
 *   roles = ["admin"]
 *   users = ["alice"]
 */
export type Policy =
  | { kind: "bypass" }
  | { kind: "deny" }
  | { kind: "signed_in" }
  | { kind: "restricted"; roles: ReadonlySet<string>; users: ReadonlySet<string> };

export interface AccessRule {
  name: string;
  hosts: readonly string[] | undefined;
  paths: readonly string[] | undefined;
  methods: ReadonlySet<string> | undefined;
  networks: Networks | undefined;
  policy: Policy;
}

export interface AccessRules {
  rules: readonly AccessRule[];
  defaultPolicy: Policy;
}

/** What a rule is matched against: the proxied request, and the client's address. */
export interface ProxiedRequest {
  /** Lower-case host name without port; "" when unknown. */
  host: string;
  /** Decoded, dot segments resolved; "/" when unknown. */
  path: string;
  method: string;
  ip: string | null;
}

const SIGNED_IN: Policy = { kind: "signed_in" };
const RULE_KEYS = new Set(["name", "hosts", "paths", "methods", "networks", "policy", "roles", "users"]);

function stringList(rule: Record<string, unknown>, key: string, problem: (text: string) => ConfigError): string[] | undefined {
  const raw = rule[key];
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw) || raw.length === 0 || raw.some((item) => typeof item !== "string" || item.trim() === ""))
    throw problem(`${key} must be a non-empty list of strings`);
  return raw.map((item: string) => item.trim());
}

function policyOf(raw: unknown, roles: string[] | undefined, users: string[] | undefined, problem: (text: string) => ConfigError): Policy {
  if (roles || users) {
    if (raw !== undefined && raw !== "signed_in") throw problem(`roles and users go with no policy (or policy = "signed_in"), not policy = ${JSON.stringify(raw)}`);
    return { kind: "restricted", roles: new Set(roles ?? []), users: new Set((users ?? []).map(normalizeUsername)) };
  }
  if (raw === "bypass" || raw === "deny" || raw === "signed_in") return { kind: raw };
  throw problem(`policy must be "bypass", "signed_in" or "deny" (or give roles / users), not ${JSON.stringify(raw)}`);
}

/** Parses and checks the rules; every mistake is a ConfigError naming the file and the rule (exit 2 at start). */
export function parseAccessRules(text: string, file: string): AccessRules {
  const fileProblem = (detail: string) => new ConfigError(`ACCESS_RULES_FILE=${file}: ${detail}`);
  let document: Record<string, unknown>;
  try {
    document = Bun.TOML.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw fileProblem(`not valid TOML (${(error as Error).message})`);
  }
  for (const key of Object.keys(document))
    if (key !== "rule" && key !== "default_policy") throw fileProblem(`unknown key ${JSON.stringify(key)} (expected default_policy and [[rule]] tables)`);
  const defaultPolicy = document.default_policy === undefined ? SIGNED_IN : policyOf(document.default_policy, undefined, undefined, (detail) => fileProblem(`default_policy: ${detail}`));
  const rawRules = document.rule ?? [];
  if (!Array.isArray(rawRules)) throw fileProblem("rule must be an array of tables: write [[rule]]");
  const rules = rawRules.map((raw: unknown, index): AccessRule => {
    const rule = (raw ?? {}) as Record<string, unknown>;
    const label = typeof rule.name === "string" && rule.name ? `rule ${index + 1} (${JSON.stringify(rule.name)})` : `rule ${index + 1}`;
    const problem = (detail: string) => fileProblem(`${label}: ${detail}`);
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw problem("must be a table");
    for (const key of Object.keys(rule)) if (!RULE_KEYS.has(key)) throw problem(`unknown key ${JSON.stringify(key)}`);
    const hosts = stringList(rule, "hosts", problem)?.map((host) => host.toLowerCase());
    for (const host of hosts ?? [])
      // Digits are letters here: an IPv4 address is a host name of four numeric labels.
      if (!/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host))
        throw problem(`host ${JSON.stringify(host)} must be a host name or *.domain`);
    const paths = stringList(rule, "paths", problem);
    for (const path of paths ?? []) if (!path.startsWith("/")) throw problem(`path ${JSON.stringify(path)} must start with /`);
    const methods = stringList(rule, "methods", problem)?.map((method) => method.toUpperCase());
    for (const method of methods ?? []) if (!/^[A-Z]{1,20}$/.test(method)) throw problem(`method ${JSON.stringify(method)} is not an HTTP method`);
    const networkList = stringList(rule, "networks", problem);
    for (const network of networkList ?? [])
      if (!parseNetworks([network])) throw problem(`network ${JSON.stringify(network)} must be an address or CIDR, e.g. 192.168.1.0/24`);
    const networks = networkList && parseNetworks(networkList);
    const policy = policyOf(rule.policy, stringList(rule, "roles", problem), stringList(rule, "users", problem), problem);
    return { name: typeof rule.name === "string" ? rule.name : `rule ${index + 1}`, hosts, paths, methods: methods && new Set(methods), networks, policy };
  });
  return { rules, defaultPolicy };
}

export function loadAccessRules(file: string | undefined): AccessRules | undefined {
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`ACCESS_RULES_FILE=${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return parseAccessRules(text, file);
}

const hostMatches = (pattern: string, host: string) =>
  pattern.startsWith("*.") ? host.length > pattern.length - 1 && host.endsWith(pattern.slice(1)) : host === pattern;

const pathMatches = (prefix: string, path: string) =>
  path === prefix || path.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`);

/** The policy for a proxied request: the first rule that matches, else the default. */
export function policyFor(rules: AccessRules | undefined, request: ProxiedRequest): Policy {
  if (!rules) return SIGNED_IN;
  for (const rule of rules.rules) {
    if (rule.hosts && !rule.hosts.some((pattern) => hostMatches(pattern, request.host))) continue;
    if (rule.paths && !rule.paths.some((prefix) => pathMatches(prefix, request.path))) continue;
    if (rule.methods && !rule.methods.has(request.method)) continue;
    if (rule.networks && !inNetworks(request.ip, rule.networks)) continue;
    return rule.policy;
  }
  return rules.defaultPolicy;
}

/**
 * A path as the app will see it: percent-decoded and with dot segments resolved, so /app/%2e%2e/admin or
 * /%61dmin cannot slip past a rule written for /admin. Undecodable input gives undefined (the caller refuses).
 */
export function normalisePath(raw: string): string | undefined {
  const query = raw.search(/[?#]/);
  const path = query === -1 ? raw : raw.slice(0, query);
  if (!path.includes("%") && !path.includes("/.") && !path.includes("//")) return path || "/";
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  if (decoded.includes("\\") || /[\u0000-\u001f]/.test(decoded)) return undefined;
  return new URL(decoded.replace(/\/{2,}/g, "/").replace(/^(?!\/)/, "/"), "http://x").pathname;
}
