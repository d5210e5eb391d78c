/** A browser without JavaScript driving the pages in-process (app.handle): a cookie jar, GET, and form posts. */
import { decodeBase32IgnorePadding } from "@oslojs/encoding";
import { generateTOTP } from "@oslojs/otp";
import { cookieJar } from "./pages";

interface Handler {
  handle(request: Request): Promise<Response>;
}

export function inProcessBrowser(app: Handler, origin: string) {
  const jar = cookieJar();
  const send = async (path: string, init: RequestInit = {}) => {
    const url = new URL(path, origin);
    const headers = new Headers(init.headers);
    headers.set("cookie", jar.header());
    headers.set("host", url.host);
    const response = await app.handle(new Request(url.href, { ...init, headers, redirect: "manual" }));
    jar.take(response);
    return response;
  };
  return {
    get: async (path: string) => {
      const response = await send(path);
      return { status: response.status, location: response.headers.get("location"), headers: response.headers, html: await response.text() };
    },
    post: (path: string, fields: Record<string, string>, headers: Record<string, string> = { origin }) =>
      send(path, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams(fields) }),
  };
}

export type InProcessBrowser = ReturnType<typeof inProcessBrowser>;

export interface PostForm {
  action: string;
  csrf: string;
  /** Hidden fields as the page wrote them; typed fields from `typed` (else "x"); the first button's name=value. */
  fields: Record<string, string>;
}

const unescape = (text: string) => text.replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&amp;", "&");

/** The post forms of a page that carry a CSRF token. */
export function postForms(html: string, typed: Record<string, string> = {}): PostForm[] {
  const forms: PostForm[] = [];
  for (const [, action, inner] of html.matchAll(/<form method="post" action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)) {
    const fields: Record<string, string> = {};
    for (const [tag] of inner!.matchAll(/<(?:input|textarea|select|button)\b[^>]*>/g)) {
      const name = /name="([^"]+)"/.exec(tag)?.[1];
      if (!name || name in fields) continue;
      const value = /value="([^"]*)"/.exec(tag)?.[1];
      fields[name] = value !== undefined ? unescape(value) : (typed[name] ?? "x");
    }
    if (fields.csrf) forms.push({ action: unescape(action!), csrf: fields.csrf, fields });
  }
  return forms;
}

/** The current code of a TOTP secret as the account page shows it (base32). */
export const totpCode = (secret: string) => generateTOTP(decodeBase32IgnorePadding(secret), 30, 6);
