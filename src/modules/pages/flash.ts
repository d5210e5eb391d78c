/**
 * What a form's POST leaves for the page it redirects to (POST/redirect/GET): a message beside the form it is
 * about, and what is shown only once (a new API key, new recovery codes). Kept in memory per browser session,
 * read once by the next GET, and dropped after FLASH_TTL_MS: a reload shows the page without it and posts nothing.
 * Nothing of it travels in a URL, so no link can make a page say something it did not.
 */
const FLASH_TTL_MS = 120_000;
/** Bounded: past this many waiting flashes the oldest is dropped (its page then simply shows no message). */
const FLASH_MAX = 10_000;

export interface Flash {
  /** The form (and so the place on the page) the message belongs to. */
  form: string;
  kind: "error" | "notice";
  text: string;
  /** A new API key's secret, shown this once. */
  newKey?: { name: string; secret: string };
  /** New recovery codes, shown this once on their own page. */
  recoveryCodes?: string[];
}

export function createFlashes() {
  const waiting = new Map<string, { flash: Flash; expires: number }>();
  return {
    put(sessionId: string, flash: Flash): void {
      waiting.delete(sessionId);
      if (waiting.size >= FLASH_MAX) waiting.delete(waiting.keys().next().value!);
      waiting.set(sessionId, { flash, expires: Date.now() + FLASH_TTL_MS });
    },
    take(sessionId: string): Flash | undefined {
      const entry = waiting.get(sessionId);
      waiting.delete(sessionId);
      return entry && entry.expires > Date.now() ? entry.flash : undefined;
    },
  };
}

export type Flashes = ReturnType<typeof createFlashes>;

/** The message of `form`, if the flash is about it. */
export const messageFor = (flash: Flash | undefined, form: string | string[]) =>
  flash && (Array.isArray(form) ? form.includes(flash.form) : flash.form === form) ? flash : undefined;
