import type { PropsWithChildren } from "@kitajs/html";
import { bundlePasskeyScript } from "./passkey-script" with { type: "macro" };

/**
 * The one stylesheet, inline (no CDN, no web fonts) and allowed by its hash in the pages' CSP. System fonts,
 * a single column that fits a phone, and colours that follow prefers-color-scheme.
 */
export const PAGE_CSS = `
:root{color-scheme:light dark;--bg:#f6f7f9;--fg:#1b1f24;--muted:#5b6470;--card:#fff;--line:#d6dae0;--accent:#2456d6;--danger:#b42318;--ok:#17663a}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--fg:#e7eaee;--muted:#9aa4b1;--card:#1a1f25;--line:#2d343c;--accent:#7aa2ff;--danger:#ff8a80;--ok:#6fd39a}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between;padding:.75rem 1rem;border-bottom:1px solid var(--line);background:var(--card)}
header strong{font-size:1.1rem}
header nav{display:flex;gap:.75rem;align-items:center;flex-wrap:wrap}
main{max-width:56rem;margin:0 auto;padding:1rem}
main.narrow{max-width:24rem;padding-top:3rem}
section{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:1rem;margin:0 0 1rem}
h1{font-size:1.4rem;margin:0 0 1rem}h2{font-size:1.1rem;margin:0 0 .75rem}
label{display:block;margin:.5rem 0 .25rem;font-weight:600}
input,select{width:100%;padding:.55rem .6rem;font:inherit;color:inherit;background:var(--bg);border:1px solid var(--line);border-radius:.35rem}
input[type=checkbox]{width:auto}
button,.button{display:inline-block;padding:.5rem .9rem;font:inherit;border:1px solid var(--accent);border-radius:.35rem;background:var(--accent);color:var(--bg);cursor:pointer;text-decoration:none}
button.secondary{background:transparent;color:var(--accent)}
button.danger{background:transparent;border-color:var(--danger);color:var(--danger)}
form.inline{display:inline}
form.stack button{margin-top:1rem;width:100%}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}.row>*{flex:1 1 10rem}.row>button{flex:0 0 auto}
.error{color:var(--danger);border-color:var(--danger)}
.notice{color:var(--ok);border-color:var(--ok)}
.muted{color:var(--muted);font-size:.9rem}
.secret{font-family:ui-monospace,monospace;word-break:break-all;padding:.5rem;border:1px dashed var(--line)}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:.4rem .3rem;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:anywhere}
@media (max-width:40rem){thead{display:none}tr{display:block;border-bottom:1px solid var(--line);padding:.5rem 0}td{display:block;border:0;padding:.1rem 0}}
a{color:var(--accent)}
[hidden]{display:none!important}
`.trim();

export const PAGE_CSS_HASH = `sha256-${new Bun.CryptoHasher("sha256").update(PAGE_CSS).digest("base64")}`;

/**
 * Pages load nothing but their inline stylesheet; no script at all. form-action is left open: after sign-in a
 * form's redirect goes on to the protected app, which CSP would otherwise block.
 */
export const PAGE_CSP = `default-src 'none'; style-src '${PAGE_CSS_HASH}'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'`;

/** /passkey.js: browser/passkey.ts and @simplewebauthn/browser, bundled when the binary is built (a macro). */
export const PASSKEY_SCRIPT = bundlePasskeyScript();
export const PASSKEY_SCRIPT_HASH = `sha256-${new Bun.CryptoHasher("sha256").update(PASSKEY_SCRIPT).digest("base64")}`;

/**
 * The sign-in page's CSP: the pages' own, plus that one script by its hash (loaded with the same hash as its
 * `integrity`, CSP Level 3 §6.7.2.3) and fetches to this origin (the passkey options). Every other page stays
 * script-free.
 */
export const SIGN_IN_CSP = `${PAGE_CSP}; script-src '${PASSKEY_SCRIPT_HASH}'; connect-src 'self'`;

/** A page that loads `url` again after `seconds`: a meta refresh, since the pages' CSP allows no script. */
export interface Refresh {
  seconds: number;
  url: string;
}

export function Layout(props: PropsWithChildren<{ appName: string; title: string; narrow?: boolean; nav?: JSX.Element; refresh?: Refresh }>) {
  // Markup built by our own components, or our own constant: already safe to insert as it is.
  const safeNav = props.nav ?? "";
  const safeCss = PAGE_CSS;
  return (
    <>
      {"<!doctype html>"}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <meta name="color-scheme" content="light dark" />
          <meta name="referrer" content="same-origin" />
          {props.refresh ? <meta http-equiv="refresh" content={`${props.refresh.seconds};url=${props.refresh.url}`} /> : ""}
          <title safe>{`${props.title} · ${props.appName}`}</title>
          <style>{safeCss}</style>
        </head>
        <body>
          <header>
            <strong safe>{props.appName}</strong>
            {safeNav}
          </header>
          <main class={props.narrow ? "narrow" : ""}>{props.children}</main>
        </body>
      </html>
    </>
  );
}

/** A hidden CSRF field, on every form. */
export function Csrf({ token }: { token: string }) {
  return <input type="hidden" name="csrf" value={token} />;
}

/**
 * One button that posts one action about one row (sign a session out, delete a key...): its own form, so that
 * each carries its own CSRF token and names the row in a hidden field.
 */
export function RowAction(props: { action: string; csrf: string; fields: Record<string, string>; label: string; kind: "danger" | "secondary" }) {
  return (
    <form method="post" action={props.action} class="inline">
      <Csrf token={props.csrf} />
      {Object.entries(props.fields).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <button type="submit" class={props.kind} safe>
        {props.label}
      </button>
    </form>
  );
}

/** A list of rows under their headings (an empty heading over the rows' actions), or `empty` when there are none. */
export function RowTable<Row>(props: { headings: string[]; rows: Row[]; row: (row: Row) => JSX.Element; empty?: string }) {
  if (!props.rows.length && props.empty) return <p class="muted" safe>{props.empty}</p>;
  return (
    <table>
      <thead>
        <tr>
          {props.headings.map((heading) => (
            <th safe>{heading}</th>
          ))}
        </tr>
      </thead>
      <tbody>{props.rows.map(props.row)}</tbody>
    </table>
  );
}

/** An error (or a notice) above a form. */
export function Alert({ message, kind = "error" }: { message: string | undefined; kind?: "error" | "notice" }) {
  if (!message) return "";
  return (
    <section class={kind} role={kind === "error" ? "alert" : "status"} safe>
      {message}
    </section>
  );
}

/** A page that only says something (403, 429, a dead link), with a way on. */
export function MessagePage(props: { appName: string; title: string; message: string; link?: { href: string; text: string }; refresh?: Refresh }) {
  return (
    <Layout appName={props.appName} title={props.title} narrow refresh={props.refresh}>
      <section>
        <h1 safe>{props.title}</h1>
        <p safe>{props.message}</p>
        {props.link ? (
          <p>
            <a href={props.link.href} safe>
              {props.link.text}
            </a>
          </p>
        ) : (
          ""
        )}
      </section>
    </Layout>
  );
}
