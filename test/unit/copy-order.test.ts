/**
 * `latchkey migrate-db` (src/db/copy.ts) takes its tables and their order from the two schemas: every SQLite table
 * is copied, each after the tables it references, so PostgreSQL's foreign keys hold at every insert.
 */
import { describe, expect, test } from "bun:test";
import { getTableName } from "drizzle-orm";
import { getTableConfig, pgTable, text, type AnyPgColumn } from "drizzle-orm/pg-core";
import { SQLiteTable } from "drizzle-orm/sqlite-core";
import { copyPlan, foreignKeyOrder } from "../../src/db/copy";
import * as sqliteSchema from "../../src/db/schema";

describe("migrate-db's copy plan", () => {
  const plan = copyPlan();
  const names = plan.map((pair) => pair.name);

  test("copies every SQLite table once", () => {
    const sqliteNames = (Object.values(sqliteSchema) as unknown[]).filter((value): value is SQLiteTable => value instanceof SQLiteTable).map((table) => getTableName(table));
    expect([...names].sort()).toEqual(sqliteNames.sort());
    expect(new Set(names).size).toBe(names.length);
  });

  test("puts each table after every table it references", () => {
    for (const [position, pair] of plan.entries())
      for (const key of getTableConfig(pair.target).foreignKeys) {
        const referenced = getTableName(key.reference().foreignTable);
        if (referenced === pair.name) continue;
        expect({ table: pair.name, references: referenced, before: names.indexOf(referenced) < position }).toEqual({ table: pair.name, references: referenced, before: true });
      }
    // The chains of today's schema, spelled out.
    for (const [first, then] of [["users", "sessions"], ["sessions", "refresh_tokens"], ["sessions", "oidc_grants"], ["oidc_clients", "oidc_codes"], ["users", "totp_factors"]] as const)
      expect(names.indexOf(first)).toBeLessThan(names.indexOf(then));
  });

  test("defers the one self-reference (sessions.parent_id) and knows the audit identity column", () => {
    expect(plan.filter((pair) => pair.selfReferences.length).map((pair) => [pair.name, pair.selfReferences.map((column) => column.name)])).toEqual([["sessions", ["parent_id"]]]);
    expect(plan.filter((pair) => pair.identity).map((pair) => [pair.name, pair.identity!.name])).toEqual([["audit_events", "id"]]);
  });

  test("orders tables given in any order, and refuses a cycle between tables", () => {
    const parent = pgTable("parent", { id: text("id").primaryKey() });
    const child = pgTable("child", { id: text("id").primaryKey(), parentId: text("parent_id").references(() => parent.id) });
    const grandchild = pgTable("grandchild", { id: text("id").primaryKey(), childId: text("child_id").references(() => child.id) });
    expect(foreignKeyOrder([grandchild, child, parent]).map(getTableName)).toEqual(["parent", "child", "grandchild"]);

    const a = pgTable("a", { id: text("id").primaryKey(), b: text("b").references((): AnyPgColumn => b.id) });
    const b = pgTable("b", { id: text("id").primaryKey(), a: text("a").references((): AnyPgColumn => a.id) });
    expect(() => foreignKeyOrder([a, b])).toThrow("the foreign keys of a form a cycle");
  });
});
