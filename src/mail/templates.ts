import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type MailConfig } from "../config";
import { ConfigError } from "../errors";
import { escapeHtml } from "../lib/html";

/**
 * The mails Latchkey sends, each a subject, a plain-text part and an HTML part with `{{placeholders}}`. The HTML
 * has no remote images or stylesheets (mail clients block them, and a remote image tells a tracker the mail was
 * opened). A folder named by MAIL_TEMPLATES_DIR may replace any part with `<kind>.subject.txt`, `<kind>.txt` or
 * `<kind>.html`; it is checked at start, so a typo stops the server instead of breaking a mail later.
 */

export const MAIL_KINDS = {
  verify_email: ["code", "link", "minutes"],
  password_reset: ["code", "link", "minutes"],
  login_code: ["code", "minutes"],
  email_change: ["code", "minutes", "new_email"],
  email_changed: ["new_email"],
  password_changed: [],
  second_factor_failures: ["count"],
  invitation: ["link", "expires"],
  sign_in_link: ["link", "minutes"],
} as const satisfies Record<string, readonly string[]>;

export type MailKind = keyof typeof MAIL_KINDS;
type Vars<K extends MailKind> = { [V in (typeof MAIL_KINDS)[K][number]]: string };
/** Every template may also use these. */
const COMMON = ["app_name", "public_url", "username"] as const;

interface Template {
  subject: string;
  text: string;
  html: string;
}

const wrap = (body: string) =>
  `<!doctype html><html><body style="font-family:sans-serif;line-height:1.5;color:#222">${body}` +
  `<p style="color:#777;font-size:small">{{app_name}} · <a href="{{public_url}}">{{public_url}}</a></p></body></html>`;
const footer = "\n\n-- \n{{app_name}} · {{public_url}}\n";
const codeHtml = `<p style="font-size:28px;font-weight:bold;letter-spacing:4px">{{code}}</p>`;

const DEFAULTS: Record<MailKind, Template> = {
  verify_email: {
    subject: "{{app_name}}: confirm your email address",
    text: "Hello {{username}},\n\nYour confirmation code is {{code}}\n\nOr open this link: {{link}}\n\nIt works for {{minutes}} minutes. If you did not create this account, ignore this mail." + footer,
    html: wrap(`<p>Hello {{username}},</p><p>Your confirmation code is</p>${codeHtml}<p>Or <a href="{{link}}">confirm your address</a>. It works for {{minutes}} minutes. If you did not create this account, ignore this mail.</p>`),
  },
  password_reset: {
    subject: "{{app_name}}: reset your password",
    text: "Hello {{username}},\n\nYour password reset code is {{code}}\n\nOr open this link: {{link}}\n\nIt works for {{minutes}} minutes, once. If you did not ask for it, ignore this mail: your password stays as it is." + footer,
    html: wrap(`<p>Hello {{username}},</p><p>Your password reset code is</p>${codeHtml}<p>Or <a href="{{link}}">choose a new password</a>. It works for {{minutes}} minutes, once. If you did not ask for it, ignore this mail: your password stays as it is.</p>`),
  },
  login_code: {
    subject: "{{app_name}}: your sign-in code",
    text: "Hello {{username}},\n\nYour sign-in code is {{code}}\n\nIt works for {{minutes}} minutes, once. If you are not signing in, someone knows your password: change it." + footer,
    html: wrap(`<p>Hello {{username}},</p><p>Your sign-in code is</p>${codeHtml}<p>It works for {{minutes}} minutes, once. If you are not signing in, someone knows your password: change it.</p>`),
  },
  email_change: {
    subject: "{{app_name}}: confirm your new email address",
    text: "Hello {{username}},\n\nTo make {{new_email}} the address of your account, enter the code {{code}}\n\nIt works for {{minutes}} minutes. If you did not ask for this, ignore this mail." + footer,
    html: wrap(`<p>Hello {{username}},</p><p>To make {{new_email}} the address of your account, enter the code</p>${codeHtml}<p>It works for {{minutes}} minutes. If you did not ask for this, ignore this mail.</p>`),
  },
  email_changed: {
    subject: "{{app_name}}: your email address was changed",
    text: "Hello {{username}},\n\nThe email address of your account is now {{new_email}}. If you did not do this, contact your administrator at once." + footer,
    html: wrap(`<p>Hello {{username}},</p><p>The email address of your account is now {{new_email}}. If you did not do this, contact your administrator at once.</p>`),
  },
  password_changed: {
    subject: "{{app_name}}: your password was changed",
    text: "Hello {{username}},\n\nThe password of your account was just changed. If you did not do this, reset it at once and contact your administrator." + footer,
    html: wrap(`<p>Hello {{username}},</p><p>The password of your account was just changed. If you did not do this, reset it at once and contact your administrator.</p>`),
  },
  second_factor_failures: {
    subject: "{{app_name}}: someone has your password",
    text: "Hello {{username}},\n\nSomeone signed in with your password and then gave {{count}} wrong second-step codes in a row. Whoever it is knows your password: change it now. Until then each further wrong code makes the second step wait longer, for you too." + footer,
    html: wrap(`<p>Hello {{username}},</p><p>Someone signed in with your password and then gave {{count}} wrong second-step codes in a row. Whoever it is knows your password: <strong>change it now</strong>. Until then each further wrong code makes the second step wait longer, for you too.</p>`),
  },
  // No account yet: {{username}} is empty in this one.
  invitation: {
    subject: "{{app_name}}: you are invited to create an account",
    text: "Hello,\n\nYou are invited to create an account on {{app_name}}. Open this link to choose your username and password:\n\n{{link}}\n\nIt works until {{expires}}. If you did not expect this, ignore this mail." + footer,
    html: wrap(`<p>Hello,</p><p>You are invited to create an account on {{app_name}}.</p><p><a href="{{link}}">Create your account</a></p><p>It works until {{expires}}. If you did not expect this, ignore this mail.</p>`),
  },
  sign_in_link: {
    subject: "{{app_name}}: sign in to add a new passkey",
    text: "Hello {{username}},\n\nSomeone (we hope you) lost a passkey and asked for this link. Open it to sign in once and add a new passkey:\n\n{{link}}\n\nIt works for {{minutes}} minutes, once. If you did not ask for it, ignore this mail." + footer,
    html: wrap(`<p>Hello {{username}},</p><p>Someone (we hope you) lost a passkey and asked for this link.</p><p><a href="{{link}}">Sign in and add a new passkey</a></p><p>It works for {{minutes}} minutes, once. If you did not ask for it, ignore this mail.</p>`),
  },
};

const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/g;
/** A reference the mail client would fetch: src=, background=, srcset=, CSS url() or @import of a remote or relative URL. */
const REMOTE_RESOURCE = /\b(src|background|srcset)\s*=\s*["']?\s*(?!data:|cid:)[^"'\s>]|url\s*\(\s*["']?\s*(?!data:)|@import/i;

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}


function checkTemplate(kind: MailKind, part: string, source: string, file: string): void {
  const allowed = new Set<string>([...COMMON, ...MAIL_KINDS[kind]]);
  for (const [, name] of source.matchAll(PLACEHOLDER))
    if (!allowed.has(name!)) throw new ConfigError(`MAIL_TEMPLATES_DIR: ${file} uses {{${name}}}, which ${kind} mails do not have (they have ${[...allowed].join(", ")})`);
  if (part === "html" && REMOTE_RESOURCE.test(source))
    throw new ConfigError(`MAIL_TEMPLATES_DIR: ${file} loads a remote resource (an image, stylesheet or url()): mails carry none`);
  if (part === "subject" && /[\r\n]/.test(source.trim())) throw new ConfigError(`MAIL_TEMPLATES_DIR: ${file} must be one line`);
}

/** The built-in templates with MAIL_TEMPLATES_DIR's files in their place; ConfigError names the file at fault. */
export function loadTemplates(config: Pick<MailConfig, "templatesDir" | "appName">, publicUrl: string) {
  const templates = structuredClone(DEFAULTS);
  const dir = config.templatesDir;
  if (dir !== undefined) {
    let files: string[];
    try {
      files = readdirSync(dir);
    } catch (error) {
      throw new ConfigError(`MAIL_TEMPLATES_DIR=${dir} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    for (const file of files) {
      const match = /^([a-z_]+)\.(subject\.txt|txt|html)$/.exec(file);
      const kind = match?.[1] as MailKind | undefined;
      if (!match || !kind || !(kind in MAIL_KINDS))
        throw new ConfigError(`MAIL_TEMPLATES_DIR: ${file} is not a template name: expected <kind>.subject.txt, <kind>.txt or <kind>.html with kind one of ${Object.keys(MAIL_KINDS).join(", ")}`);
      const part = match[2] === "subject.txt" ? "subject" : match[2] === "txt" ? "text" : "html";
      const source = readFileSync(join(dir, file), "utf8");
      checkTemplate(kind, part, source, file);
      templates[kind][part] = part === "subject" ? source.trim() : source;
    }
  }

  return {
    render<K extends MailKind>(kind: K, vars: Vars<K> & { username: string }): RenderedMail {
      const values: Record<string, string> = { app_name: config.appName, public_url: publicUrl, ...vars };
      const fill = (source: string, escape: (raw: string) => string) => source.replace(PLACEHOLDER, (_, name: string) => escape(values[name] ?? ""));
      const template = templates[kind];
      return { subject: fill(template.subject, (raw) => raw.replace(/[\r\n]+/g, " ")), text: fill(template.text, (raw) => raw), html: fill(template.html, escapeHtml) };
    },
  };
}
