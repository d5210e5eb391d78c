import nodemailer from "nodemailer";
import type { MailConfig } from "../config";
import type { RenderedMail } from "./templates";

export interface OutgoingMail extends RenderedMail {
  to: string;
}

/** Delivers one mail or throws; the outbox retries. */
export type MailTransport = (mail: OutgoingMail) => Promise<void>;

/**
 * SMTP through nodemailer, one connection per mail: its pooled transport leaves sockets open on Bun, and a mail
 * every few seconds at most gains nothing from a pool. STARTTLS is used whenever the server offers it
 * (`requireTLS` insists with ?starttls=required); smtps:// speaks TLS from the first byte. Certificates are always
 * verified, against SMTP_TLS_CA_FILE when given.
 */
export function smtpTransport(config: MailConfig): MailTransport {
  const smtp = config.transport;
  if (smtp.kind !== "smtp") throw new Error("not an SMTP configuration");
  const transporter = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.tls === "implicit",
    requireTLS: smtp.tls === "starttls-required",
    auth: smtp.user === undefined ? undefined : { user: smtp.user, pass: smtp.password ?? "" },
    tls: { ca: smtp.ca, rejectUnauthorized: true },
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return async (mail) => {
    await transporter.sendMail({ from: config.from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
  };
}

/** MAIL_TRANSPORT=log: each mail as one JSON line on stdout (recipient, subject and the text part with its code and link). */
export function logTransport(print: (line: string) => void = console.log): MailTransport {
  return async (mail) => print(JSON.stringify({ type: "mail", to: mail.to, subject: mail.subject, text: mail.text }));
}
