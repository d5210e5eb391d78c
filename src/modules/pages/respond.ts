import type { ApiError } from "../../errors";
import { PAGE_CSP } from "./layout";
import { NO_STORE, noStore } from "../../http/cache";
import { CONTROL_IN_FREE_TEXT } from "../../http/schema";

type ResponseHeaders = Record<string, string | number | string[] | undefined>;
export type PageSet = { status?: number | string; headers: ResponseHeaders };

/**
 * The headers of an HTML answer: the pages' own CSP, never cached (every page is about one browser), and
 * same-origin rather than the API's no-referrer: under no-referrer a browser sends `Origin: null` with the pages'
 * own form posts, which the origin check must refuse. same-origin still tells other sites nothing.
 */
export const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": PAGE_CSP,
  ...NO_STORE,
  "referrer-policy": "same-origin",
} as const;

/** An HTML answer with PAGE_HEADERS. */
export function htmlPage(set: PageSet, status: number, html: string): string {
  set.status = status;
  Object.assign(set.headers, PAGE_HEADERS);
  return html;
}

/** A redirect (303 after a form by default: the browser follows it with GET). */
export function seeOther(set: PageSet, location: string, status = 303): string {
  set.status = status;
  set.headers["location"] = location;
  noStore(set.headers);
  return "";
}

/**
 * A text field of a submitted form; anything else (absent, repeated into an array, or holding a control character
 * other than a tab or a line break, which PostgreSQL may refuse: issue 22) is undefined.
 */
export function field(body: unknown, name: string): string | undefined {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  return typeof value === "string" && !CONTROL_IN_FREE_TEXT.test(value) ? value : undefined;
}

/** A 429's wait in seconds, passed on as the page's own Retry-After (a page shows the number too). */
export function passRetryAfter(set: PageSet, error: ApiError): string {
  const seconds = error.headers?.["Retry-After"] ?? "60";
  set.headers["retry-after"] = seconds;
  return seconds;
}
