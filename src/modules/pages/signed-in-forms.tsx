import { ApiError } from "../../errors";
import type { BrowserSessionPrincipal } from "../sessions/service";
import { sameOriginPost, type FormTokens } from "./csrf";
import type { Flash, Flashes } from "./flash";
import { MessagePage, plural } from "./layout";
import { field, htmlPage, seeOther, type PageSet } from "./respond";
import type { BrowserSessions } from "./session";

/*
 * What every signed-in page form shares (the account's, the admin's, the applications' and the invitations'):
 * the gate a POST passes, and the words a refusal is shown in.
 */

/** "Too many attempts. Try again in 1 second.": a 429's wait, in words. */
export function tooManyAttempts(error: ApiError): string {
  const seconds = error.headers?.["Retry-After"] ?? "60";
  return `Too many attempts. Try again in ${plural(seconds, "second")}.`;
}

/** What a refused action says: the first field's problem, the wait of a 429, or the error's message. */
export function problemOf(error: ApiError): string {
  if (error.status === 429) return tooManyAttempts(error);
  return error.details?.[0]?.message ?? error.message;
}

/**
 * Runs a signed-in form's change and leaves its outcome for the page the POST redirects to (POST/redirect/GET):
 * the change's notice, or why it was refused, beside `form`. Any other error is thrown on (a 500 page).
 */
export async function flashOutcome(
  flashes: Flashes,
  request: Request,
  set: PageSet,
  to: { sessionId: string; form: string },
  change: () => Promise<Omit<Flash, "form" | "kind">>,
  refusal: (error: ApiError) => string = problemOf,
): Promise<void> {
  try {
    flashes.put(request, set, to.sessionId, { form: to.form, kind: "notice", ...(await change()) });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    flashes.put(request, set, to.sessionId, { form: to.form, kind: "error", text: refusal(error) });
  }
}

export interface SignedInForms {
  appName: string;
  origins: ReadonlySet<string>;
  browser: BrowserSessions;
  forms: FormTokens;
  flashes: Flashes;
}

/** The CSRF tokens of a signed-in user's forms, each bound to the browser session (csrf.ts). */
export const csrfFor = (forms: FormTokens) => (principal: BrowserSessionPrincipal) => (form: string) => forms.issue(form, principal.sessionId);

/**
 * The gate of every signed-in form: a live browser session, a same-origin POST and this form's CSRF token.
 * Returns the principal, or the answer to send instead (to sign-in, or a 403 page).
 */
export function signedInForm({ appName, origins, browser, forms }: SignedInForms) {
  return async (request: Request, body: unknown, set: PageSet, form: string): Promise<BrowserSessionPrincipal | string> => {
    const principal = await browser.current(request);
    if (!principal) return seeOther(set, "/login");
    if (!sameOriginPost(request, origins) || !forms.check(form, principal.sessionId, field(body, "csrf")))
      return htmlPage(
        set,
        403,
        String(<MessagePage appName={appName} title="Request refused" message="This form expired or came from another site. Open the page again." link={{ href: "/account", text: "Your account" }} />),
      );
    return principal;
  };
}
