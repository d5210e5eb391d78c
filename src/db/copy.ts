/**
 * `latchkey migrate-db` (issue 11): copies every table of an SQLite instance into an empty PostgreSQL database.
 * The source is read inside one SQLite read transaction: in WAL mode that is one snapshot, consistent across
 * tables, while the server keeps writing (what it writes afterwards is not copied). The target is written in one
 * PostgreSQL transaction: a failure anywhere leaves it as empty as it was. Rows travel through drizzle on both
 * sides, so each engine's own column mapping carries the values (milliseconds to timestamptz(3), 0/1 to boolean,
 * JSON text to jsonb). The tables and their order come from the two schemas, never from a list kept by hand.
 */
import { count, DrizzleQueryError, getTableColumns, getTableName, sql, type Column } from "drizzle-orm";
import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { getTableConfig, PgTable, type PgColumn } from "drizzle-orm/pg-core";
import { SQLiteTable } from "drizzle-orm/sqlite-core";
import postgres from "postgres";
import type { Db } from "./client";
import { migratePostgres } from "./postgres";
import * as sqliteSchema from "./schema";
import * as pgSchema from "./schema-postgres";

/** The target already holds Latchkey data: copying into it would merge two instances. */
export class TargetNotEmptyError extends Error {}

/** One table both engines have, and how a row goes from one to the other. */
interface TablePair {
  name: string;
  source: SQLiteTable;
  target: PgTable;
  /** [source property, target property, target column], matched by column name (the twins test keeps them equal). */
  columns: [string, string, PgColumn][];
  /** Target columns referring to their own table (sessions.parent_id): filled in once every row is in. */
  selfReferences: PgColumn[];
  /** The target's identity column (audit_events.id): explicit values need OVERRIDING SYSTEM VALUE. */
  identity: PgColumn | undefined;
}

export interface CopyResult {
  /** Rows per table, in copy order: the source snapshot's count, which the target's count was checked against. */
  tables: { name: string; rows: number }[];
  secretCarried: boolean;
}

/**
 * The tables in foreign-key order: each after every table it references (a reference to itself aside), the
 * schema's own order otherwise. A cycle between tables could not be inserted table by table: it throws.
 */
export function foreignKeyOrder(tables: PgTable[]): PgTable[] {
  const ordered: PgTable[] = [];
  const visiting = new Set<PgTable>();
  const visit = (table: PgTable) => {
    if (ordered.includes(table)) return;
    if (visiting.has(table)) throw new Error(`the foreign keys of ${getTableName(table)} form a cycle`);
    visiting.add(table);
    for (const key of getTableConfig(table).foreignKeys) {
      const referenced = key.reference().foreignTable;
      if (referenced !== table) visit(referenced);
    }
    visiting.delete(table);
    ordered.push(table);
  };
  for (const table of tables) visit(table);
  return ordered;
}

const tablesOf = <T>(schema: Record<string, unknown>, kind: abstract new (...args: never[]) => T): T[] =>
  Object.values(schema).filter((value): value is T => value instanceof kind);

/** Every SQLite table with its PostgreSQL twin, in the order they are copied. */
export function copyPlan(): TablePair[] {
  const sources = new Map(tablesOf(sqliteSchema, SQLiteTable).map((table) => [getTableName(table), table]));
  const targets = foreignKeyOrder(tablesOf(pgSchema, PgTable).filter((table) => sources.has(getTableName(table))));
  if (targets.length !== sources.size) throw new Error("an SQLite table has no PostgreSQL twin (test/unit/schema-twins.test.ts)");
  return targets.map((target) => {
    const name = getTableName(target);
    const source = sources.get(name)!;
    const targetColumns = Object.entries(getTableColumns(target));
    const columns = Object.entries(getTableColumns(source)).map(([property, column]): [string, string, PgColumn] => {
      const twin = targetColumns.find(([, candidate]) => candidate.name === column.name);
      if (!twin) throw new Error(`${name}.${column.name} has no PostgreSQL twin`);
      return [property, twin[0], twin[1]];
    });
    const selfReferences = getTableConfig(target)
      .foreignKeys.map((key) => key.reference())
      .filter((reference) => reference.foreignTable === target)
      .flatMap((reference) => reference.columns);
    for (const column of selfReferences) if (column.notNull) throw new Error(`${name}.${column.name} refers to its own table and cannot be null`);
    return { name, source, target, columns, selfReferences, identity: targetColumns.find(([, column]) => column.generatedIdentity)?.[1] };
  });
}

/**
 * Rows per INSERT: one statement per batch, not per row (an instance may hold 100,000 users), and far below
 * PostgreSQL's 65,535 parameters per statement whatever the table's width.
 */
const BATCH_ROWS = 1000;
const batchSize = (columns: number) => Math.max(1, Math.min(BATCH_ROWS, Math.floor(60_000 / columns)));

/** Serialises two migrate-db runs into one database: the second finds the first's rows and is refused ("lkcd"). */
export const COPY_LOCK = 0x6c6b6364;

type Target = PostgresJsDatabase<typeof pgSchema>;
type TargetTx = Parameters<Parameters<Target["transaction"]>[0]>[0];

/**
 * Copies the SQLite database `source` (migrated) into the PostgreSQL database at `url`, which is migrated first
 * and must hold no Latchkey rows; `secret` (the generated JWT secret, when there is one) goes into instance_secret.
 */
export async function copyToPostgres(source: Db, url: string, secret: string | undefined): Promise<CopyResult> {
  await migratePostgres(url);
  const plan = copyPlan();
  const client = postgres(url, { max: 1, onnotice: () => {} });
  const target = drizzle({ client, schema: pgSchema });
  // A deferred read transaction: its first read fixes the snapshot every later read of this copy sees.
  source.$client.exec("BEGIN");
  try {
    const counts = plan.map((pair) => source.select({ n: count() }).from(pair.source).all()[0]!.n);
    await target.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${COPY_LOCK})`);
      await refuseNonEmpty(tx);
      for (const pair of plan)
        await copyTable(source, tx, pair).catch((error: unknown) => {
          throw new Error(`copying ${pair.name} failed, nothing was copied: ${reason(error)}`);
        });
      if (secret !== undefined) await tx.insert(pgSchema.instanceSecret).values({ id: 1, secret });
      // Checked before the commit: a mismatch rolls everything back and leaves the target empty.
      const mismatches: string[] = [];
      for (const [index, pair] of plan.entries()) {
        const copied = (await tx.select({ n: count() }).from(pair.target))[0]!.n;
        if (copied !== counts[index]) mismatches.push(`${pair.name}: ${counts[index]} in SQLite, ${copied} in PostgreSQL`);
      }
      if (mismatches.length) throw new Error(`row counts differ, nothing was copied: ${mismatches.join("; ")}`);
    });
    return { tables: plan.map((pair, index) => ({ name: pair.name, rows: counts[index]! })), secretCarried: secret !== undefined };
  } finally {
    source.$client.exec("COMMIT");
    await client.end();
  }
}

/** Why a query failed, without drizzle's list of its parameters (password hashes, secrets) in the message. */
function reason(error: unknown): string {
  const cause = error instanceof DrizzleQueryError ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
}

/** Refuses a target where any Latchkey table (instance_secret included) already has a row. */
async function refuseNonEmpty(tx: TargetTx): Promise<void> {
  const filled: string[] = [];
  for (const table of tablesOf(pgSchema, PgTable)) {
    const [row] = await tx.select({ one: sql<number>`1` }).from(table).limit(1);
    if (row) filled.push(getTableName(table));
  }
  if (filled.length)
    throw new TargetNotEmptyError(`the PostgreSQL database is not empty (rows in ${filled.sort().join(", ")}): migrate-db copies into an empty database only`);
}

/**
 * One table, in rowid order, a batch at a time. Self-references are inserted as null and set afterwards: a row may
 * come before the row it refers to, and PostgreSQL checks each statement's foreign keys at its end.
 */
async function copyTable(source: Db, tx: TargetTx, pair: TablePair): Promise<void> {
  const fields = Object.fromEntries(pair.columns.map(([property]) => [property, getTableColumns(pair.source)[property]!]));
  const size = batchSize(pair.columns.length);
  const deferred = new Map<PgColumn, [unknown, unknown][]>(pair.selfReferences.map((column) => [column, []]));
  const key = getTableConfig(pair.target).columns.find((column) => column.primary);
  const keyProperty = pair.columns.find(([, , column]) => column === key)?.[0];
  if (pair.selfReferences.length && !keyProperty) throw new Error(`${pair.name} refers to itself and has no single-column primary key`);
  for (let after = Number.MIN_SAFE_INTEGER; ; ) {
    const page = source
      .select({ ...fields, rowid: sql<number>`rowid` })
      .from(pair.source)
      .where(sql`rowid > ${after}`)
      .orderBy(sql`rowid`)
      .limit(size)
      .all() as Record<string, unknown>[];
    if (!page.length) break;
    after = page.at(-1)!.rowid as number;
    const rows = page.map((row) => {
      const copy: Record<string, unknown> = {};
      for (const [from, to, column] of pair.columns) {
        const value = row[from] ?? null;
        const later = deferred.get(column);
        if (later && value !== null) later.push([row[keyProperty!], value]);
        copy[to] = later ? null : value;
      }
      return copy;
    });
    const insert = pair.identity ? tx.insert(pair.target).overridingSystemValue() : tx.insert(pair.target);
    await insert.values(rows as never);
  }
  for (const [column, links] of deferred)
    for (let start = 0; start < links.length; start += BATCH_ROWS) await setSelfReferences(tx, pair.target, key!, column, links.slice(start, start + BATCH_ROWS));
  if (pair.identity) await continueIdentity(source, tx, pair);
}

/** `column` of the rows whose `key` is each link's first value becomes its second: one UPDATE per batch. */
async function setSelfReferences(tx: TargetTx, table: PgTable, key: PgColumn, column: PgColumn, links: [unknown, unknown][]) {
  const cast = (of: Column) => sql.raw(of.getSQLType());
  const values = sql.join(
    links.map(([id, reference]) => sql`(${key.mapToDriverValue(id)}::${cast(key)}, ${column.mapToDriverValue(reference)}::${cast(column)})`),
    sql`, `,
  );
  await tx.execute(
    sql`update ${table} set ${sql.identifier(column.name)} = links.reference from (values ${values}) as links (id, reference) where ${table}.${sql.identifier(key.name)} = links.id`,
  );
}

/**
 * New rows must not collide with copied ids, nor reuse one: the identity continues after the highest id SQLite ever
 * handed out (AUTOINCREMENT's sqlite_sequence, which outlives deleted rows) or holds, whichever is higher.
 */
async function continueIdentity(source: Db, tx: TargetTx, pair: TablePair): Promise<void> {
  const column = sql.identifier(pair.identity!.name);
  const used = source.all<{ seq: number }>(sql`select seq from sqlite_sequence where name = ${pair.name}`)[0]?.seq ?? 0;
  await tx.execute(
    sql`select setval(pg_get_serial_sequence(${pair.name}, ${pair.identity!.name}), greatest(coalesce(max(${column}), 0), ${used}) + 1, false) from ${pair.target}`,
  );
}
