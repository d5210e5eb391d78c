import { escapeHtml } from "../../lib/html";
/** The few pages the mailed links open (a browser, not an API client, follows them). */

/** Inline styles only; forms post to this origin only; nothing is loaded from anywhere. */
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";


export function page(appName: string, title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)} · ${escapeHtml(appName)}</title>` +
    `<style>body{font-family:sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;line-height:1.5}input,button{font:inherit;padding:.4rem;margin:.3rem 0;width:100%;box-sizing:border-box}</style>` +
    `</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}
