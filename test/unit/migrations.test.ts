import { describe, expect, test } from "bun:test";
import { planMigrations } from "../../src/db/migrations";

/** drizzle's rule as db/migrations.ts states it (issue 22): pending after the last applied; newer when ahead of us. */
const ours = [1000, 2000, 3000].map((when, index) => ({ tag: `000${index}_m`, sql: [], bps: true, folderMillis: when, hash: `h${index}` }));
const applied = (...whens: number[]) => whens.map((when, index) => ({ hash: `h${index}`, createdAt: when }));

describe("planMigrations", () => {
  test("a new database: everything pending, nothing newer", () => {
    expect(planMigrations(ours, [])).toEqual({ pending: ours, newer: undefined });
  });

  test("an older database: what comes after its last migration is pending", () => {
    expect(planMigrations(ours, applied(1000, 2000)).pending.map((migration) => migration.tag)).toEqual(["0002_m"]);
  });

  test("the same database: nothing to do", () => {
    expect(planMigrations(ours, applied(1000, 2000, 3000))).toEqual({ pending: [], newer: undefined });
  });

  test("a database a newer binary migrated: refused with its migration count, whatever the hash", () => {
    expect(planMigrations(ours, applied(1000, 2000, 3000, 3001))).toEqual({ pending: [], newer: 4 });
    expect(planMigrations(ours.slice(0, 2), applied(1000, 2000, 3000)).newer).toBe(3);
  });
});
