/**
 * Issue 11: src/db/schema.ts (SQLite) and src/db/schema-postgres.ts describe the same database. A table, column,
 * key or index added to one and not the other fails here, before any migration is generated from them.
 */
import { describe, expect, test } from "bun:test";
import { getTableConfig as pgConfig, PgTable } from "drizzle-orm/pg-core";
import { getTableConfig as sqliteConfig, SQLiteTable } from "drizzle-orm/sqlite-core";
import * as pgSchema from "../../src/db/schema-postgres";
import * as sqliteSchema from "../../src/db/schema";

type Config = ReturnType<typeof pgConfig> | ReturnType<typeof sqliteConfig>;

/** What both engines must agree on, engine-neutral: names, nullability, defaults, keys, references and indexes. */
function shape(config: Config) {
  const columnName = (column: { name: string }) => column.name;
  return {
    columns: config.columns
      .map((column) => ({ name: column.name, notNull: column.notNull, hasDefault: column.hasDefault, primary: column.primary, unique: column.isUnique }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    primaryKeys: config.primaryKeys.map((key) => key.columns.map(columnName)),
    foreignKeys: config.foreignKeys
      .map((key) => {
        const reference = key.reference();
        return {
          columns: reference.columns.map(columnName),
          table: reference.foreignTable[Symbol.for("drizzle:Name") as never] as string,
          foreignColumns: reference.foreignColumns.map(columnName),
          onDelete: key.onDelete,
        };
      })
      .sort((a, b) => a.columns.join().localeCompare(b.columns.join())),
    indexes: config.indexes
      .map((index) => ({
        name: index.config.name,
        unique: index.config.unique ?? false,
        columns: index.config.columns.map((column) => (column as { name: string }).name),
        partial: index.config.where !== undefined,
      }))
      .sort((a, b) => a.name!.localeCompare(b.name!)),
  };
}

const sqliteTables = new Map(
  (Object.values(sqliteSchema) as unknown[])
    .filter((value): value is SQLiteTable => value instanceof SQLiteTable)
    .map((table) => [sqliteConfig(table).name, sqliteConfig(table)] as const),
);
/**
 * Tables only PostgreSQL has, and why. instance_secret: the generated JWT secret that every instance shares; one
 * SQLite instance keeps it in the file DATA_DIR/jwt_secret instead (src/secrets.ts).
 */
const POSTGRES_ONLY = ["instance_secret"];

const allPgTables = new Map(
  (Object.values(pgSchema) as unknown[])
    .filter((value): value is PgTable => value instanceof PgTable)
    .map((table) => [pgConfig(table).name, pgConfig(table)] as const),
);
const pgTables = new Map([...allPgTables].filter(([name]) => !POSTGRES_ONLY.includes(name)));

describe("the SQLite schema and its PostgreSQL twin", () => {
  test("have the same tables", () => {
    expect([...pgTables.keys()].sort()).toEqual([...sqliteTables.keys()].sort());
    expect(sqliteTables.size).toBe(18);
  });

  test("PostgreSQL has exactly the tables it alone needs besides", () => {
    expect([...allPgTables.keys()].filter((name) => !sqliteTables.has(name))).toEqual(POSTGRES_ONLY);
  });

  for (const name of [...sqliteTables.keys()].sort())
    test(`${name}: the same columns (nullability, defaults, keys), references and indexes`, () => {
      expect(pgTables.has(name)).toBe(true);
      expect(shape(pgTables.get(name)!)).toEqual(shape(sqliteTables.get(name)!));
    });
});
