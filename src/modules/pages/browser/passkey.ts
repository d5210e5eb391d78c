/**
 * The one script of the pages (issue 25), bundled at build time with @simplewebauthn/browser and served by the
 * binary as /passkey.js: WebAuthn needs JavaScript, nothing else does. Its page's form says which ceremony it runs
 * (`data-ceremony`): on the sign-in page the passkey button and autofill (conditional mediation); on the second
 * step of a sign-in the passkey button; on the passkey step an app asked for (/login/passkey-step) the button, with
 * the options the page wrote into its form (this account's passkeys only, so no autofill); on the account's "Add a
 * passkey" page the registration. Each then posts
 * the browser's answer in an ordinary form. Without JavaScript the sign-in pages still take the password and codes.
 */
import {
  browserSupportsWebAuthn,
  browserSupportsWebAuthnAutofill,
  startAuthentication,
  startRegistration,
} from "@simplewebauthn/browser";

type Ceremony = "sign-in" | "second-step" | "step-up" | "register";

/** What went wrong, in the words of each page: one sentence a person understands, beside the button. */
const SENTENCES: Record<Ceremony, { cancelled: string; origin: string; registered: string; expired: string; other: string }> = {
  "sign-in": {
    cancelled: "The passkey request was cancelled or timed out. Try again, or sign in with your password.",
    origin: "Passkeys cannot be used on this address. Sign in with your password.",
    registered: "Your passkey could not be used. Try again, or sign in with your password.",
    expired: "This page has expired. Reload it and try again.",
    other: "Your passkey could not be used. Try again, or sign in with your password.",
  },
  "second-step": {
    cancelled: "The passkey request was cancelled or timed out. Try again.",
    origin: "Passkeys cannot be used on this address.",
    registered: "Your passkey could not be used. Try again.",
    expired: "This sign-in has expired. Sign in again.",
    other: "Your passkey could not be used. Try again.",
  },
  "step-up": {
    cancelled: "The passkey request was cancelled or timed out. Try again.",
    origin: "Passkeys cannot be used on this address.",
    registered: "Your passkey could not be used. Try again.",
    expired: "This page has expired. Reload it and try again.",
    other: "Your passkey could not be used: use a passkey of this account. Try again.",
  },
  register: {
    cancelled: "Adding the passkey was cancelled or timed out. Try again when you are ready.",
    origin: "Passkeys cannot be added on this address.",
    registered: "This device already holds a passkey for your account: you can sign in with it already.",
    expired: "This page has expired. Reload it and try again.",
    other: "The passkey could not be added. Try again.",
  },
};

/** The server would not give options (the page expired, the session ended). */
class Expired extends Error {}

/** Every WebAuthn failure the browser reports, as one sentence (W3C WebAuthn Level 3 §5.1.3, §5.1.4 errors). */
function sentence(ceremony: Ceremony, error: unknown): string {
  const said = SENTENCES[ceremony];
  if (error instanceof Expired) return said.expired;
  const name = error instanceof Error ? error.name : "";
  if (name === "NotAllowedError" || name === "AbortError") return said.cancelled;
  if (name === "SecurityError") return said.origin;
  if (name === "InvalidStateError") return said.registered;
  return said.other;
}

// The DOM, as far as this script touches it (the project is type-checked without the DOM library, which would
// change the server's own types).
interface Field {
  value: string;
}
interface Element {
  hidden: boolean;
  textContent: string | null;
  getAttribute(name: string): string | null;
  addEventListener(type: "click", listener: () => void): void;
  elements: { namedItem(name: string): Field | null };
  submit(): void;
}
declare const document: { getElementById(id: string): Element | null };

const form = document.getElementById("passkey-form");
const button = document.getElementById("passkey-button");
const status = document.getElementById("passkey-status");
const ceremony = (form?.getAttribute("data-ceremony") ?? "sign-in") as Ceremony;
const valueOf = (from: Element | null, name: string) => from?.elements.namedItem(name)?.value ?? "";

/** Posts for options: the page route's form (its CSRF token) or the API's JSON; a refusal means the page expired. */
async function options(url: string, body?: URLSearchParams | string, type?: string): Promise<never> {
  const answer = await fetch(url, { method: "POST", credentials: "same-origin", redirect: "manual", body, headers: type ? { "content-type": type } : {} });
  if (!answer.ok) throw new Expired();
  return (await answer.json()) as never;
}

/** The ceremony of this page, then its form posted with the browser's answer in `credential`. */
async function run(useBrowserAutofill: boolean): Promise<void> {
  try {
    let credential: unknown;
    if (ceremony === "register") {
      const optionsForm = document.getElementById("passkey-options");
      const optionsJSON = await options(optionsForm!.getAttribute("action")!, new URLSearchParams({ csrf: valueOf(optionsForm, "csrf") }));
      credential = await startRegistration({ optionsJSON });
    } else {
      const optionsJSON =
        ceremony === "step-up"
          ? (JSON.parse(valueOf(form, "options")) as never)
          : ceremony === "second-step"
            ? await options("/api/v1/auth/login/verify/options", JSON.stringify({ challenge_id: valueOf(form, "challenge_id") }), "application/json")
            : await options("/api/v1/auth/login/passkey/options");
      credential = await startAuthentication({ optionsJSON, useBrowserAutofill });
    }
    form!.elements.namedItem("credential")!.value = JSON.stringify(credential);
    form!.submit();
  } catch (error) {
    // An autofill request is cancelled whenever the button starts its own: that is not a failure to tell.
    if (useBrowserAutofill) return;
    if (status) status.textContent = sentence(ceremony, error);
  }
}

if (form && button && browserSupportsWebAuthn()) {
  const needsScript = document.getElementById("passkey-needs-script");
  if (needsScript) needsScript.hidden = true;
  button.hidden = false;
  button.addEventListener("click", () => void run(false));
  if (ceremony === "sign-in")
    void browserSupportsWebAuthnAutofill().then((supported) => {
      if (supported) void run(true);
    });
} else if (form && status && ceremony === "register") {
  // JavaScript runs, but this browser has no WebAuthn: say so instead of "needs JavaScript".
  const needsScript = document.getElementById("passkey-needs-script");
  if (needsScript) needsScript.hidden = true;
  status.textContent = "This browser cannot make passkeys. Try a recent Chrome, Edge, Firefox or Safari.";
}
