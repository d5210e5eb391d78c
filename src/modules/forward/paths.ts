/**
 * The proxied request's path as the protected app will read it. Apps disagree (Flask and Express decode once and
 * resolve dot-segments, Tomcat drops `;params` first, some fold case or `//`), so forward auth derives two forms
 * and the rules must allow both (OWASP ASVS 4.0 §1.4.1, §5.1; RFC 3986 §5.2.4 for dot-segments):
 *
 * - `exact`: percent-decoded exactly once (a `%3f` or `%23` stays a character of the path: the query was split off
 *   before decoding), then `.` and `..` resolved. `canonical` says whether the raw path was already that, with no
 *   encoded `.` `/` `\` `%`, no `;`, no `//`: only then may a bypass rule apply to it.
 * - `broad`: the other readings, lower-cased with `//` collapsed: the decoded path as it is, and with every
 *   segment's `;params` dropped before dot-segments are resolved (`/..;/` is `..` to Tomcat, while `/x/..;` is a
 *   file named `..;` to Flask). Deny and role rules also see each of these, so they err on the safe side.
 *
 * Undecodable or ambiguous input (bad escapes, invalid UTF-8, a NUL or other control character, a backslash
 * either raw or encoded, a raw `#`) is undefined: the caller refuses it.
 */
export interface CanonicalPath {
  exact: string;
  canonical: boolean;
  /** The broad readings that differ from `exact` (usually none). */
  broad: readonly string[];
}

const NONE: readonly string[] = [];

/** Anything that could make a path mean something else after decoding or resolving: the slow path below. */
const NEEDS_WORK = /[%;A-Z]|\/\.|\/\//;
const UNSAFE_RAW = /[\u0000-\u0020\u007f\\#]/;
const UNSAFE_DECODED = /[\u0000-\u001f\u007f\\]/;
const ENCODED_SPECIAL = /%(2e|2f|5c|25)/i;

/** RFC 3986 §5.2.4 over "/"-separated segments; `collapse` also drops empty segments (`//`). */
function resolveDots(path: string, collapse: boolean): string {
  const segments = path.split("/");
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === ".") continue;
    if (segment === "..") out.pop();
    else if (segment !== "" || !collapse || i === segments.length - 1) out.push(segment);
  }
  const last = segments[segments.length - 1];
  const resolved = `/${out.join("/")}`;
  return (last === "." || last === "..") && !resolved.endsWith("/") ? `${resolved}/` : resolved;
}

/** The two forms of `raw`, a request path without its query (it must start with "/"), or undefined. */
export function canonicalPath(raw: string): CanonicalPath | undefined {
  if (!raw.startsWith("/") || UNSAFE_RAW.test(raw)) return undefined;
  // The common case, checked in one scan: nothing to decode, resolve, drop or fold. (Mutation testing: this fast
  // path, NEEDS_WORK's class and the `includes(";")` below only save work, as the slow path gives a plain path
  // the same readings, and a path without ";" its first broad reading again: equivalent mutants.)
  if (!NEEDS_WORK.test(raw)) return { exact: raw, canonical: true, broad: NONE };
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  if (UNSAFE_DECODED.test(decoded)) return undefined;
  const exact = resolveDots(decoded, false);
  const canonical = exact === decoded && !ENCODED_SPECIAL.test(raw) && !decoded.includes(";") && !raw.includes("//");
  const folded = decoded.toLowerCase();
  const broad = new Set([resolveDots(folded, true)]);
  if (folded.includes(";")) broad.add(resolveDots(folded.replace(/;[^/]*/g, ""), true));
  broad.delete(exact);
  return { exact, canonical, broad: broad.size ? [...broad] : NONE };
}
