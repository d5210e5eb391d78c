import { readFileSync } from "node:fs";
import { unreadable } from "../../lib/process-user";
import { configRoleProblem, normalizeUsername } from "../../lib/names";
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
 *   scopes = ["backup:write"]             # API keys limited to scopes pass only where a rule (or ?scopes=) names one
 *   require = "passkey"                   # the session must have been made with a passkey (amr "hwk"); API keys never pass
 *                                         # (alone: signed in with a passkey; or with roles / users / scopes)
 */
export type Policy =
  | { kind: "bypass" }
  | { kind: "deny" }
  | { kind: "signed_in"; scopes?: ReadonlySet<string>; passkey?: true }
  | { kind: "restricted"; roles: ReadonlySet<string>; users: ReadonlySet<string>; scopes?: ReadonlySet<string>; passkey?: true };

export interface AccessRule {
  name: string;
  hosts: readonly string[] | undefined;
  paths: readonly string[] | undefined;
  /** `paths` lower-cased, for the broad form of a request's path (paths.ts). */
  foldedPaths: readonly string[] | undefined;
  methods: ReadonlySet<string> | undefined;
  networks: Networks | undefined;
  policy: Policy;
}

export interface AccessRules {
  rules: readonly AccessRule[];
  defaultPolicy: Policy;
  /**
   * A rule's path has capitals (`/Admin`): every request's path is then also read folded, so that the rule holds
   * for `/admin` too, which has no broad reading of its own (decide.ts).
   */
  foldsCase: boolean;
}

/** What a rule is matched against: the proxied request, and the client's address. */
export interface ProxiedRequest {
  /** Lower-case host name without port; "" when unknown. */
  host: string;
  /** Decoded once, dot segments resolved (paths.ts). */
  path: string;
  method: string;
  /** The client's address, or a function that finds it: only a rule with `networks` that matches otherwise asks. */
  ip: string | null | (() => string | null);
  /**
   * `path` is the broad form (lower-case, `;params` dropped): rule paths are compared lower-cased; and false when
   * the raw path was not canonical: a bypass rule does not apply to it. Both default to the plain comparison.
   */
  broad?: boolean;
  canonical?: boolean;
}

const SIGNED_IN: Policy = { kind: "signed_in" };
const RULE_KEYS = new Set(["name", "hosts", "paths", "methods", "networks", "policy", "roles", "users", "scopes", "require"]);

function stringList(rule: Record<string, unknown>, key: string, problem: (text: string) => ConfigError): string[] | undefined {
  const raw = rule[key];
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw) || raw.length === 0 || raw.some((item) => typeof item !== "string" || item.trim() === ""))
    throw problem(`${key} must be a non-empty list of strings`);
  return raw.map((item: string) => item.trim());
}

function policyOf(raw: unknown, roles: string[] | undefined, users: string[] | undefined, problem: (text: string) => ConfigError, scopeList?: string[]): Policy {
  const scopes = scopeList && { scopes: new Set(scopeList) };
  if (roles || users) {
    if (raw !== undefined && raw !== "signed_in") throw problem(`roles and users go with no policy (or policy = "signed_in"), not policy = ${JSON.stringify(raw)}`);
    return { kind: "restricted", roles: new Set(roles ?? []), users: new Set((users ?? []).map(normalizeUsername)), ...scopes };
  }
  if (scopes && raw !== undefined && raw !== "signed_in") throw problem(`scopes go with no policy (or policy = "signed_in"), not policy = ${JSON.stringify(raw)}`);
  if (scopes) return { kind: "signed_in", ...scopes };
  if (raw === "bypass" || raw === "deny" || raw === "signed_in") return { kind: raw };
  throw problem(`policy must be "bypass", "signed_in" or "deny" (or give roles / users), not ${JSON.stringify(raw)}`);
}

/**
 * `require = "passkey"`: the rule admits only a session made with a passkey (RFC 8176 amr `hwk`). Anything else
 * is a mistake that stops the start (fail closed: an unknown requirement is never ignored), and so is a
 * requirement on a rule that admits everyone or no one.
 */
function withRequirement(policy: Policy, raw: unknown, problem: (text: string) => ConfigError): Policy {
  if (raw === undefined) return policy;
  if (raw !== "passkey") throw problem(`require must be "passkey", not ${JSON.stringify(raw)}`);
  if (policy.kind === "bypass" || policy.kind === "deny") throw problem(`require = "passkey" goes with signed_in, roles or users, not policy = "${policy.kind}"`);
  return { ...policy, passkey: true };
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
    // (Mutation testing: TOML has no null, so `raw === null` is an equivalent mutant, kept for the types.)
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
    const roles = stringList(rule, "roles", problem);
    for (const role of roles ?? []) {
      const roleProblem = configRoleProblem(role);
      if (roleProblem) throw problem(roleProblem);
    }
    // `require` alone means signed in, with a passkey.
    const policyName = rule.policy === undefined && rule.require !== undefined ? "signed_in" : rule.policy;
    const policy = withRequirement(policyOf(policyName, roles, stringList(rule, "users", problem), problem, stringList(rule, "scopes", problem)), rule.require, problem);
    const foldedPaths = paths?.map((path) => path.toLowerCase());
    return { name: typeof rule.name === "string" ? rule.name : `rule ${index + 1}`, hosts, paths, foldedPaths, methods: methods && new Set(methods), networks, policy };
  });
  return { rules, defaultPolicy, foldsCase: rules.some((rule) => rule.paths?.some((path, i) => path !== rule.foldedPaths![i])) };
}

export function loadAccessRules(file: string | undefined): AccessRules | undefined {
  if (file === undefined) return undefined;
  let text: string;
  try {
    // (Mutation testing: without "utf8" this is a Buffer, which parseAccessRules reads the same: equivalent.)
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`ACCESS_RULES_FILE=${file} ${unreadable(file, error)}`);
  }
  return parseAccessRules(text, file);
}

/** `host` is `pattern`, or for `*.example.com` any subdomain of example.com (compared in place: every request). */
function hostMatches(pattern: string, host: string): boolean {
  if (pattern.charCodeAt(0) !== 42) return host === pattern;
  // "*.example.com": `host` ends with ".example.com" after at least one character.
  const offset = host.length - pattern.length;
  if (offset < 0) return false;
  for (let i = 1; i < pattern.length; i++) if (host.charCodeAt(offset + i) !== pattern.charCodeAt(i)) return false;
  return true;
}

/** `path` is `prefix` or below it: `/api` matches `/api` and `/api/x`, not `/apix` (no string built: every request). */
const pathMatches = (prefix: string, path: string) =>
  path.startsWith(prefix) && (path.length === prefix.length || prefix.endsWith("/") || path.charCodeAt(prefix.length) === 47);

/** Whether one of `patterns` matches `value` (a loop rather than `some` with a new closure per rule and request). */
function some(patterns: readonly string[], matches: (pattern: string, value: string) => boolean, value: string): boolean {
  for (const pattern of patterns) if (matches(pattern, value)) return true;
  return false;
}

/** The policy for a proxied request: the first rule that matches, else the default. */
export function policyFor(rules: AccessRules | undefined, request: ProxiedRequest): Policy {
  if (!rules) return SIGNED_IN;
  for (const rule of rules.rules) {
    if (rule.policy.kind === "bypass" && request.canonical === false) continue;
    if (rule.hosts && !some(rule.hosts, hostMatches, request.host)) continue;
    const paths = request.broad ? rule.foldedPaths : rule.paths;
    if (paths && !some(paths, pathMatches, request.path)) continue;
    if (rule.methods && !rule.methods.has(request.method)) continue;
    if (rule.networks && !inNetworks(typeof request.ip === "function" ? request.ip() : request.ip, rule.networks)) continue;
    return rule.policy;
  }
  return rules.defaultPolicy;
}
