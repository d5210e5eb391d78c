import type { PropsWithChildren } from "@kitajs/html";
import { bundlePasskeyScript } from "./passkey-script" with { type: "macro" };

/**
 * The one stylesheet, inline (no CDN, no web fonts) and allowed by its hash in the pages' CSP. System fonts,
 * a single column that fits a phone, and colours that follow prefers-color-scheme. Text never breaks inside a
 * word: tables keep their cells on one line (long values are cut with an ellipsis, the whole value in a title),
 * and on a phone every row stacks into labelled lines (the heading beside each value, from data-label).
 */
const BASE_CSS = `
:root{color-scheme:light dark;--bg:#f3f4f6;--fg:#1b1f24;--muted:#545d69;--card:#fff;--field:#fff;--line:#d6dae0;--edge:#8a94a3;--accent:#2456d6;--on-accent:#fff;--link:#1d4bc0;--danger:#b42318;--ok:#17663a;--warn:#8a5300}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--fg:#e7eaee;--muted:#a9b3bf;--card:#1a1f25;--field:#0e1115;--line:#2f363f;--edge:#6b7684;--accent:#8fb0ff;--on-accent:#0b1020;--link:#9dbaff;--danger:#ff8a80;--ok:#6fd39a;--warn:#f0b95a}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between;padding:.75rem 1rem;border-bottom:1px solid var(--line);background:var(--card)}
header .brand{display:flex;gap:.5rem;align-items:center;font-weight:700;font-size:1.1rem;color:inherit;text-decoration:none}
header .brand img{height:2rem;width:auto;max-width:8rem}
header nav{display:flex;gap:.4rem 1rem;align-items:center;flex-wrap:wrap}
header nav a{white-space:nowrap}
header nav a[aria-current=page]{font-weight:700;text-decoration:none;color:var(--fg)}
main{max-width:60rem;margin:0 auto;padding:1rem}
main.narrow{max-width:26rem;padding-top:2.5rem}
section{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:1rem;margin:0 0 1rem}
section>h2:first-child,section>h1:first-child{margin-top:0}
h1{font-size:1.45rem;margin:0 0 1rem}h2{font-size:1.15rem;margin:1.25rem 0 .75rem}h3{font-size:1rem;margin:1rem 0 .5rem}
p{margin:.5rem 0}
label{display:block;margin:.6rem 0 .25rem;font-weight:600}
label.check{display:flex;gap:.5rem;align-items:center;font-weight:400}
input,select{width:100%;padding:.55rem .65rem;font:inherit;color:var(--fg);background:var(--field);border:1px solid var(--edge);border-radius:.35rem}
input:focus,select:focus,button:focus-visible,a:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
input[type=checkbox]{width:1.1rem;height:1.1rem;margin:0}
input[readonly]{font-family:ui-monospace,monospace;font-size:.9rem}
button,.button{display:inline-block;padding:.5rem .95rem;font:inherit;font-weight:600;line-height:1.4;border:1px solid var(--accent);border-radius:.35rem;background:var(--accent);color:var(--on-accent);cursor:pointer;text-decoration:none;white-space:nowrap;text-align:center}
button.secondary,.button.secondary{background:transparent;color:var(--link);border-color:var(--edge)}
button.danger,.button.danger{background:transparent;border-color:var(--danger);color:var(--danger)}
button.danger.solid{background:var(--danger);color:var(--card)}
form.inline{display:inline}
form.stack button{margin-top:1rem;width:100%}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin-top:.75rem}
.actions form{margin:0}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}.row>*{flex:1 1 10rem}.row>button{flex:0 0 auto}
.message{border:1px solid;border-left-width:.3rem;border-radius:.35rem;padding:.5rem .75rem;margin:.5rem 0 .75rem}
.error{color:var(--danger);border-color:var(--danger)}
.notice{color:var(--ok);border-color:var(--ok)}
.muted{color:var(--muted);font-size:.92rem}
.badge{display:inline-block;padding:0 .45rem;border:1px solid;border-radius:1rem;font-size:.85rem;white-space:nowrap}
.badge.ok{color:var(--ok)}.badge.warn{color:var(--warn)}.badge.off{color:var(--muted)}.badge.bad{color:var(--danger)}
.secret{font-family:ui-monospace,monospace;font-size:1.05rem;letter-spacing:.02em;padding:.5rem .75rem;border:1px solid var(--line);border-radius:.35rem;background:var(--bg);display:inline-block;max-width:100%;overflow-x:auto;white-space:nowrap}
.key-groups{display:flex;flex-wrap:wrap;gap:.25rem .6rem;font-family:ui-monospace,monospace;font-size:1.1rem;padding:.6rem .75rem;background:var(--bg);border-radius:.35rem}
.key-groups span{white-space:nowrap}
.qr{display:flex;justify-content:center;margin:1rem 0}
.qr img{width:240px;height:240px;background:#fff;padding:12px;border-radius:.5rem;border:1px solid var(--line)}
.codes{list-style:none;padding:0;margin:1rem 0;display:grid;grid-template-columns:repeat(auto-fill,minmax(9rem,1fr));gap:.5rem;font-family:ui-monospace,monospace;font-size:1.1rem}
.codes li{padding:.4rem .6rem;background:var(--bg);border:1px solid var(--line);border-radius:.35rem;text-align:center;white-space:nowrap}
.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.35rem 1rem;margin:0 0 .75rem}
.facts dt{font-weight:600;color:var(--muted)}.facts dd{margin:0;min-width:0}
details>summary{cursor:pointer;font-weight:600;margin:.25rem 0}
.table-box{max-width:100%}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid var(--line);vertical-align:middle;white-space:nowrap}
th{font-size:.9rem;color:var(--muted)}
td.wrap{white-space:normal;overflow-wrap:normal;word-break:normal;min-width:10rem}
td.end{text-align:right}
.cut{display:inline-block;max-width:16rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;vertical-align:bottom}
.failure{color:var(--danger)}
@media (max-width:40rem){
table,tbody,tr,td{display:block;width:100%}
thead{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}
tr{border-bottom:1px solid var(--line);padding:.5rem 0}
td{display:flex;gap:1rem;justify-content:space-between;align-items:baseline;border:0;padding:.15rem 0;text-align:right}
td.end{justify-content:flex-end}
td[data-label]::before{content:attr(data-label);font-weight:600;color:var(--muted);flex:none;text-align:left}
td.wrap{min-width:0;text-align:left}
.cut{max-width:62vw}
main{padding:.75rem}
}
a{color:var(--link)}
[hidden]{display:none!important}
`.trim();

/** What APP_ACCENT_COLOR and APP_LOGO change on every page (config.ts checks them). */
export interface Branding {
  /** `#rrggbb`: buttons and focus rings. */
  accent?: string;
  /** Whether a logo is served at LOGO_PATH. */
  logo?: boolean;
}

/** The route the binary serves APP_LOGO from (its own origin: the CSP's img-src 'self'). */
export const LOGO_PATH = "/branding/logo";

/** Black or white, whichever reads better on `hex` (WCAG relative luminance). */
function textOn(hex: string): string {
  const channel = (i: number) => {
    const c = parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2);
  return luminance > 0.179 ? "#000" : "#fff";
}

const hashOf = (css: string) => `sha256-${new Bun.CryptoHasher("sha256").update(css).digest("base64")}`;
const cspOf = (css: string) => `default-src 'none'; style-src '${hashOf(css)}'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'`;

let brandCss = BASE_CSS;
let hasLogo = false;

/**
 * Pages load nothing but their inline stylesheet; no script (but the sign-in page's one, signInCsp). form-action is left open: after sign-in a
 * form's redirect goes on to the protected app, which CSP would otherwise block. A live binding: the accent
 * colour (configureBranding) changes the stylesheet and so its hash.
 */
export let PAGE_CSP = cspOf(BASE_CSS);

/** Applies APP_ACCENT_COLOR and APP_LOGO to every page (once, at start, from the composition root). */
export function configureBranding(branding: Branding): void {
  brandCss = branding.accent ? `${BASE_CSS}\n:root{--accent:${branding.accent};--on-accent:${textOn(branding.accent)}}` : BASE_CSS;
  hasLogo = branding.logo ?? false;
  PAGE_CSP = cspOf(brandCss);
}

/** /passkey.js: browser/passkey.ts and @simplewebauthn/browser, bundled when the binary is built (a macro). */
export const PASSKEY_SCRIPT = bundlePasskeyScript();
export const PASSKEY_SCRIPT_HASH = `sha256-${new Bun.CryptoHasher("sha256").update(PASSKEY_SCRIPT).digest("base64")}`;

/**
 * The sign-in page's CSP: the pages' own (read now: the branded stylesheet's hash), plus that one script by its
 * hash (loaded with the same hash as its `integrity`, CSP Level 3 §6.7.2.3) and fetches to this origin (the
 * passkey options). Every other page stays script-free.
 */
export const signInCsp = () => `${PAGE_CSP}; script-src '${PASSKEY_SCRIPT_HASH}'; connect-src 'self'`;

/** A page that loads `url` again after `seconds`: a meta refresh, since the pages' CSP allows no script. */
export interface Refresh {
  seconds: number;
  url: string;
}

export function Layout(props: PropsWithChildren<{ appName: string; title: string; narrow?: boolean; nav?: JSX.Element; refresh?: Refresh }>) {
  // Markup built by our own components, or our own constant: already safe to insert as it is.
  const safeNav = props.nav ?? "";
  const safeCss = brandCss;
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
            <a class="brand" href="/account">
              {hasLogo ? <img src={LOGO_PATH} alt="" /> : ""}
              <span safe>{props.appName}</span>
            </a>
            {safeNav}
          </header>
          <main class={props.narrow ? "narrow" : ""}>{props.children}</main>
        </body>
      </html>
    </>
  );
}

/** A hidden CSRF field, on every form. */
/**
 * The passkey button of a ceremony's form (hidden until /passkey.js shows it: without JavaScript it is never
 * offered), the line where the script says what went wrong, and the script itself, allowed by its hash. The line is
 * a live region, not an alert: empty until the script has something to say, so the page's one alert stays the form's.
 */
export function PasskeyControls({ label, secondary }: { label: string; secondary?: boolean }) {
  return (
    <>
      <button type="button" id="passkey-button" class={secondary ? "secondary" : undefined} hidden safe>
        {label}
      </button>
      <p id="passkey-status" class="error" aria-live="assertive"></p>
      <script src="/passkey.js" integrity={PASSKEY_SCRIPT_HASH} defer></script>
    </>
  );
}

export function Csrf({ token }: { token: string }) {
  return <input type="hidden" name="csrf" value={token} />;
}

/**
 * One button that posts one action about one row (sign a session out, delete a key...): its own form, so that
 * each carries its own CSRF token and names the row in a hidden field.
 */
export function RowAction(props: { action: string; csrf: string; fields: Record<string, string>; label: string; kind: "danger" | "secondary" | "primary"; title?: string }) {
  return (
    <form method="post" action={props.action} class="inline">
      <Csrf token={props.csrf} />
      {Object.entries(props.fields).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <button type="submit" class={props.kind === "primary" ? "" : props.kind} title={props.title} safe>
        {props.label}
      </button>
    </form>
  );
}

/** A message beside the form it is about: an error (role alert) or a notice (role status). */
export function Alert({ message, kind = "error" }: { message: string | undefined; kind?: "error" | "notice" }) {
  if (!message) return "";
  return (
    <p class={`message ${kind}`} role={kind === "error" ? "alert" : "status"} safe>
      {message}
    </p>
  );
}

/** A page that only says something (403, 404, 429, a dead link), with a way on. */
export function MessagePage(
  props: PropsWithChildren<{
    appName: string;
    title: string;
    message: string;
    link?: { href: string; text: string };
    refresh?: Refresh;
  }>,
) {
  const safeExtra = props.children ?? "";
  return (
    <Layout appName={props.appName} title={props.title} narrow refresh={props.refresh}>
      <section>
        <h1 safe>{props.title}</h1>
        <p safe>{props.message}</p>
        {safeExtra}
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

/**
 * "Access denied" for a signed-in browser (forward auth's 403, an admin page for a non-admin): says who is signed
 * in, and offers to sign out or to switch account. Both are links to the sign-in host's GET /logout, which asks
 * before signing out (a sign-out is a POST with a CSRF token, which this page, served on any app's host, has not).
 * `signIn` is the sign-in host's origin ("" on the sign-in host itself); `rd` where to come back after switching.
 */
export function ForbiddenPage(props: { appName: string; username: string; message?: string; signIn?: string; rd?: string; home?: { href: string; text: string } }) {
  const base = props.signIn ?? "";
  const back = props.rd ? `&rd=${encodeURIComponent(props.rd)}` : "";
  return (
    <MessagePage appName={props.appName} title="Access denied" message={props.message ?? "This account may not open this page."}>
      <p>
        {"Signed in as "}
        <strong safe>{props.username}</strong>.
      </p>
      <p class="actions">
        <a class="button" href={`${base}/logout?switch=1${back}`}>
          Switch account
        </a>
        <a class="button secondary" href={`${base}/logout`}>
          Sign out
        </a>
        {props.home ? (
          <a href={props.home.href} safe>
            {props.home.text}
          </a>
        ) : (
          ""
        )}
      </p>
    </MessagePage>
  );
}

/** "1 second", "2 seconds": a count with its noun, singular or plural. */
export const plural = (count: number | string, noun: string) => `${count} ${Number(count) === 1 ? noun : `${noun}s`}`;
