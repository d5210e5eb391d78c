import type { Static, TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { Elysia } from "elysia";
import { ApiError, apiErrors } from "../../errors";
import { noStore } from "../../http/cache";
import type { RequesterPlugin } from "../../http/client-ip";
import type { IpLimit } from "../../limits/plugin";
import { RegistrationCredential } from "../passkeys/model";
import type { PasskeyRow, PasskeyService } from "../passkeys/service";
import type { BrowserSessionPrincipal } from "../sessions/service";
import type { AccountForms } from "./account-forms";
import type { Flashes } from "./flash";
import { MessagePage, signInCsp } from "./layout";
import { AddPasskeyPage, DeletePasskeyPage, RenamePasskeyPage, type PagePasskey } from "./passkeys";
import { field, htmlPage, passRetryAfter, seeOther, type PageSet } from "./respond";
import type { BrowserSessions } from "./session";
import { problemOf } from "./signed-in-forms";

/** The passkey pages' own needs, beside what the account's pages share (account-forms.tsx). */
export interface PasskeyPageDeps extends AccountForms {
  appName: string;
  browser: BrowserSessions;
  flashes: Flashes;
  passkeys: PasskeyService;
  /** The sign-in origins under the passkeys' RP ID: the only pages where a passkey can be made. */
  passkeyOrigins: ReadonlySet<string>;
  ipLimit: IpLimit;
  withRequester: RequesterPlugin;
}

/**
 * A page form's `credential` field: the browser's answer (JSON), of the shape the API's body schema takes. Anything
 * else is refused as a passkey that did not verify, before the passkey service reads it (never a 500).
 */
export function credentialOf<Schema extends TSchema>(body: unknown, schema: Schema, refused: string): Static<Schema> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(field(body, "credential") ?? "");
  } catch {
    throw apiErrors.passkey_verification_failed(refused);
  }
  if (!Value.Check(schema, parsed)) throw apiErrors.passkey_verification_failed(refused);
  return parsed;
}

export const pagePasskey = (row: PasskeyRow): PagePasskey => ({ id: row.id, name: row.name, createdAt: row.createdAt, lastUsedAt: row.lastUsedAt, synced: row.backupEligible });

/**
 * What the add page says when the server refuses the browser's answer: the API's sentences speak of options to
 * ask for again, which a person never did; the rest (already registered, not verified) read well as they are.
 */
function registrationProblem(error: ApiError, otherwise: (error: ApiError) => string): string {
  if (error.code === "passkey_challenge_expired") return "That took too long, or the page was sent twice. Try again.";
  if (error.code === "passkey_wrong_origin" || error.code === "passkey_wrong_rp_id") return "Passkeys cannot be added on this address.";
  if (error.code === "passkey_already_registered") return "This device already holds a passkey for your account: you can sign in with it already.";
  return otherwise(error);
}

/**
 * The account's passkey pages (issue 25): add (the registration ceremony, posted to page routes behind the page
 * session, the form's CSRF token and the origin check like every page form), rename, and delete after a
 * confirmation. Each ends on the account page's passkeys section with its message.
 */
export function passkeyPages(deps: PasskeyPageDeps) {
  const { appName, browser, flashes, passkeys, passkeyOrigins, ipLimit, withRequester, csrfOf, nav, guard, signedInPage, form, back } = deps;
  const [firstPasskeyOrigin] = passkeyOrigins;

  /** The user's passkey `id`, or the page that says it is gone (deleted meanwhile, or never theirs). */
  async function ownPasskey(set: PageSet, principal: BrowserSessionPrincipal, id: string, page: (passkey: PagePasskey) => string) {
    const row = (await passkeys.list(principal.userId)).find((candidate) => candidate.id === id);
    if (row) return page(pagePasskey(row));
    return htmlPage(
      set,
      404,
      String(<MessagePage appName={appName} title="Passkey not found" message="This passkey is not in your account: it may have been deleted already." link={{ href: "/account#passkeys", text: "Your passkeys" }} />),
    );
  }

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    .get(
      "/account/passkeys/add",
      ({ request, set }) =>
        signedInPage(request, set, "/account/passkeys/add", (principal) => {
          const here = browser.hostOf(request).origin;
          const elsewhere = passkeyOrigins.has(here) ? undefined : (firstPasskeyOrigin ?? "");
          const flash = flashes.take(request, set, principal.sessionId);
          const page = <AddPasskeyPage appName={appName} nav={nav(principal)} csrf={csrfOf(principal)} flash={flash} elsewhere={elsewhere} />;
          // The script's hash only where the button is.
          return htmlPage(set, 200, String(page), elsewhere === undefined ? signInCsp() : undefined);
        }),
      { detail: { hide: true } },
    )
    .post(
      "/account/passkeys/add/options",
      async ({ request, body, set, requester }) => {
        // The add page's script posts this form (fetch): the same gate as any page form, then WebAuthn's options as JSON.
        const principal = await guard(request, body, set, "passkey-options");
        if (typeof principal === "string") return principal;
        try {
          ipLimit(requester, "/account/passkeys/add/options");
        } catch (error) {
          if (!(error instanceof ApiError) || error.status !== 429) throw error;
          passRetryAfter(set, error);
          return htmlPage(set, 429, String(<MessagePage appName={appName} title="Too many attempts" message={problemOf(error)} />));
        }
        noStore(set.headers);
        return passkeys.registrationOptions(principal);
      },
      { detail: { hide: true } },
    )
    .post(
      ...form(
        "/account/passkeys/add",
        "passkey-add",
        async (principal, body, client, ctx) => {
          ipLimit(client, "/account/passkeys/add");
          const credential = credentialOf(body, RegistrationCredential, "The passkey could not be added. Try again.");
          const row = await passkeys.register(principal, credential as unknown as Parameters<typeof passkeys.register>[1], undefined, client);
          return back(ctx, principal, { form: "passkey-add", kind: "notice", text: `Passkey added. It is called “${row.name}”: rename it if you like.` });
        },
        "/account/passkeys/add",
        (error) => registrationProblem(error, problemOf),
      ),
    )
    .get(
      "/account/passkeys/:id/rename",
      ({ request, set, params }) =>
        signedInPage(request, set, "/account", (principal) => {
          const flash = flashes.take(request, set, principal.sessionId);
          const error = flash?.form === "passkey-rename" && flash.kind === "error" ? flash.text : undefined;
          return ownPasskey(set, principal, params.id, (passkey) =>
            htmlPage(set, 200, String(<RenamePasskeyPage appName={appName} nav={nav(principal)} passkey={passkey} csrf={csrfOf(principal)("passkey-rename")} error={error} />)),
          );
        }),
      { detail: { hide: true } },
    )
    .post(
      ...form("/account/passkeys/rename", "passkey-rename", async (principal, body, client, ctx) => {
        const id = field(body, "passkey_id") ?? "";
        const name = field(body, "name")?.trim() ?? "";
        if (name === "" || name.length > 64) {
          flashes.put(ctx.request, ctx.set, principal.sessionId, { form: "passkey-rename", kind: "error", text: "Give the passkey a name of 1 to 64 characters." });
          return seeOther(ctx.set, `/account/passkeys/${encodeURIComponent(id)}/rename`);
        }
        const row = await passkeys.rename(principal, id, name, client);
        return back(ctx, principal, { form: "passkey-rename", kind: "notice", text: `The passkey is now called “${row.name}”.` });
      }),
    )
    .get(
      "/account/passkeys/:id/delete",
      ({ request, set, params }) =>
        signedInPage(request, set, "/account", (principal) =>
          ownPasskey(set, principal, params.id, (passkey) =>
            htmlPage(set, 200, String(<DeletePasskeyPage appName={appName} nav={nav(principal)} passkey={passkey} csrf={csrfOf(principal)("passkey-delete")} />)),
          ),
        ),
      { detail: { hide: true } },
    )
    .post(
      ...form("/account/passkeys/delete", "passkey-delete", async (principal, body, client, ctx) => {
        await passkeys.remove(principal, field(body, "passkey_id") ?? "", client);
        return back(ctx, principal, { form: "passkey-delete", kind: "notice", text: "The passkey is deleted: it no longer signs you in." });
      }),
    );
}

/** The passkey pages' forms (their bodies are HTML forms). */
export const PASSKEY_FORM_PATHS = ["/account/passkeys/add/options", "/account/passkeys/add", "/account/passkeys/rename", "/account/passkeys/delete"] as const;

/** The passkey pages besides the account page (GET). */
export const PASSKEY_PAGE_PATHS = ["/account/passkeys/add", "/account/passkeys/:id/rename", "/account/passkeys/:id/delete"] as const;
