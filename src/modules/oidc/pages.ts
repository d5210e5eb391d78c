/** The provider's own pages (consent, errors, sign-out): small server-rendered HTML with no script. */

/** Pages run no script and load nothing; the consent form posts to this server, which then redirects to the client. */
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'";

export const escapeHtml = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("'", "&#39;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

const STYLE = `
  body { font: 16px/1.5 system-ui, sans-serif; background: #f4f5f7; color: #1d2330; margin: 0; }
  main { max-width: 26rem; margin: 4rem auto; background: #fff; border-radius: 10px; padding: 2rem; box-shadow: 0 2px 12px #0001; }
  h1 { font-size: 1.3rem; margin-top: 0; }
  ul { padding-left: 1.2rem; }
  .actions { display: flex; gap: .75rem; margin-top: 1.5rem; }
  button { font: inherit; padding: .6rem 1.2rem; border-radius: 6px; border: 1px solid #c5cad3; background: #fff; cursor: pointer; }
  button.primary { background: #2457d6; border-color: #2457d6; color: #fff; }
  .muted { color: #5b6475; font-size: .9rem; }
  code { background: #eef0f4; padding: 0 .25rem; border-radius: 3px; }`;

export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)} · Latchkey</title>
<link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body><main>${body}</main></body>
</html>
`;
}

export function messagePage(title: string, message: string): string {
  return htmlPage(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`);
}

/** What the client will receive, in words, for the consent page. */
function sharedItems(user: { username: string; email: string | null; roles: string[] }): string[] {
  const items = [`your user id and username (<code>${escapeHtml(user.username)}</code>)`];
  if (user.email) items.push(`your email address (<code>${escapeHtml(user.email)}</code>)`);
  items.push(user.roles.length ? `your groups (<code>${escapeHtml(user.roles.join(", "))}</code>)` : "your groups (none)");
  return items;
}

export function consentPage(input: { clientId: string; user: { username: string; email: string | null; roles: string[] }; request: string; csrf: string }): string {
  const items = sharedItems(input.user).map((item) => `<li>${item}</li>`).join("");
  return htmlPage(
    `Allow ${input.clientId}?`,
    `<h1>Allow <code>${escapeHtml(input.clientId)}</code> to sign you in?</h1>
<p>Signed in as <strong>${escapeHtml(input.user.username)}</strong>. The application will receive:</p>
<ul>${items}</ul>
<form method="post" action="/oidc/authorize/consent">
<input type="hidden" name="request" value="${escapeHtml(input.request)}">
<input type="hidden" name="csrf" value="${escapeHtml(input.csrf)}">
<div class="actions"><button class="primary" type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></div>
</form>
<p class="muted">You can withdraw this on your account page.</p>`,
  );
}

export function logoutConfirmPage(input: { fields: Record<string, string>; csrf: string; username: string }): string {
  const hidden = Object.entries(input.fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join("");
  return htmlPage(
    "Sign out",
    `<h1>Sign out of Latchkey?</h1><p>You are signed in as <strong>${escapeHtml(input.username)}</strong>.</p>
<form method="post" action="/oidc/logout">${hidden}<input type="hidden" name="csrf" value="${escapeHtml(input.csrf)}">
<div class="actions"><button class="primary" type="submit" name="confirm" value="yes">Sign out</button></div></form>`,
  );
}
