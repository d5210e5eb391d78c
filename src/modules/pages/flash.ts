import { seal, unseal } from "../../lib/crypto";
import type { PageSet } from "./respond";
import type { BrowserSessions } from "./session";

/**
 * What a form's POST leaves for the page it redirects to (POST/redirect/GET): a message beside the form it is
 * about, and what is shown only once (a new API key, new recovery codes). It travels in a short-lived cookie
 * (session.ts), sealed (AES-256-GCM) under the server's data key and bound to the browser session: no other
 * session can read or replay it, it is read once by the next GET (which clears it), and any instance of the
 * server can read it (several instances share a PostgreSQL database). Nothing of it travels in a URL, so no link
 * can make a page say something it did not.
 */
const CONTEXT = "latchkey/page-flash/v1";

export interface Flash {
  /** The form (and so the place on the page) the message belongs to. */
  form: string;
  kind: "error" | "notice";
  text: string;
  /** A new API key's (or client's) secret, shown this once. */
  newKey?: { name: string; secret: string };
  /** New recovery codes, shown this once on their own page. */
  recoveryCodes?: string[];
}

export function createFlashes(browser: BrowserSessions, key: Uint8Array) {
  return {
    put(request: Request, set: PageSet, sessionId: string, flash: Flash): void {
      browser.setFlash(set.headers, browser.hostOf(request), seal(key, JSON.stringify(flash), `${CONTEXT}|${sessionId}`));
    },
    /** The flash this browser session holds, if any; it is cleared (read once). */
    take(request: Request, set: PageSet, sessionId: string): Flash | undefined {
      const sealed = browser.flash(request);
      if (sealed === undefined) return undefined;
      browser.setFlash(set.headers, browser.hostOf(request), "");
      const opened = unseal(key, sealed, `${CONTEXT}|${sessionId}`);
      if (opened === undefined) return undefined;
      try {
        return JSON.parse(opened) as Flash;
      } catch {
        return undefined;
      }
    },
  };
}

export type Flashes = ReturnType<typeof createFlashes>;

/** The message of `form`, if the flash is about it. */
export const messageFor = (flash: Flash | undefined, form: string | string[]) =>
  flash && (Array.isArray(form) ? form.includes(flash.form) : flash.form === form) ? flash : undefined;
