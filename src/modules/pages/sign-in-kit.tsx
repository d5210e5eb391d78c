import type { Config } from "../../config";
import type { FormTokens } from "./csrf";
import { safeRedirect, type SignInHost } from "./hosts";
import { MessagePage, type Refresh } from "./layout";
import { htmlPage, type PageSet as Set } from "./respond";
import type { BrowserSessions } from "./session";

/** A sign-in page link that keeps `rd`. */
export const loginLink = (rd: string | undefined) => (rd ? `/login?rd=${encodeURIComponent(rd)}` : "/login");

/**
 * What the signed-out pages of a sign-in host share (sign-in, the mailed codes' pages, the cross-domain handoff):
 * a page that only says something, this browser's pre-session binding, where a sign-in goes on to, and the way
 * between sign-in hosts.
 */
export function signInKit({ config, browser, forms }: { config: Config; browser: BrowserSessions; forms: FormTokens }) {
  const appName = config.appName;
  const message = (set: Set, status: number, title: string, text: string, link?: { href: string; text: string }, refresh?: Refresh) =>
    htmlPage(set, status, String(<MessagePage appName={appName} title={title} message={text} link={link} refresh={refresh} />));

  /** Where to go after sign-in: a safe `rd`, else the account page. */
  const destination = (host: SignInHost, rd: string | undefined) => safeRedirect(rd, host, browser.hosts) ?? "/account";

  /** The pre-session binding of this browser, set on the response when it has none yet. */
  function bindingOf(request: Request, set: Set, host: SignInHost): string {
    const existing = browser.binding(request);
    if (existing && existing.length <= 64) return existing;
    const fresh = forms.newBinding();
    browser.setBinding(set.headers, host, fresh);
    return fresh;
  }

  /** The sign-in host after `host`, in the order of PUBLIC_URL then SIGN_IN_URLS, round the list. */
  const nextHost = (host: SignInHost) => browser.hosts[(browser.hosts.indexOf(host) + 1) % browser.hosts.length]!;

  /** A handoff state: ties a code to the browser holding this host's pre-session cookie. */
  const handoffState = (binding: string) => forms.issue("handoff", binding);

  /** This host's sign-in page, as a path: `handoff=none` shows the form at once; without it, other hosts are asked first. */
  function loginPath(host: SignInHost, handoff: "none" | undefined, rd: string | undefined): string {
    const url = new URL("/login", host.origin);
    if (handoff) url.searchParams.set("handoff", handoff);
    if (rd) url.searchParams.set("rd", rd);
    return `${url.pathname}${url.search}`;
  }

  return { message, destination, bindingOf, nextHost, handoffState, loginPath };
}

export type SignInKit = ReturnType<typeof signInKit>;
