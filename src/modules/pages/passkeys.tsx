/**
 * The account's passkeys (issue 25): the section of the account page, the page that adds one (the only signed-in
 * page with a script: WebAuthn needs JavaScript), and the pages that rename one and ask before deleting one.
 */
import type { Flash } from "./flash";
import { messageFor } from "./flash";
import { Alert, Csrf, Layout, PasskeyControls } from "./layout";
import { Cut, DataTable, When } from "./table";

/** A passkey as the pages show it (never its key). */
export interface PagePasskey {
  id: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  /** A synced passkey (a password manager or a platform keychain): it follows the user to their other devices. */
  synced: boolean;
}

/** The forms of the passkeys section, whose messages are said there. */
export const PASSKEY_FORMS = ["passkey-add", "passkey-rename", "passkey-delete"];

export function PasskeysSection(view: { passkeys: PagePasskey[]; flash: Flash | undefined }) {
  const said = messageFor(view.flash, PASSKEY_FORMS);
  return (
    <section id="passkeys" aria-labelledby="passkeys-title">
      <h2 id="passkeys-title">Passkeys</h2>
      <p class="muted">Sign in with your fingerprint, your face or your device's screen lock instead of typing your password.</p>
      {said ? <Alert message={said.text} kind={said.kind} /> : ""}
      <DataTable
        label="Passkeys"
        columns={[{ label: "Name" }, { label: "Added" }, { label: "Last used" }, { label: "", kind: "end" }]}
        rows={view.passkeys}
        empty="No passkeys yet."
        cells={(passkey) => [
          <Cut text={passkey.name} />,
          <When date={passkey.createdAt} />,
          <When date={passkey.lastUsedAt} never="not yet" />,
          <>
            <a class="button secondary" href={`/account/passkeys/${passkey.id}/rename`} aria-label={`Rename ${passkey.name}`}>
              Rename
            </a>{" "}
            <a class="button danger" href={`/account/passkeys/${passkey.id}/delete`} aria-label={`Delete ${passkey.name}`}>
              Delete
            </a>
          </>,
        ]}
      />
      <p class="actions">
        <a class="button" href="/account/passkeys/add">
          Add a passkey
        </a>
      </p>
    </section>
  );
}

/** "added 3 days ago, last used yesterday." or "added just now, not used yet.", as one sentence's end. */
function Used({ passkey }: { passkey: PagePasskey }) {
  return (
    <>
      {"added "}
      <When date={passkey.createdAt} />
      {passkey.lastUsedAt ? (
        <>
          {", last used "}
          <When date={passkey.lastUsedAt} />.
        </>
      ) : (
        ", not used yet."
      )}
    </>
  );
}

interface SignedInPage {
  appName: string;
  nav: JSX.Element;
}

/**
 * GET /account/passkeys/add: one button that runs the registration ceremony (/passkey.js), then posts the answer.
 * Without JavaScript the page says that adding a passkey needs it (the script hides that sentence); on an address
 * outside the passkeys' RP ID it says where passkeys can be added instead. Shows any flash it was sent with.
 */
export function AddPasskeyPage(view: SignedInPage & { csrf: (form: string) => string; flash?: Flash; elsewhere?: string }) {
  return (
    <Layout appName={view.appName} title="Add a passkey" nav={view.nav} narrow>
      <section>
        <h1>Add a passkey</h1>
        {view.flash ? <Alert message={view.flash.text} kind={view.flash.kind} /> : ""}
        <p>Your device asks for your fingerprint, your face, its screen lock or your security key. After that, you can sign in with the passkey instead of your password.</p>
        {view.elsewhere ? (
          <p class="message error" safe>{`Passkeys can be added only at ${view.elsewhere}. Open your account there to add one.`}</p>
        ) : (
          <>
            <p id="passkey-needs-script" class="message error">
              Adding a passkey needs JavaScript, which is off in this browser. Turn it on for this site, or use another browser.
            </p>
            {/* The script posts this form's token (fetch) for the options, then fills `credential` and posts the second form. */}
            <form method="post" action="/account/passkeys/add/options" id="passkey-options">
              <Csrf token={view.csrf("passkey-options")} />
            </form>
            <form method="post" action="/account/passkeys/add" id="passkey-form" class="stack" data-ceremony="register">
              <Csrf token={view.csrf("passkey-add")} />
              <input type="hidden" name="credential" value="" />
              <PasskeyControls label="Add a passkey" />
            </form>
          </>
        )}
        <p>
          <a href="/account#passkeys">Back to your account</a>
        </p>
      </section>
    </Layout>
  );
}

/** GET /account/passkeys/:id/rename: the name, in a small form. */
export function RenamePasskeyPage(view: SignedInPage & { passkey: PagePasskey; csrf: string; error?: string }) {
  return (
    <Layout appName={view.appName} title="Rename a passkey" nav={view.nav} narrow>
      <section>
        <h1>Rename a passkey</h1>
        <p class="muted">
          <strong safe>{view.passkey.name}</strong>
          {", "}
          <Used passkey={view.passkey} />
        </p>
        <Alert message={view.error} />
        <form method="post" action="/account/passkeys/rename" class="stack">
          <Csrf token={view.csrf} />
          <input type="hidden" name="passkey_id" value={view.passkey.id} />
          <label for="passkey_name">Name</label>
          <input id="passkey_name" name="name" value={view.passkey.name} required maxlength="64" autofocus />
          <button type="submit">Save the name</button>
        </form>
        <p>
          <a href="/account#passkeys">Back to your account</a>
        </p>
      </section>
    </Layout>
  );
}

/** GET /account/passkeys/:id/delete: asks first, naming the passkey. */
export function DeletePasskeyPage(view: SignedInPage & { passkey: PagePasskey; csrf: string }) {
  return (
    <Layout appName={view.appName} title="Delete a passkey" nav={view.nav} narrow>
      <section>
        <h1>Delete this passkey?</h1>
        <p>
          <strong safe>{view.passkey.name}</strong>
          {", "}
          <Used passkey={view.passkey} />
        </p>
        <p>Once deleted, it no longer signs you in here. Your device may still list it: you can remove it there too.</p>
        <form method="post" action="/account/passkeys/delete" class="stack">
          <Csrf token={view.csrf} />
          <input type="hidden" name="passkey_id" value={view.passkey.id} />
          <button type="submit" class="danger solid">
            Delete the passkey
          </button>
        </form>
        <p>
          <a href="/account#passkeys">Keep it</a>
        </p>
      </section>
    </Layout>
  );
}
