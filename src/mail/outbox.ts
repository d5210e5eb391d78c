import { and, asc, count, eq, inArray, lte } from "drizzle-orm";
import { changedRows, isPostgres } from "../db/atomic";
import type { Db } from "../db/client";
import { mailOutbox } from "../db/tables";
import { databaseUnavailable } from "../errors";
import { seal, unseal } from "../lib/crypto";
import type { OutgoingMail, MailTransport } from "./transport";

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
 * Queues `payload` (sealed under `dataKey`) for the outbox of whichever server runs on `db`: the outbox's own
 * enqueue, and the CLI's (a running server delivers it at its next poll).
 */
export async function insertOutboxRow(db: Db, dataKey: Uint8Array, kind: string, userId: string | null, payload: unknown): Promise<void> {
  await db.insert(mailOutbox).values({
    id: Bun.randomUUIDv7(),
    kind,
    userId,
    payload: seal(dataKey, JSON.stringify(payload), SEAL_CONTEXT),
    nextAttemptAt: new Date(),
  });
}

/**
 * The database outbox. `enqueue` is one INSERT (the request never waits for SMTP); the sender, started by the
 * server, delivers due mail one at a time, deletes each once sent, and after `maxAttempts` failures drops it and
 * reports it through `onDrop` (one log line and an audit event). Kinds given a handler with `handle` are other
 * deliveries that need the same guarantees (back-channel logout notices): retried, leased, kept across restarts.
 */
export function createOutbox(
  db: Db,
  transport: MailTransport,
  settings: OutboxSettings,
  onDrop: (mail: DroppedMail) => Promise<void>,
  onAttempt: (sent: boolean) => void = () => {},
) {
  const handlers = new Map<string, (payload: unknown) => Promise<void>>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let stopped = true;
  let idle: Promise<void> = Promise.resolve();

  const backoffMs = (attempts: number) => Math.min(settings.retryInterval * 1000 * 2 ** (attempts - 1), RETRY_CAP_MS);

  /**
   * Leases up to BATCH due mails to this process, which alone sends them until the lease ends. PostgreSQL: one
   * UPDATE of the rows a `SELECT ... FOR UPDATE SKIP LOCKED` picked, so instances polling together each get other
   * rows and none waits for another's. SQLite: one server owns the file; each row is leased with a
   * compare-and-set on its due time, which a second process on the same file (a restart overlapping the old
   * one) loses.
   */
  async function claimDue(): Promise<(typeof mailOutbox.$inferSelect)[]> {
    const now = new Date();
    const leaseEnd = new Date(now.getTime() + LEASE_MS);
    const isDue = lte(mailOutbox.nextAttemptAt, now);
    if (isPostgres(db)) {
      const due = db.select({ id: mailOutbox.id }).from(mailOutbox).where(isDue).orderBy(asc(mailOutbox.nextAttemptAt)).limit(BATCH);
      // `for` is the PostgreSQL builder's (the tables are typed as SQLite's: db/tables.ts).
      const locked = (due as unknown as { for(strength: "update", config: { skipLocked: true }): typeof due }).for("update", { skipLocked: true });
      return db.update(mailOutbox).set({ nextAttemptAt: leaseEnd }).where(inArray(mailOutbox.id, locked)).returning();
    }
    const leased: (typeof mailOutbox.$inferSelect)[] = [];
    for (const row of await db.select().from(mailOutbox).where(isDue).orderBy(asc(mailOutbox.nextAttemptAt)).limit(BATCH)) {
      const won = await db
        .update(mailOutbox)
        .set({ nextAttemptAt: leaseEnd })
        .where(and(eq(mailOutbox.id, row.id), eq(mailOutbox.nextAttemptAt, row.nextAttemptAt)));
      if (changedRows(won) === 1) leased.push(row);
    }
    return leased;
  }

  async function deliverDue(): Promise<void> {
    for (const row of await claimDue()) {
      // Stopping: the rest of the batch stays leased and goes out after the lease, from whichever instance runs.
      if (stopped) return;
      const attempts = row.attempts + 1;
      let error: string | undefined;
      const plain = unseal(settings.dataKey, row.payload, SEAL_CONTEXT);
      if (plain === undefined) {
        // Sealed under another JWT_SECRET: it can never be read again.
        await onDrop({ id: row.id, kind: row.kind, userId: row.userId, attempts: row.attempts, error: "sealed with another key (JWT_SECRET changed)" });
        await db.delete(mailOutbox).where(eq(mailOutbox.id, row.id));
        continue;
      }
      try {
        const payload: unknown = JSON.parse(plain);
        const handler = handlers.get(row.kind);
        await (handler ? handler(payload) : transport(payload as OutgoingMail));
      } catch (caught) {
        error = String((caught as Error)?.message ?? caught).slice(0, 500);
      }
      // The mail counters count mail: a back-channel notice is another kind of delivery.
      if (!handlers.has(row.kind)) onAttempt(error === undefined);
      if (error === undefined) {
        await db.delete(mailOutbox).where(eq(mailOutbox.id, row.id));
        continue;
      }
      if (attempts >= settings.maxAttempts) {
        await db.delete(mailOutbox).where(eq(mailOutbox.id, row.id));
        await onDrop({ id: row.id, kind: row.kind, userId: row.userId, attempts, error });
      } else {
        await db
          .update(mailOutbox)
          .set({ attempts, lastError: error, nextAttemptAt: new Date(Date.now() + backoffMs(attempts)) })
          .where(eq(mailOutbox.id, row.id));
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
      // The database's reason when it is away (drizzle's own message lists the query's values).
      .catch((error) => console.error(JSON.stringify({ level: "error", event: "mail_outbox_error", error: databaseUnavailable(error) ?? String(error) })))
      .finally(() => {
        running = false;
        schedule(POLL_MS);
      });
  }

  return {
    /** Queues a mail (or another kind's payload, for its handler); the sender is woken at once. */
    async enqueue(kind: string, userId: string | null, payload: unknown): Promise<void> {
      await insertOutboxRow(db, settings.dataKey, kind, userId, payload);
      if (!stopped && !running) schedule(0);
    },

    /** Delivers `kind` with `deliver` instead of the mail transport (which throws to have it retried). */
    handle(kind: string, deliver: (payload: unknown) => Promise<void>): void {
      handlers.set(kind, deliver);
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

/** Mails waiting in the outbox (due or not), on every instance of the database: for /metrics. */
export async function outboxDepth(db: Db): Promise<number> {
  return (await db.select({ n: count() }).from(mailOutbox))[0]?.n ?? 0;
}
