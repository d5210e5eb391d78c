/**
 * The forward-auth corpus, shared by the pure test (test/unit/forward-corpus.test.ts) and the real proxies
 * (test/e2e/forward-corpus.test.ts): the rules, request paths an attacker would try with what each must get, and
 * a model of how common app servers read a path, to check that what forward auth lets through is what it judged.
 */

/** Path rules only (the proxies' hosts are loopback addresses); hosts and scopes have their own cases in the unit test. */
export const CORPUS_RULES = `
default_policy = "signed_in"

[[rule]]
name = "health checks"
paths = ["/api/health"]
methods = ["GET", "HEAD"]
policy = "bypass"

[[rule]]
name = "admins only"
paths = ["/admin-area"]
roles = ["admin"]

[[rule]]
name = "closed"
paths = ["/blocked"]
policy = "deny"

[[rule]]
name = "the admin host"
hosts = ["admin.example.com"]
roles = ["admin"]

[[rule]]
name = "backups, for keys with the scope"
hosts = ["backup.example.com"]
scopes = ["backup:write"]
`;

/**
 * What a path must get, as [anonymous, signed in without roles, admin]: P(ublic, the bypass), S(igned in is
 * enough), A(dmins only), D(enied), X (cannot be parsed: denied to everyone, never the default).
 */
export type PathClass = "P" | "S" | "A" | "D" | "X";

export const CORPUS_PATHS: [string, PathClass][] = [
  // The bypass, only as written.
  ["/api/health", "P"],
  ["/api/health/", "P"],
  ["/api/health/deep", "P"],
  ["/api/health?x=1", "P"],
  ["/api/health?../../admin-area", "P"],
  ["/api/health/%20x", "P"],
  ["/api/health/caf%C3%A9", "P"],
  ["/api/%68ealth", "P"],
  // Near the bypass, or aiming past it: signed in is needed.
  ["/", "S"],
  ["/private", "S"],
  ["/private/page?x=1", "S"],
  ["/api/healthz", "S"],
  ["/API/health", "S"],
  ["/Api/Health/x", "S"],
  ["/api/health/..", "S"],
  ["/api/health/.", "S"],
  ["/api/health/./x", "S"],
  ["/api/health/%2e", "S"],
  ["/private/..%2fapi/health", "S"],
  ["/private/..%2Fapi/health", "S"],
  ["/private/%2e%2e/api/health", "S"],
  ["/private/%252e%252e/api/health", "S"],
  ["/private/%2e%2e%2fapi%2fhealth", "S"],
  ["/api/health/..;/..;/private", "S"],
  ["/api/health/..%3b/..%3b/private", "S"],
  ["/public/%3f/..%2f..%2fprivate/s", "S"],
  ["/api/health%3f/../../private", "S"],
  ["/api/health%23/../../private", "S"],
  ["/api/health%2f..%2f..%2fprivate", "S"],
  ["/api/health/%2e%2e/%2e%2e/private", "S"],
  ["/api/health/%2E%2E/%2E%2E/private", "S"],
  ["/api/health/.%2e/.%2e/private", "S"],
  ["//api/health", "S"],
  ["/api//health", "S"],
  ["/api/health;x=1", "S"],
  ["/api/health;/../private", "S"],
  ["/api/health%3bx", "S"],
  ["/api/health%2fx", "S"],
  ["/api/health/%252e%252e/%252e%252e/private", "S"],
  ["/api/health%25", "S"],
  ["/./api/health/../private", "S"],
  ["/private/./x", "S"],
  ["/private%2f..%2f..%2fapi/health", "S"],
  ["/x/..", "S"],
  ["/..", "S"],
  ["/../../api/health", "S"],
  // Admins only, however it is spelled.
  ["/admin-area", "A"],
  ["/admin-area/", "A"],
  ["/admin-area/x", "A"],
  ["/admin-area?x=1", "A"],
  ["/ADMIN-AREA/x", "A"],
  ["/Admin-Area", "A"],
  ["/admin-area;jsessionid=1/x", "A"],
  ["/admin-area;/x", "A"],
  ["/admin-area%3bx/y", "A"],
  ["/x/../admin-area", "A"],
  ["/x/%2e%2e/admin-area", "A"],
  ["/x/..%2fadmin-area", "A"],
  ["/x/%2e%2e%2fadmin-area", "A"],
  ["/api/health/../../admin-area", "A"],
  ["/api/health/..;/..;/admin-area", "A"],
  ["/api/health;/../../admin-area", "A"],
  ["/api/health/%2e%2e/%2e%2e/admin-area", "A"],
  ["/api/health%2f..%2f..%2fadmin-area", "A"],
  ["/public/%3f/..%2f..%2fadmin-area/s", "A"],
  ["/public/%23/..%2f..%2fadmin-area/s", "A"],
  ["//admin-area", "A"],
  ["///admin-area/x", "A"],
  ["/./admin-area", "A"],
  ["/%61dmin-area", "A"],
  ["/%41DMIN-AREA", "A"],
  ["/admin%2darea", "A"],
  ["/admin-area/%3f", "A"],
  ["/admin-area/%23/x", "A"],
  ["/admin-area/%2e", "A"],
  ["/admin-area/..;/admin-area", "A"],
  ["/admin-area%2f", "A"],
  ["/admin-area/x/..", "A"],
  // Closed to everyone.
  ["/blocked", "D"],
  ["/blocked/x", "D"],
  ["/BLOCKED", "D"],
  ["/Blocked/X", "D"],
  ["/x/../blocked", "D"],
  ["/blocked;a=b", "D"],
  ["/blocked;a=b/x", "D"],
  ["/api/health/..%2f..%2fblocked", "D"],
  ["/api/health/%2e%2e/%2e%2e/blocked", "D"],
  ["/api/health/..;/..;/blocked", "D"],
  ["/%62locked", "D"],
  ["//blocked", "D"],
  ["/public/%3f/..%2f..%2fblocked", "D"],
  // Cannot be parsed: denied to everyone, never the default policy.
  ["/admin-area/%ff", "X"],
  ["/admin-area/%5c", "X"],
  ["/admin-area/%5C..%5Cx", "X"],
  ["/admin-area/%00", "X"],
  ["/x%5c..%5cadmin-area", "X"],
  ["/api/health/%ff", "X"],
  ["/api/health/%00", "X"],
  ["/api/health%5c..%5c..%5cadmin-area", "X"],
  ["/private/%", "X"],
  ["/private/%zz", "X"],
  ["/private/%e0%a4%a", "X"],
  ["/private/%c0%ae%c0%ae/admin-area", "X"],
  ["/private/x%0a", "X"],
  ["/private/x%0d%0aSet-Cookie:%20a=b", "X"],
  ["/private/%7f", "X"],
  ["/private/%1b", "X"],
];

/** Whether `path` is `prefix` or below it, on a segment boundary. */
export function inside(prefix: string, path: string): boolean {
  return path === prefix || path.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`);
}

/** RFC 3986 §5.2.4 remove_dot_segments, written out plainly (an independent model of what apps do). */
function removeDots(path: string): string {
  const output: string[] = [];
  const input = path.split("/").slice(1);
  input.forEach((segment, index) => {
    const last = index === input.length - 1;
    if (segment === "." || segment === "..") {
      if (segment === ".." && output.length) output.pop();
      if (last) output.push("");
    } else output.push(segment);
  });
  return `/${output.join("/")}`;
}

/**
 * The paths common app servers would serve for a raw request path (without its query): decoded once then dots
 * resolved (Flask, Express static), the same with `//` collapsed (nginx merge_slashes, many routers), and Tomcat's
 * (`;params` dropped from each raw segment first). Undefined when the app would refuse the path itself.
 */
export function appReadings(rawPath: string): string[] | undefined {
  const decode = (raw: string) => {
    try {
      return decodeURIComponent(raw);
    } catch {
      return undefined;
    }
  };
  const once = decode(rawPath);
  const tomcat = decode(rawPath.replace(/;[^/]*/g, ""));
  if (once === undefined || tomcat === undefined) return undefined;
  return [removeDots(once), removeDots(once.replace(/\/{2,}/g, "/")), removeDots(tomcat), removeDots(tomcat.replace(/\/{2,}/g, "/"))];
}
