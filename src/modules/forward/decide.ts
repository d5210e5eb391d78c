import { madeWithPasskey } from "../../lib/amr";
import { normalizeUsername } from "../../lib/names";
import type { ForwardedRequest } from "./request";
import { policyFor, type AccessRules, type Policy } from "./rules";

/**
 * Forward auth's decision, pure: (parsed request × caller × rules) → verdict, with no HTTP in sight, so the corpus
 * (test/unit/forward-corpus.test.ts) can reach every branch. Fails closed: what cannot be parsed or attributed is
 * denied whenever rules are in force, never given the default policy.
 */
export type Verdict = "bypass" | "allow" | "sign_in" | "forbidden" | "passkey";

/**
 * Who asks: a session's user (`amr`: how the session was made, RFC 8176), or an API key's (`keyId` and `scopes`:
 * a key with scopes is limited to them).
 */
export interface Caller {
  username: string;
  roles: readonly string[];
  amr?: readonly string[];
  keyId?: string;
  scopes?: readonly string[];
}

/** A session made with a passkey (lib/amr.ts); an API key is never one, whatever else it carries: it proves no sign-in. */
const passkeySession = (who: Caller) => who.keyId === undefined && madeWithPasskey(who.amr);

/** `?roles=a,b&users=c&scopes=d` on the forward URL itself (the proxy's configuration, not the client's). */
export interface UrlRule {
  roles: readonly string[];
  users: readonly string[];
  scopes: readonly string[];
}

const DENY: Policy = { kind: "deny" };
const SIGNED_IN: Policy = { kind: "signed_in" };
// (Mutation testing: only `scopes` is read from NO_URL_RULE, in admits, so its roles and users are equivalent
// mutants, and `{}` is too, as namesOne takes a missing list as an empty one; a scope planted in its list would
// admit only keys of that invented scope.)
const NO_URL_RULE: UrlRule = { roles: [], users: [], scopes: [] };

/** The forward URL's own rule, from its query string (everything after the first "?"); undefined without one. */
export function urlRule(url: string): UrlRule | undefined {
  const start = url.indexOf("?");
  if (start === -1) return undefined;
  const query = new URLSearchParams(url.slice(start + 1));
  const list = (name: string) => (query.get(name) ?? "").split(",").map((item) => item.trim()).filter(Boolean);
  const rule = { roles: list("roles"), users: list("users").map(normalizeUsername), scopes: list("scopes") };
  return rule.roles.length || rule.users.length || rule.scopes.length ? rule : undefined;
}

/**
 * The policies a request must pass. Without rules: signed in is enough. With rules, a request that no trusted
 * proxy described, or that cannot be parsed, is denied; otherwise the rules are applied to every reading of its
 * path (paths.ts: the exact one and the broad ones) and all must allow, so a path that apps read in several ways
 * gets the strictest answer.
 */
export function requestPolicies(rules: AccessRules | undefined, request: ForwardedRequest, ip: string | null | (() => string | null)): readonly Policy[] {
  if (rules === undefined) return [SIGNED_IN];
  if (!request.ok) return [DENY];
  const { host, method, path } = request;
  const exact = policyFor(rules, { host, method, ip, path: path.exact, canonical: path.canonical });
  // A rule written with capitals holds for the folded path as well: one more broad reading (rules.ts foldsCase).
  const readings = rules.foldsCase ? [...path.broad, path.exact.toLowerCase()] : path.broad;
  // (Mutation testing: this fast path only saves work: without it the loop over no broad reading adds nothing.
  // An equivalent mutant.)
  if (readings.length === 0) return [exact];
  const policies = [exact];
  for (const reading of readings) {
    const policy = policyFor(rules, { host, method, ip, path: reading, broad: true, canonical: path.canonical });
    if (!policies.includes(policy)) policies.push(policy);
  }
  return policies;
}

const namesOne = (scopes: readonly string[], named: ReadonlySet<string> | readonly string[] | undefined) =>
  named !== undefined && scopes.some((scope) => ("has" in named ? named.has(scope) : named.includes(scope)));

function admits(policy: Policy, who: Caller, url: UrlRule): boolean {
  // (Mutation testing: decide returns "forbidden" on a deny before it asks admits, so the deny half of this line
  // and its answer for one are equivalent mutants; the line stays so that admits is right on its own.)
  if (policy.kind === "bypass" || policy.kind === "deny") return policy.kind === "bypass";
  if (policy.kind === "restricted" && !who.roles.some((role) => policy.roles.has(role)) && !policy.users.has(who.username)) return false;
  // A key limited to scopes opens only what names one of them (the URL or the matching rule); others are full keys.
  if (who.keyId !== undefined && who.scopes && who.scopes.length > 0)
    return namesOne(who.scopes, url.scopes) || namesOne(who.scopes, policy.scopes);
  return true;
}

/**
 * The verdict. `who` undefined means no credential was looked at (or none was valid): the route asks first
 * without one, and looks the caller up only when the answer is `sign_in`. `passkey`: the caller is admitted but a
 * rule requires a passkey that its session was not made with (the passkey step-up, then again).
 */
export function decide(policies: readonly Policy[], who: Caller | undefined, url: UrlRule | undefined): Verdict {
  let bypass = true;
  for (const policy of policies) {
    if (policy.kind === "deny") return "forbidden";
    if (policy.kind !== "bypass") bypass = false;
  }
  if (bypass) return "bypass";
  if (!who) return "sign_in";
  const rule = url ?? NO_URL_RULE;
  if (url && (url.roles.length || url.users.length) && !who.roles.some((role) => url.roles.includes(role)) && !url.users.includes(who.username))
    return "forbidden";
  let passkey = false;
  for (const policy of policies) {
    if (!admits(policy, who, rule)) return "forbidden";
    if ("passkey" in policy) passkey = true;
  }
  return passkey && !passkeySession(who) ? "passkey" : "allow";
}
