import { Elysia } from "elysia";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import { AccountChanged } from "../sessions/account-check";
import type { SessionService } from "../sessions/service";
import { createHandoffLimits, type HandoffCodes } from "./handoff";
import type { SignInHost } from "./hosts";
import { plural } from "./layout";
import { seeOther, type PageSet as Set } from "./respond";
import type { BrowserSessions } from "./session";
import type { SignInKit } from "./sign-in-kit";

export interface HandoffPageDeps extends SignInKit {
  browser: BrowserSessions;
  sessions: SessionService;
  handoffs: HandoffCodes;
  withRequester: RequesterPlugin;
}

/**
 * The cross-domain handoff (several sign-in hosts under different root domains): GET /handoff/start asks a host
 * whether this browser is signed in there, and sends its session on with a one-time code (handoff.ts) that
 * GET /handoff/accept on the host that asked turns into a session of its own; limited per address and per session.
 */
export function handoffPages(deps: HandoffPageDeps) {
  const { browser, sessions, handoffs, withRequester, message, destination, nextHost, handoffState, loginPath } = deps;
  const handoffLimits = createHandoffLimits();

  /** The handoff's session on this host, or undefined when the account was disabled or deleted meanwhile. */
  async function openHandoffSession(userId: string, parentId: string, client: ClientInfo) {
    try {
      return await sessions.createBrowser({ userId }, client, { parentId });
    } catch (error) {
      if (error instanceof AccountChanged) return undefined;
      throw error;
    }
  }

  /**
   * GET /handoff/start over its limit (429 rate_limited): a page that asks again once the wait is over (a meta
   * refresh: the CSP allows no script), or lets the user type the password on the host that asked.
   */
  function handoffBusy(set: Set, retryAfter: number, from: string, here: SignInHost, target: SignInHost, state: string, rd: string | undefined) {
    const again = new URL("/handoff/start", here.origin);
    again.searchParams.set("to", target.origin);
    again.searchParams.set("state", state);
    if (rd) again.searchParams.set("rd", rd);
    set.headers["retry-after"] = String(retryAfter);
    const form = `${target.origin}${loginPath(target, "none", rd)}`;
    return message(set, 429, "Too many sign-in handoffs", `Too many sign-in handoffs ${from}. Trying again in ${plural(retryAfter, "second")}.`, { href: form, text: "Sign in with your password instead" }, {
      seconds: retryAfter,
      url: `${again.pathname}${again.search}`,
    });
  }

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    .get(
      "/handoff/start",
      async ({ request, query, set, requester }) => {
        // Send this browser's session on to the sign-in host that asked (`to`); without one here, pass the question
        // on to the next sign-in host in turn, and once every other host has been asked, back to `to`'s form.
        const here = browser.hostOf(request);
        const to = typeof query.to === "string" ? query.to : "";
        const state = typeof query.state === "string" ? query.state : "";
        const rd = typeof query.rd === "string" ? query.rd : undefined;
        const target = browser.hosts.find((host) => host.origin === to && host !== here);
        if (!target || !state || state.length > 64) return message(set, 400, "Invalid link", "This sign-in link is not valid.");
        const byAddress = handoffLimits.address(requester.ip);
        if (!byAddress.allowed) return handoffBusy(set, byAddress.retryAfter, "from your network", here, target, state, rd);
        // The page cookie, not the domain-wide one: a session cookie leaked by an app must not buy a session (and
        // so a page cookie) on another sign-in host.
        const principal = await browser.current(request);
        const bySession = principal && handoffLimits.session(principal.rootSessionId);
        if (bySession && !bySession.allowed) return handoffBusy(set, bySession.retryAfter, "for this browser", here, target, state, rd);
        const onward = nextHost(here);
        const next = new URL(principal ? "/handoff/accept" : onward === target ? "/login" : "/handoff/start", principal ? target.origin : onward.origin);
        if (principal) next.searchParams.set("code", handoffs.issue(principal.rootSessionId, target.origin, state));
        else if (onward === target) next.searchParams.set("handoff", "none");
        else {
          next.searchParams.set("to", target.origin);
          next.searchParams.set("state", state);
        }
        if (rd) next.searchParams.set("rd", rd);
        return seeOther(set, next.href, 302);
      },
      { detail: { hide: true } },
    )
    .get(
      "/handoff/accept",
      async ({ request, query, set, requester }) => {
        const host = browser.hostOf(request);
        const rd = typeof query.rd === "string" ? query.rd : undefined;
        const binding = browser.binding(request);
        const code = typeof query.code === "string" ? query.code : "";
        const sessionId = binding && code ? handoffs.redeem(code, host.origin, handoffState(binding)) : undefined;
        const userId = sessionId ? await sessions.browserSessionOwner(sessionId) : undefined;
        const session = userId ? await openHandoffSession(userId, sessionId!, requester) : undefined;
        if (!session) {
          // The code was pushed out of a full store (a flood): start the handoff again, on a page (no script).
          if (!sessionId && code && handoffs.evicted(code)) {
            const again = loginPath(host, undefined, rd);
            set.headers["retry-after"] = "1";
            return message(set, 503, "Signing you in", "The server was busy handing your sign-in over: trying again.", { href: again, text: "Try again" }, { seconds: 1, url: again });
          }
          return seeOther(set, loginPath(host, "none", rd));
        }
        browser.setSession(set.headers, host, session.token);
        return seeOther(set, destination(host, rd), 302);
      },
      { detail: { hide: true } },
    );
}
