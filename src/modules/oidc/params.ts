/** What the provider's browser-facing endpoints share: their parameters, redirects with a query, the pages' MACs. */
import { hmacBase64url } from "../../lib/crypto";
import { CONTROL_CHARACTER } from "../../http/schema";

export const OIDC_PREFIX = "/oidc";

export type Params = Record<string, string | undefined>;

/** A request's parameters, and those that cannot be attributed (given twice, not text, or holding a control character). */
export interface RequestParams {
  params: Params;
  /** RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once." */
  problems: { name: string; message: string }[];
}

/**
 * The parameters of a query and, for POST, of a form body. Read from the URL itself (the framework's query
 * object keeps only the last of a repeated parameter); the form parser keeps a repeated field as a list. A name
 * in both the query and the body counts as given twice. A parameter with a problem is left out of `params`; the
 * others are all read.
 */
export function requestParams(url: string, body?: unknown): RequestParams {
  const given = new Map<string, unknown[]>();
  const add = (name: string, value: unknown) => given.set(name, [...(given.get(name) ?? []), ...(Array.isArray(value) ? value : [value])]);
  for (const [name, value] of new URL(url).searchParams) add(name, value);
  if (body && typeof body === "object") for (const [name, value] of Object.entries(body)) add(name, value);
  const params: Params = {};
  const problems: RequestParams["problems"] = [];
  for (const [name, values] of given) {
    const [value] = values;
    // A control character is refused, not stored (PostgreSQL refuses NUL in text: issue 22).
    if (values.length === 1 && typeof value === "string" && !CONTROL_CHARACTER.test(value)) params[name] = value;
    else
      problems.push({
        name,
        message: values.length > 1 ? `${name} was given more than once.` : typeof value === "string" ? `${name} holds a control character.` : `${name} is not text.`,
      });
  }
  return { params, problems };
}

/** `uri` with `params` added to its query (kept as registered otherwise: custom schemes included). */
export function withParams(uri: string, params: Record<string, string | undefined>): string {
  const url = new URL(uri);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
  return url.href;
}

/** The pages' MAC of `value` for `purpose` (CSRF tokens, re-authentication stamps), under the pages' key. */
export const pageMac = (pageKey: Uint8Array) => (purpose: string, value: string) => hmacBase64url(pageKey, `${purpose}|${value}`);
