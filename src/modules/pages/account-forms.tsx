import { ApiError } from "../../errors";
import type { ClientInfo } from "../../http/client-ip";
import type { BrowserSessionPrincipal } from "../sessions/service";
import { SignedInNav } from "./account";
import type { Flash } from "./flash";
import { seeOther, type PageSet } from "./respond";
import { csrfFor, problemOf, signedInForm, type SignedInForms } from "./signed-in-forms";

/** A request and its answer's headers: where a form's flash cookie is read and set. */
interface Ctx {
  request: Request;
  set: PageSet;
}

/** Where on the account page each form sits (the redirect's fragment). */
const SECTION_OF: Record<string, string> = {
  email: "profile",
  "email-send": "profile",
  password: "password",
  "password-remove": "password",
  "totp-start": "two-step",
  "totp-confirm": "two-step",
  "totp-cancel": "two-step",
  "totp-delete": "two-step",
  "recovery-codes": "two-step",
  "session-revoke": "devices",
  "session-revoke-others": "devices",
  "key-create": "keys",
  "key-delete": "keys",
  "application-revoke": "applications",
  "passkey-add": "passkeys",
  "passkey-rename": "passkeys",
  "passkey-delete": "passkeys",
};

/**
 * What the account's pages share (the account page's own forms, its passkey pages and its email pages): each form
 * posts, then redirects back (POST/redirect/GET) to the page, where its message waits beside it (flash.ts).
 */
export function accountForms(deps: SignedInForms) {
  const { browser, forms, flashes } = deps;
  const guard = signedInForm(deps);
  const csrfOf = csrfFor(forms);
  const nav = (principal: BrowserSessionPrincipal) => (
    <SignedInNav username={principal.username} isAdmin={principal.roles.includes("admin")} csrf={forms.issue("logout", principal.sessionId)} />
  );

  /** Back to the account page, at the form's section, with its message waiting. */
  function back(ctx: Ctx, principal: BrowserSessionPrincipal, flash: Flash, path = "/account") {
    flashes.put(ctx.request, ctx.set, principal.sessionId, flash);
    return seeOther(ctx.set, path === "/account" ? `/account#${SECTION_OF[flash.form] ?? "profile"}` : path);
  }

  /**
   * One signed-in form: the gate, then `action`; an expected refusal (bad input, a wrong password, a limit) goes
   * back to `failurePath` (the page) beside the form, in the words of `refusal`; anything else propagates (a 500 page).
   */
  function form(
    path: string,
    name: string,
    action: (principal: BrowserSessionPrincipal, body: unknown, client: ClientInfo, ctx: Ctx) => Promise<string>,
    failurePath: string | ((body: unknown) => string) = "/account",
    refusal: (error: ApiError) => string = problemOf,
  ) {
    return [
      path,
      async ({ request, body, set, requester }: { request: Request; body: unknown; set: PageSet; requester: ClientInfo }) => {
        const principal = await guard(request, body, set, name);
        if (typeof principal === "string") return principal;
        const ctx = { request, set };
        try {
          return await action(principal, body, requester, ctx);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          return back(ctx, principal, { form: name, kind: "error", text: refusal(error) }, typeof failurePath === "string" ? failurePath : failurePath(body));
        }
      },
      { detail: { hide: true } },
    ] as const;
  }

  const said = (form: string, text: string): Flash => ({ form, kind: "notice", text });

  /** A page of its own for a signed-in user (the code pages, the recovery codes), or the sign-in page. */
  async function signedInPage(request: Request, set: PageSet, path: string, page: (principal: BrowserSessionPrincipal) => Promise<string> | string) {
    const principal = await browser.current(request);
    if (!principal) return seeOther(set, `/login?rd=${encodeURIComponent(path)}`, 302);
    return page(principal);
  }

  return { guard, csrfOf, nav, back, form, said, signedInPage };
}

export type AccountForms = ReturnType<typeof accountForms>;
