import { memoized } from "../../lib/memo";
import { canonicalPath, type CanonicalPath } from "./paths";

/**
 * The request a proxy asks about, read by one parser per proxy family, each naming exactly the headers it trusts
 * (the shape of Authelia's per-implementation authz handlers):
 *
 * - nginx `auth_request`: `X-Original-URL` and `X-Original-Method`, set by the location that asks;
 * - Caddy `forward_auth`, Traefik `forwardAuth`: `X-Forwarded-Proto`, `-Host`, `-Uri` and `-Method`, which those
 *   proxies overwrite with their own values.
 *
 * Both proxies pass the client's other headers on to the check, so a client can add the other family's headers.
 * A request carrying headers of both families is therefore refused rather than guessed at (the shipped examples
 * clear the other family's headers, so a well-configured proxy never sends both). Nothing here looks at the peer:
 * the route believes any of it only from a proxy TRUST_PROXY allows.
 */
export type ProxyFamily = "nginx" | "forwarded";

export type ForwardedRequest =
  | {
      ok: true;
      family: ProxyFamily;
      /** The original URL, for the sign-in page's `rd`. */
      url: string;
      method: string;
      /** Lower-case host name without port or trailing dot ([v6] keeps its brackets). */
      host: string;
      path: CanonicalPath;
    }
  | { ok: false; family: ProxyFamily | undefined; reason: string };

const refused = (family: ProxyFamily | undefined, reason: string): ForwardedRequest => ({ ok: false, family, reason });

const HOST = /^([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?\.?|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/i;
const METHOD = /^[A-Za-z]{1,20}$/;

/**
 * A Host (RFC 9110 §7.2: name or [IPv6] and an optional port, 1–65535) as the lower-case name rules match against:
 * `admin.example.com.` and `admin.example.com:443` are `admin.example.com`. Anything else is undefined.
 */
function hostName(raw: string): string | undefined {
  const match = HOST.exec(raw);
  if (!match || match[1]!.includes("..")) return undefined;
  // (Mutation testing: without `!== undefined` a missing port is NaN, neither < 1 nor > 65535: equivalent.)
  if (match[2] !== undefined && (Number(match[2]) < 1 || Number(match[2]) > 65535)) return undefined;
  const name = match[1]!.toLowerCase();
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

/** `hostName`, remembered: the regular expression was a tenth of forward auth's JavaScript (profiled). */
const knownHostName = memoized(1000, hostName);

/** One parsed request from its parts; each family's parser only finds the parts. */
function parsed(family: ProxyFamily, proto: string, authority: string, target: string, rawMethod: string | null): ForwardedRequest {
  const host = knownHostName(authority);
  if (host === undefined) return refused(family, "host");
  if (rawMethod === null || !METHOD.test(rawMethod)) return refused(family, "method");
  // The query starts at the first raw "?": a decoded %3f is part of the path (paths.ts).
  const query = target.indexOf("?");
  const path = canonicalPath(query === -1 ? target : target.slice(0, query));
  if (path === undefined) return refused(family, "path");
  return { ok: true, family, url: `${proto}://${authority}${target}`, method: rawMethod.toUpperCase(), host, path };
}

/** nginx auth_request: `X-Original-URL: <scheme>://<host>[:port]<request_uri>` and `X-Original-Method`. */
function fromNginx(url: string | null, method: string | null): ForwardedRequest {
  // Split by hand, not with URL: WHATWG URL resolves %2e segments and turns "\" into "/", hiding what the app sees.
  // (Mutation testing: exec(null) reads "null", which the pattern refuses too: the guard is equivalent, kept for
  // the types.)
  const match = url === null ? null : /^(https?):\/\/([^/?#@\\]*)(\/[^#]*)?$/i.exec(url);
  if (!match) return refused("nginx", "url");
  return parsed("nginx", match[1]!.toLowerCase(), match[2]!, match[3] ?? "/", method);
}

/** Caddy forward_auth and Traefik forwardAuth: `X-Forwarded-Proto`, `-Host`, `-Uri`, `-Method`. */
function fromForwarded(headers: Headers, host: string | null, uri: string | null, method: string | null): ForwardedRequest {
  if (host === null || uri === null) return refused("forwarded", "url");
  const proto = headers.get("x-forwarded-proto") === "https" ? "https" : "http";
  return parsed("forwarded", proto, host, uri, method);
}

/** The request the proxy asks about, from whichever family's headers are present; both or neither is refused. */
export function forwardedRequest(headers: Headers): ForwardedRequest {
  // Each header read once: this runs on every request of every protected app.
  const originalUrl = headers.get("x-original-url");
  const originalMethod = headers.get("x-original-method");
  const forwardedHost = headers.get("x-forwarded-host");
  const forwardedUri = headers.get("x-forwarded-uri");
  const forwardedMethod = headers.get("x-forwarded-method");
  const nginx = originalUrl !== null || originalMethod !== null;
  const forwarded = forwardedHost !== null || forwardedUri !== null || forwardedMethod !== null;
  if (nginx && forwarded) return refused(undefined, "both X-Original-* and X-Forwarded-Host/-Uri/-Method were sent");
  if (nginx) return fromNginx(originalUrl, originalMethod);
  if (forwarded) return fromForwarded(headers, forwardedHost, forwardedUri, forwardedMethod);
  return refused(undefined, "no X-Original-URL or X-Forwarded-Host/-Uri");
}
