import { Elysia } from "elysia";
import { ApiError } from "../../errors";
import { PASSKEY_STEP_PATH } from "../../http/routes";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import type { IpLimit } from "../../limits/plugin";
import type { AuthService } from "../auth/service";
import type { PasskeyService } from "../passkeys/service";
import type { BrowserSessionPrincipal } from "../sessions/service";
import { sameOriginPost, type FormTokens } from "./csrf";
import { safeRedirect, type SignInHost } from "./hosts";
import { Alert, Csrf, Layout, PasskeyControls, plural, signInCsp } from "./layout";
import { field, htmlPage, passRetryAfter, seeOther, type PageSet as Set } from "./respond";
import type { BrowserSessions } from "./session";
import { loginLink, type SignInKit } from "./sign-in-kit";

export interface PasskeyStepDeps {
  appName: string;
  auth: AuthService;
  browser: BrowserSessions;
  forms: FormTokens;
  ipLimit: IpLimit;
  withRequester: RequesterPlugin;
  passkeys: PasskeyService;
  /** The sign-in origins a form may be posted from. */
  origins: ReadonlySet<string>;
  /** The sign-in origins under the passkeys' RP ID (elsewhere a browser refuses the ceremony). */
  passkeyOrigins: ReadonlySet<string>;
  /** The sign-in host's page that only says something (sign-in-kit.tsx). */
  message: SignInKit["message"];
}

interface StepView {
  appName: string;
  csrf: string;
  rd: string | undefined;
  /** This account's authentication options (allowCredentials: its passkeys), as JSON, for /passkey.js. */
  options: string;
  error?: string;
}

/** "This app asks you to confirm with a passkey": one button, the pages' one script, the form it posts. */
function PasskeyStepPage(view: StepView) {
  return (
    <Layout appName={view.appName} title="Confirm with a passkey" narrow>
      <section>
        <h1>Confirm with a passkey</h1>
        <p>This app asks you to confirm with a passkey.</p>
        <Alert message={view.error} />
        <form method="post" action={PASSKEY_STEP_PATH} id="passkey-form" class="stack" data-ceremony="step-up">
          <Csrf token={view.csrf} />
          {view.rd ? <input type="hidden" name="rd" value={view.rd} /> : ""}
          <input type="hidden" name="options" value={view.options} />
          <input type="hidden" name="credential" value="" />
          <PasskeyControls label="Confirm with a passkey" />
          <noscript>
            <p>Passkeys need JavaScript: turn it on for this page, then reload it.</p>
          </noscript>
        </form>
      </section>
    </Layout>
  );
}

/**
 * GET/POST /login/passkey-step?rd=: a signed-in browser whose session was not made with a passkey confirms one of
 * its own passkeys (options listing only them; an assertion by another account's passkey is refused), and gets a
 * new session whose amr has `hwk` (auth.stepUpBrowser), then goes on to `rd`, checked like every `rd`. Not signed
 * in: the sign-in page (any passkey sign-in there satisfies the requirement at once).
 */
export function passkeyStepPages({ appName, auth, browser, forms, ipLimit, withRequester, passkeys, origins, passkeyOrigins, message }: PasskeyStepDeps) {
  /** The 429 page: the wait in words, as the sign-in forms say it. */
  const tooMany = (set: Set, error: ApiError) =>
    message(set, 429, "Too many attempts", `Too many attempts. Try again in ${plural(passRetryAfter(set, error), "second")}.`);

  /** The step's page for this session, with new options (each answer spends its options, right or wrong). */
  async function stepPage(set: Set, status: number, host: SignInHost, principal: BrowserSessionPrincipal, rd: string | undefined, error?: string) {
    if (!passkeyOrigins.has(host.origin))
      return message(set, 400, "Passkeys are not available here", "Passkeys cannot be used on this address: open this page on the main sign-in address.", { href: "/account", text: "Your account" });
    if (!(await passkeys.has(principal.userId)))
      return message(set, 200, "Confirm with a passkey", "This app asks you to confirm with a passkey, and your account has none yet: add one, then open the app again.", {
        href: "/account/passkeys/add",
        text: "Add a passkey",
      });
    const options = await passkeys.secondStepOptions(principal.userId, "step_up");
    const safeRd = safeRedirect(rd, host, browser.hosts) && rd;
    const view = { appName, csrf: forms.issue("passkey-step", principal.sessionId), rd: safeRd || undefined, options: JSON.stringify(options), error };
    return htmlPage(set, status, String(<PasskeyStepPage {...view} />), signInCsp());
  }

  async function confirm(request: Request, body: unknown, set: Set, client: ClientInfo) {
    const host = browser.hostOf(request);
    const rd = field(body, "rd");
    const principal = await browser.current(request);
    if (!principal) return seeOther(set, loginLink(rd && safeRedirect(rd, host, browser.hosts) ? rd : undefined));
    if (!sameOriginPost(request, origins) || !forms.check("passkey-step", principal.sessionId, field(body, "csrf")))
      return message(set, 403, "Request refused", "This form expired or came from another site. Open the page again.", { href: "/account", text: "Your account" });
    const failed = (reason: string) => auth.recordStepUpFailure(principal.userId, client, reason);
    try {
      ipLimit(client, PASSKEY_STEP_PATH);
      let credential: unknown;
      try {
        credential = JSON.parse(field(body, "credential") ?? "");
      } catch {
        await failed("passkey_verification_failed");
        return await stepPage(set, 422, host, principal, rd, "Your passkey could not be used. Try again.");
      }
      // Options and passkey must both be this session's user's: another account's passkey is an unknown one here.
      const { userVerified, passkeyId } = await passkeys.authenticate(credential as Parameters<typeof passkeys.authenticate>[0], client, principal.userId, "step_up");
      const session = await auth.stepUpBrowser(principal, userVerified, passkeyId, client);
      browser.setSession(set.headers, host, session.token);
      return seeOther(set, safeRedirect(rd, host, browser.hosts) ?? "/account");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 429) return tooMany(set, error);
      await failed(error.code);
      return await stepPage(set, error.status, host, principal, rd, error.code === "account_disabled" ? "This account has been disabled." : error.message);
    }
  }

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    .get(
      PASSKEY_STEP_PATH,
      async ({ request, query, set, requester }) => {
        const host = browser.hostOf(request);
        const rd = typeof query.rd === "string" ? query.rd : undefined;
        const principal = await browser.current(request);
        if (!principal) return seeOther(set, loginLink(rd), 302);
        // Already a passkey sign-in of the last minutes: nothing to confirm. (An older one is confirmed anew: the
        // change of address of an account without a password sends it here, lib/amr.ts recentPasskeySignIn.)
        if (await auth.recentPasskeySession(principal.sessionId)) return seeOther(set, safeRedirect(rd, host, browser.hosts) ?? "/account", 302);
        try {
          // Each page stores new options: the per-address limit, as for the sign-in page's (POST .../passkey/options).
          ipLimit(requester, PASSKEY_STEP_PATH);
        } catch (error) {
          if (!(error instanceof ApiError) || error.status !== 429) throw error;
          return tooMany(set, error);
        }
        return stepPage(set, 200, host, principal, rd);
      },
      { detail: { hide: true } },
    )
    .post(PASSKEY_STEP_PATH, ({ request, body, set, requester }) => confirm(request, body, set, requester), { detail: { hide: true } });
}
