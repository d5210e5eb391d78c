import { NO_STORE } from "../../http/cache";
import { PASSKEY_STEP_PATH } from "../../http/routes";
import type { ResponseHeadersOf } from "../../http/security";
import { whenReady, type Pending } from "../../lib/pending";
import { signInHostFor } from "../pages/hosts";
import { ForbiddenPage, MessagePage, PAGE_CSP } from "../pages/layout";
import type { BrowserSessions } from "../pages/session";
import type { UserIdentity } from "../users/service";
import { presentedCredential } from "./identify";
import type { ForwardedRequest } from "./request";

const ANONYMOUS = { ...NO_STORE, "remote-user": "", "remote-groups": "", "remote-email": "", "remote-name": "" };

/** Header values a proxy copies upstream: printable Latin-1 only, else left out (or the username, for the name). */
const headerSafe = (value: string) => /^[\u0020-\u007e\u00a0-\u00ff]{1,256}$/.test(value);

/** A browser navigating (not a script): it should be sent to the sign-in page rather than get a bare 401. */
function isNavigation(headers: Headers): boolean {
  return (headers.get("accept") ?? "").includes("text/html") && headers.get("x-requested-with") !== "XMLHttpRequest";
}

/**
 * Forward auth's answers, one per verdict, each a whole Response (http/security.ts `hand`: Elysia sends it
 * untouched) with its headers prebuilt where the hot path needs them.
 */
export function forwardAnswers({ headers, appName, browser, identify }: {
  headers: ResponseHeadersOf;
  appName: string;
  browser: BrowserSessions;
  identify: (headers: Headers) => Pending<UserIdentity | undefined>;
}) {
  const challenge = `Bearer realm="${appName.replace(/["\\]/g, "")}", Basic realm="${appName.replace(/["\\]/g, "")}", charset="UTF-8"`;

  /** The sign-in host of the app's domain (PUBLIC_URL's when none covers it). */
  const signInHost = (original: ForwardedRequest) => (original.ok && signInHostFor(browser.hosts, original.host)) || browser.primary;
  const signInUrl = (original: ForwardedRequest, page = "/login") =>
    original.ok ? `${signInHost(original).origin}${page}?rd=${encodeURIComponent(original.url)}` : `${signInHost(original).origin}${page}`;

  const plainHeaders = headers.headersWith({});
  const bypassHeaders = headers.headersWith(ANONYMOUS);
  const allowHeaders = headers.headersWith(NO_STORE);
  const answer = (request: Request, status: number, extra: Record<string, string>, body: string | null = null) =>
    new Response(body, { status, headers: plainHeaders.with(request, extra) });
  const json = (request: Request, status: number, error: string, message: string, extra: Record<string, string> = {}) =>
    answer(request, status, { "content-type": "application/json", ...NO_STORE, ...extra }, JSON.stringify({ error, message }));

  /** The Remote-* headers that name a user to the proxy. */
  function remote(who: UserIdentity): Record<string, string> {
    const name = who.metadata.name;
    return {
      "remote-user": who.username,
      "remote-groups": who.roles.join(","),
      // Only a verified address: on an open instance anyone may claim someone else's, and apps match users by it.
      "remote-email": who.email && who.emailVerified && headerSafe(who.email) ? who.email : "",
      "remote-name": typeof name === "string" && headerSafe(name) ? name : who.username,
    };
  }
  // The allowed answer, built once per principal object and cloned for each request (http/security.ts `prebuilt`):
  // principals are the session and key caches' entries (renewed at least once a second), so this holds nothing
  // longer than they do. The template itself is never sent.
  const allowedFor = new WeakMap<UserIdentity, { template: Response; names: Record<string, string> }>();
  function allowed(request: Request, who: UserIdentity): Response {
    let known = allowedFor.get(who);
    if (known === undefined) {
      const names = remote(who);
      const prebuilt = new Headers(allowHeaders.shared);
      for (const [name, value] of Object.entries(names)) prebuilt.set(name, value);
      known = { template: new Response(null, { headers: prebuilt }), names };
      allowedFor.set(who, known);
    }
    return allowHeaders.prebuilt(request, known.template, null, known.names);
  }

  /**
   * 403: JSON for scripts; for a browser, Latchkey's page saying who is signed in, with a sign-out and a
   * switch-account link on the sign-in host (the nginx example shows it through error_page 403 too).
   */
  function forbidden(request: Request, original: ForwardedRequest, who: UserIdentity | undefined): Response {
    if (!isNavigation(request.headers)) return json(request, 403, "forbidden", "This account may not access this resource.");
    return answer(
      request,
      403,
      { "content-type": "text/html; charset=utf-8", "content-security-policy": PAGE_CSP, ...NO_STORE },
      String(<RefusalPage appName={appName} username={who?.username} signIn={signInHost(original).origin} url={original.ok ? original.url : undefined} />),
    );
  }

  /** Refused whoever asks: the caller is looked up only for a browser's page. */
  function refused(request: Request, original: ForwardedRequest): Pending<Response> {
    if (!isNavigation(request.headers)) return forbidden(request, original, undefined);
    return whenReady(identify(request.headers), (who) => forbidden(request, original, who));
  }

  /** A browser sent to a page of the sign-in host with `rd` back (behind nginx a 401 carrying the Location). */
  function sendBrowser(request: Request, original: ForwardedRequest, page: string): Response {
    const location = signInUrl(original, page);
    if (original.family === "nginx") return answer(request, 401, { location, ...NO_STORE, "www-authenticate": challenge });
    const method = original.ok ? original.method : "GET";
    return answer(request, method === "GET" || method === "HEAD" ? 302 : 303, { location, ...NO_STORE });
  }

  /**
   * Not signed in: a browser goes to the sign-in page, a script gets 401: `unauthorized` when it sent no
   * credential, and as on the API `invalid_token` or `invalid_api_key` for one that does not open this door (an
   * OpenID Connect client's token among them: RFC 6750 §3.1, RFC 9068).
   */
  function signIn(request: Request, original: ForwardedRequest): Response {
    if (isNavigation(request.headers)) return sendBrowser(request, original, "/login");
    const presented = presentedCredential(request.headers)?.kind;
    if (presented === "token")
      return json(request, 401, "invalid_token", "The access token is not valid here: it is malformed, expired, ended, or an application's token.", { "www-authenticate": `${challenge}, error="invalid_token"` });
    if (presented === "api_key") return json(request, 401, "invalid_api_key", "The API key is not valid: it is unknown, expired or deleted, or its user is disabled.", { "www-authenticate": challenge });
    return json(request, 401, "unauthorized", "Sign in, or send an access token or API key.", { "www-authenticate": challenge });
  }

  /**
   * Signed in, but a rule requires a passkey this session was not made with: a browser goes to the passkey step
   * (pages: /login/passkey-step), a script gets 401 passkey_required (an API key never satisfies the rule).
   */
  function passkeyStep(request: Request, original: ForwardedRequest): Response {
    if (isNavigation(request.headers)) return sendBrowser(request, original, PASSKEY_STEP_PATH);
    return json(request, 401, "passkey_required", `This resource requires a sign-in with a passkey: sign in with one, or confirm one at ${PASSKEY_STEP_PATH}.`, { "www-authenticate": challenge });
  }

  // Empty Remote-* headers on a bypass too: a proxy that copies them then overwrites any the client sent itself.
  const bypass = (request: Request) => bypassHeaders.empty(request);

  return { bypass, allowed, signIn, passkeyStep, forbidden, refused };
}

/**
 * The refusal page: who is signed in, and how to sign out or sign in as someone else (the pages' ForbiddenPage, on
 * the sign-in host); a caller who is not signed in is offered the sign-in page.
 */
function RefusalPage(props: { appName: string; username: string | undefined; signIn: string; url: string | undefined }) {
  if (props.username !== undefined) return <ForbiddenPage appName={props.appName} username={props.username} signIn={props.signIn} rd={props.url} />;
  const back = props.url === undefined ? "" : `?rd=${encodeURIComponent(props.url)}`;
  return (
    <MessagePage appName={props.appName} title="Access denied" message="You are not signed in, and this page is not open to anyone.">
      <p>
        <a href={`${props.signIn}/login${back}`}>Sign in</a>
      </p>
    </MessagePage>
  );
}
