import { and, asc, eq, lte } from "drizzle-orm";
import { changedRows, type Db } from "../db/client";
import { mailOutbox } from "../db/schema";
import { seal, unseal } from "../lib/crypto";
import type { OutgoingMail, MailTransport } from "./transport";
import type { MailKind } from "./templates";

export interface OutboxSettings {
  /** First retry after this many seconds, doubling up to RETRY_CAP_MS. */
  retryInterval: number;
  maxAttempts: number;
  dataKey: Uint8Array;
}

export interface DroppedMail {
  id: string;
  kind: string;
  userId: string | null;
  attempts: number;
  error: string;
}

/**
 * Retries wait at most a minute: an SMTP server that comes back after an outage gets the queued mail within a
 * minute. With the default 15 attempts from 5 s, a mail is given up after about 12 minutes, when the codes it
 * carries (10-15 minutes) are about to expire anyway.
 */
const RETRY_CAP_MS = 60_000;
/** A mail being sent is leased this long, so a second server process on the same database does not send it too. */
const LEASE_MS = 120_000;
const POLL_MS = 1000;
const BATCH = 20;
const SEAL_CONTEXT = "latchkey/mail-outbox/v1";

/**
 * The database outbox. `enqueue` is one INSERT (the request never waits for SMTP); the sender, started by the
 * server, delivers due mail one at a time, deletes each once sent, and after `maxAttempts` failures drops it and
 * reports it through `onDrop` (one log line and an audit event).
 */
export function createOutbox(db: Db, transport: MailTransport, settings: OutboxSettings, onDrop: (mail: DroppedMail) => void) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let stopped = true;
  let idle: Promise<void> = Promise.resolve();

  const backoffMs = (attempts: number) => Math.min(settings.retryInterval * 1000 * 2 ** (attempts - 1), RETRY_CAP_MS);

  async function deliverDue(): Promise<void> {
    const now = Date.now();
    const due = db
      .select()
      .from(mailOutbox)
      .where(lte(mailOutbox.nextAttemptAt, new Date(now)))
      .orderBy(asc(mailOutbox.nextAttemptAt))
      .limit(BATCH)
      .all();
    for (const row of due) {
      if (stopped) return;
      const leased = db
        .update(mailOutbox)
        .set({ nextAttemptAt: new Date(Date.now() + LEASE_MS) })
        .where(and(eq(mailOutbox.id, row.id), eq(mailOutbox.nextAttemptAt, row.nextAttemptAt)))
        .run();
      if (changedRows(leased) !== 1) continue;
      const attempts = row.attempts + 1;
      let error: string;
      const plain = unseal(settings.dataKey, row.payload, SEAL_CONTEXT);
      if (plain === undefined) {
        // Sealed under another JWT_SECRET: it can never be read again.
        onDrop({ id: row.id, kind: row.kind, userId: row.userId, attempts: row.attempts, error: "sealed with another key (JWT_SECRET changed)" });
        db.delete(mailOutbox).where(eq(mailOutbox.id, row.id)).run();
        continue;
      }
      try {
        await transport(JSON.parse(plain) as OutgoingMail);
        db.delete(mailOutbox).where(eq(mailOutbox.id, row.id)).run();
        continue;
      } catch (caught) {
        error = String((caught as Error)?.message ?? caught).slice(0, 500);
      }
      if (attempts >= settings.maxAttempts) {
        db.delete(mailOutbox).where(eq(mailOutbox.id, row.id)).run();
        onDrop({ id: row.id, kind: row.kind, userId: row.userId, attempts, error });
      } else {
        db.update(mailOutbox)
          .set({ attempts, lastError: error, nextAttemptAt: new Date(Date.now() + backoffMs(attempts)) })
          .where(eq(mailOutbox.id, row.id))
          .run();
      }
    }
  }

  function schedule(delayMs: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(tick, delayMs);
  }

  function tick(): void {
    if (running || stopped) return;
    running = true;
    idle = deliverDue()
      .catch((error) => console.error(JSON.stringify({ level: "error", event: "mail_outbox_error", error: String(error) })))
      .finally(() => {
        running = false;
        schedule(POLL_MS);
      });
  }

  return {
    /** Queues a mail; the sender is woken at once. */
    enqueue(kind: MailKind, userId: string | null, mail: OutgoingMail): void {
      db.insert(mailOutbox)
        .values({
          id: Bun.randomUUIDv7(),
          kind,
          userId,
          payload: seal(settings.dataKey, JSON.stringify(mail), SEAL_CONTEXT),
          nextAttemptAt: new Date(),
        })
        .run();
      if (!stopped && !running) schedule(0);
    },

    start(): void {
      stopped = false;
      schedule(0);
    },

    /** Stops polling and waits for the mail being sent, if any. */
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await idle;
    },
  };
}
