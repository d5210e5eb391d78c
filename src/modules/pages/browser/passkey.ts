/**
 * The one script of the pages (issue 25), bundled at build time with @simplewebauthn/browser and served by the
 * binary as /passkey.js: WebAuthn needs JavaScript, nothing else does. On the sign-in page it offers the passkey
 * button and autofill (conditional mediation), then posts the browser's answer in an ordinary form; without
 * JavaScript the page still signs in with the password.
 */
import { browserSupportsWebAuthn, browserSupportsWebAuthnAutofill, startAuthentication } from "@simplewebauthn/browser";

/** Every WebAuthn failure the browser reports, as one sentence a person understands. */
function sentence(error: unknown): string {
  const name = error instanceof Error ? error.name : "";
  if (name === "NotAllowedError" || name === "AbortError") return "The passkey request was cancelled or timed out. Try again, or sign in with your password.";
  if (name === "SecurityError") return "Passkeys cannot be used on this address. Sign in with your password.";
  if (name === "InvalidStateError") return "This device already holds a passkey for this account.";
  return "Your passkey could not be used. Try again, or sign in with your password.";
}

// The DOM, as far as this script touches it (the project is type-checked without the DOM library, which would
// change the server's own types).
interface Field {
  value: string;
}
interface PasskeyForm {
  elements: { namedItem(name: string): Field | null };
  submit(): void;
}
interface Button {
  hidden: boolean;
  addEventListener(type: "click", listener: () => void): void;
}
declare const document: { getElementById(id: string): (PasskeyForm & Button & { textContent: string | null }) | null };

const form: PasskeyForm | null = document.getElementById("passkey-form");
const button: Button | null = document.getElementById("passkey-button");
const status = document.getElementById("passkey-status");

// The passkey step-up page (/login/passkey-step) writes its options into the form: this account's passkeys only
// (allowCredentials), so no autofill there; the sign-in page's are fetched, usernameless.
const given = form?.elements.namedItem("options")?.value;

async function signIn(useBrowserAutofill: boolean): Promise<void> {
  try {
    type Options = Parameters<typeof startAuthentication>[0]["optionsJSON"];
    let optionsJSON: Options;
    if (given) optionsJSON = JSON.parse(given) as Options;
    else {
      const answer = await fetch("/api/v1/auth/login/passkey/options", { method: "POST", credentials: "same-origin" });
      if (!answer.ok) throw new Error("options");
      optionsJSON = (await answer.json()) as Options;
    }
    const credential = await startAuthentication({ optionsJSON, useBrowserAutofill });
    form!.elements.namedItem("credential")!.value = JSON.stringify(credential);
    form!.submit();
  } catch (error) {
    // An autofill request is cancelled whenever the button starts its own: that is not a failure to tell.
    if (useBrowserAutofill) return;
    if (status) status.textContent = sentence(error);
  }
}

if (form && button && browserSupportsWebAuthn()) {
  button.hidden = false;
  button.addEventListener("click", () => void signIn(false));
  if (!given)
    void browserSupportsWebAuthnAutofill().then((supported) => {
      if (supported) void signIn(true);
    });
}
