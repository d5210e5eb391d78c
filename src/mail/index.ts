import type { Config } from "../config";
import type { Db } from "../db/client";
import { sha256Hex } from "../lib/crypto";
import { createOutbox, type DroppedMail } from "./outbox";
import { loadTemplates, type MailKind, MAIL_KINDS } from "./templates";
import { logTransport, smtpTransport } from "./transport";

/** One mail a minute per address at most, for the mails a request can ask for (codes and links; not notices). */
const PER_ADDRESS_INTERVAL_MS = 60_000;
const MAX_REMEMBERED_ADDRESSES = 10_000;

/** The address's key in the per-address throttle (no address kept in memory in the clear). */
const addressKey = (address: string) => sha256Hex(`mail|${address.toLowerCase()}`);

type Vars<K extends MailKind> = { [V in (typeof MAIL_KINDS)[K][number]]: string };

/**
 * What the modules use to send mail: renders a template and queues it in the outbox. `enabled` is false without
 * SMTP_URL or MAIL_TRANSPORT=log; the flows that need mail then answer `mail_disabled`.
 */
export function createMailer(
  config: Config,
  db: Db,
  dataKey: Uint8Array,
  onDrop: (mail: DroppedMail) => Promise<void>,
  onAttempt?: (sent: boolean) => void,
) {
  const mail = config.mail;
  const templates = loadTemplates(mail, config.publicUrl);
  const transport =
    mail.transport.kind === "smtp"
      ? smtpTransport(mail)
      : mail.transport.kind === "log"
        ? logTransport()
        : async () => {
            throw new Error("no mail transport is configured");
          };
  const outbox = createOutbox(db, transport, { retryInterval: mail.retryInterval, maxAttempts: mail.maxAttempts, dataKey }, onDrop, onAttempt);
  const lastSent = new Map<string, number>();

  return {
    enabled: mail.transport.kind !== "none",
    outbox,

    /**
     * Claims this address's one mail of this kind for the minute; refused when one already went there within the
     * minute. Per kind, so that a verification mail does not hold up a reset mail. In memory: a restart forgets
     * it, which costs at most one extra mail.
     */
    claimAddress(kind: MailKind, address: string): { allowed: true } | { allowed: false; retryAfter: number } {
      const key = `${kind}|${addressKey(address)}`;
      const now = Date.now();
      const last = lastSent.get(key) ?? 0;
      if (now - last < PER_ADDRESS_INTERVAL_MS) return { allowed: false, retryAfter: Math.ceil((last + PER_ADDRESS_INTERVAL_MS - now) / 1000) };
      if (lastSent.size >= MAX_REMEMBERED_ADDRESSES)
        for (const [entry, time] of lastSent) if (now - time >= PER_ADDRESS_INTERVAL_MS) lastSent.delete(entry);
      lastSent.set(key, now);
      return { allowed: true };
    },

    /** `user.id` null: a mail to someone without an account yet (an invitation). */
    async send<K extends MailKind>(kind: K, to: string, user: { id: string | null; username: string }, vars: Vars<K>): Promise<void> {
      await outbox.enqueue(kind, user.id, { to, ...templates.render(kind, { ...vars, username: user.username }) });
    },
  };
}

export type Mailer = ReturnType<typeof createMailer>;
