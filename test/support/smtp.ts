import { afterAll, beforeAll } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { freePort } from "./server";

/**
 * A real SMTP server for the suite (the `smtp-server` package) on loopback: STARTTLS on one port, implicit TLS
 * on another, both with a self-signed certificate made here by openssl (its own CA: pass `caFile` as
 * SMTP_TLS_CA_FILE), both requiring AUTH PLAIN/LOGIN with USER/PASSWORD. Received mails are parsed with mailparser.
 */

export const SMTP_USER = "mailer";
export const SMTP_PASSWORD = "smtp secret";

export interface ReceivedMail {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Whether the session that carried it was encrypted. */
  secure: boolean;
  raw: string;
}

export interface TestCertificate {
  dir: string;
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/** A self-signed certificate for 127.0.0.1 and localhost (CA:TRUE, so it is its own trust anchor). */
export function makeCertificate(): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-smtp-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  const result = Bun.spawnSync([
    "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-addext", "basicConstraints=critical,CA:TRUE", "-keyout", keyFile, "-out", certFile,
  ], { stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`openssl failed (apt-get install openssl): ${result.stderr.toString()}`);
  return { dir, certFile, keyFile, cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
}

export interface MailCatcher {
  /** STARTTLS port (plain first, TLS after STARTTLS). */
  starttlsPort: number;
  /** Implicit TLS port. */
  tlsPort: number;
  mails: ReceivedMail[];
  /** Resolves with the first mail (received so far or later) for which `match` holds. */
  waitForMail(match: (mail: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>;
  stop(): Promise<void>;
}

/** Starts both listeners; `ports` lets a test bring a server up on ports chosen earlier (an SMTP server "coming back"). */
export async function startMailCatcher(certificate: TestCertificate, ports: { starttlsPort?: number; tlsPort?: number } = {}): Promise<MailCatcher> {
  const mails: ReceivedMail[] = [];
  const waiters = new Set<{ match: (mail: ReceivedMail) => boolean; resolve: (mail: ReceivedMail) => void }>();
  const make = (secure: boolean) =>
    new SMTPServer({
      secure,
      key: certificate.key,
      cert: certificate.cert,
      authMethods: ["PLAIN", "LOGIN"],
      // Credentials only over TLS, as a real submission server (RFC 8314): a client that skipped STARTTLS fails.
      allowInsecureAuth: false,
      logger: false,
      onAuth(auth, _session, callback) {
        if (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD) callback(null, { user: auth.username });
        else callback(new Error("Invalid username or password"));
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", async () => {
          const raw = Buffer.concat(chunks).toString("utf8");
          const parsed = await simpleParser(raw);
          const mail: ReceivedMail = {
            to: session.envelope.rcptTo.map((rcpt) => rcpt.address).join(","),
            subject: parsed.subject ?? "",
            text: parsed.text ?? "",
            html: typeof parsed.html === "string" ? parsed.html : "",
            secure: session.secure,
            raw,
          };
          mails.push(mail);
          for (const waiter of waiters) if (waiter.match(mail)) (waiters.delete(waiter), waiter.resolve(mail));
          callback();
        });
      },
    });
  const starttlsPort = ports.starttlsPort ?? freePort();
  const tlsPort = ports.tlsPort ?? freePort();
  const plain = make(false);
  const tls = make(true);
  await Promise.all([
    new Promise<void>((resolve, reject) => (plain.once("error", reject), plain.listen(starttlsPort, "127.0.0.1", () => resolve()))),
    new Promise<void>((resolve, reject) => (tls.once("error", reject), tls.listen(tlsPort, "127.0.0.1", () => resolve()))),
  ]);
  return {
    starttlsPort,
    tlsPort,
    mails,
    waitForMail(match, timeoutMs = 10_000) {
      const found = mails.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = { match, resolve: (mail: ReceivedMail) => (clearTimeout(timer), resolve(mail)) };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching mail within ${timeoutMs} ms; received: ${JSON.stringify(mails.map((mail) => [mail.to, mail.subject]))}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    async stop() {
      await Promise.all([new Promise<void>((resolve) => plain.close(() => resolve())), new Promise<void>((resolve) => tls.close(() => resolve()))]);
    },
  };
}

/** The 6-digit code in a mail's text. */
export function codeIn(mail: ReceivedMail): string {
  const match = /\b(\d{6})\b/.exec(mail.text);
  if (!match) throw new Error(`no code in: ${mail.text}`);
  return match[1]!;
}

/** The first link to `path` in a mail's text. */
export function linkIn(mail: ReceivedMail, path: string): string {
  const match = new RegExp(`https?://\\S+${path.replace(/[/?]/g, "\\$&")}\\?token=[\\w%-]+`).exec(mail.text);
  if (!match) throw new Error(`no ${path} link in: ${mail.text}`);
  return match[0];
}

export function removeCertificate(certificate: TestCertificate): void {
  rmSync(certificate.dir, { recursive: true, force: true });
}

/** The environment that points the binary at a catcher. */
export function smtpEnv(catcher: Pick<MailCatcher, "starttlsPort" | "tlsPort">, certificate: TestCertificate, implicitTls = false): Record<string, string> {
  const credentials = `${SMTP_USER}:${encodeURIComponent(SMTP_PASSWORD)}`;
  return {
    SMTP_URL: implicitTls ? `smtps://${credentials}@127.0.0.1:${catcher.tlsPort}` : `smtp://${credentials}@127.0.0.1:${catcher.starttlsPort}`,
    SMTP_TLS_CA_FILE: certificate.certFile,
    MAIL_FROM: "Latchkey Test <auth@example.test>",
  };
}

/** A certificate and a mail catcher for the whole test file that calls this (started in beforeAll, stopped in afterAll). */
export function mailCatcherForFile(): { certificate: TestCertificate; catcher: MailCatcher } {
  const shared = {} as { certificate: TestCertificate; catcher: MailCatcher };
  beforeAll(async () => {
    shared.certificate = makeCertificate();
    shared.catcher = await startMailCatcher(shared.certificate);
  });
  afterAll(async () => {
    await shared.catcher?.stop();
    if (shared.certificate) removeCertificate(shared.certificate);
  });
  return shared;
}
