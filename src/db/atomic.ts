/**
 * Work that must see and change the database as one step (a refresh rotation, a throttle, a last-admin check),
 * written once for both engines.
 *
 * The body is a generator that yields its queries (`yield* row(...)`, `rows`, `changes`) instead of awaiting
 * them. On SQLite the runner answers each one synchronously, so the whole body runs inside one BEGIN IMMEDIATE
 * without giving the event loop back: nothing else of this process can slip a statement into the transaction
 * (one connection serves every request), and SQLite's single writer orders it against other processes: today's
 * guarantees and speed, unchanged. On PostgreSQL the runner awaits each query on the transaction's own connection,
 * in a SERIALIZABLE transaction: PostgreSQL then guarantees the outcome of some serial order of the concurrent
 * transactions (the guarantee SQLite's single writer gives), aborting one of two that conflict with a
 * serialization failure (40001), which runs again from the start here. So each body must be free of side effects
 * outside the database; every caller says, where it calls, what the serial order protects.
 */
import { PgDatabase } from "drizzle-orm/pg-core";
import type { Pending } from "../lib/pending";
import type { Db } from "./client";

/** A query builder (awaitable) or a prepared statement (`execute`), with SQLite's synchronous runners. */
interface Query {
  all(params?: Params): unknown[];
  get(params?: Params): unknown;
  run(params?: Params): unknown;
  execute?(params?: Params): Promise<unknown>;
  then?: PromiseLike<unknown>["then"];
}
type Params = Record<string, unknown>;
type Want = "rows" | "row" | "changes";
type Ask = { query: Query; want: Want; params?: Params };

/** A body's steps: each yields a query and gets back its answer. */
export type Atomic<T> = Generator<Ask, T, unknown>;

/** The rows of a select (or of a write's `returning`); `params` fill a prepared statement's placeholders. */
export function* rows<T>(query: { all(params?: Params): T[] }, params?: Params): Atomic<T[]> {
  return (yield { query: query as unknown as Query, want: "rows", params }) as T[];
}

/** The first row of a select (or of a write's `returning`), or undefined. */
export function* row<T>(query: { get(params?: Params): T | undefined }, params?: Params): Atomic<T | undefined> {
  return (yield { query: query as unknown as Query, want: "row", params }) as T | undefined;
}

/** How many rows a write changed. */
export function* changes(query: { run(params?: Params): unknown }, params?: Params): Atomic<number> {
  return (yield { query: query as unknown as Query, want: "changes", params }) as number;
}

/** Rows changed by an executed write: bun:sqlite says `changes`, postgres.js `count`. */
export function changedRows(result: unknown): number {
  const { changes, count } = result as { changes?: number; count?: number };
  return changes ?? count ?? 0;
}

export const isPostgres = (db: Db): boolean => (db as unknown) instanceof PgDatabase;

function answerNow({ query, want, params }: Ask): unknown {
  if (want === "rows") return query.all(params);
  if (want === "row") return query.get(params);
  return changedRows(query.run(params));
}

async function answerLater({ query, want, params }: Ask): Promise<unknown> {
  // A builder runs when awaited; a prepared statement (not awaitable) runs with its placeholders filled.
  const result = query.then ? await (query as PromiseLike<unknown>) : await query.execute!(params);
  if (want === "rows") return result;
  if (want === "row") return (result as unknown[])[0];
  return changedRows(result);
}

function runNow<T>(body: Atomic<T>): T {
  let step = body.next();
  while (!step.done) step = body.next(answerNow(step.value));
  return step.value;
}

async function runLater<T>(body: Atomic<T>, first?: Ask): Promise<T> {
  let step = first ? body.next(await answerLater(first)) : body.next();
  while (!step.done) step = body.next(await answerLater(step.value));
  return step.value;
}

/** How often a PostgreSQL transaction that lost a serialization conflict runs again before the error stands. */
const SERIALIZATION_RETRIES = 20;

/** PostgreSQL's "could not serialize access" (40001) and deadlock (40P01): the transaction may simply run again. */
function lostConflict(error: unknown): boolean {
  for (let cause = error as { code?: unknown; cause?: unknown } | undefined; cause; cause = cause.cause as typeof cause)
    if (cause.code === "40001" || cause.code === "40P01") return true;
  return false;
}

/** Runs `body` as one transaction (see above), on either engine. */
export async function transaction<T>(db: Db, body: (tx: Db) => Atomic<T>): Promise<T> {
  if (!isPostgres(db)) return db.transaction((tx) => runNow(body(tx as unknown as Db)), { behavior: "immediate" });
  const pg = db as unknown as PgDatabase<never>;
  for (let attempt = 1; ; attempt++) {
    try {
      return await pg.transaction((tx) => runLater(body(tx as unknown as Db)), { isolationLevel: "serializable" });
    } catch (error) {
      if (attempt >= SERIALIZATION_RETRIES || !lostConflict(error)) throw error;
    }
  }
}

/**
 * Runs `body` outside a transaction: synchronously on SQLite (the hot paths' cache misses stay off the event loop's
 * queue there), and on PostgreSQL synchronously up to its first query, then as a promise: a body that answers from
 * a cache without asking the database stays synchronous on both engines.
 */
export function run<T>(db: Db, body: (db: Db) => Atomic<T>): Pending<T> {
  const steps = body(db);
  if (!isPostgres(db)) return runNow(steps);
  const first = steps.next();
  return first.done ? first.value : runLater(steps, first.value);
}
