/**
 * Runs at build time (imported `with { type: "macro" }`): reads drizzle/<engine>/ and inlines every migration into
 * the bundle, so the compiled binary migrates with no migration folder on disk. Mirrors drizzle-orm's
 * readMigrationFiles (same statement split and hash), which would otherwise read the folder at run time.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface EmbeddedMigration {
  /** The file's name without .sql (0007_trusted_sign_ins), for the start-up log and `latchkey migrate --status`. */
  tag: string;
  sql: string[];
  bps: boolean;
  folderMillis: number;
  hash: string;
}

export function embeddedMigrations(engine: "sqlite" | "postgres"): EmbeddedMigration[] {
  const folder = join(import.meta.dir, "..", "..", "drizzle", engine);
  const journal = JSON.parse(readFileSync(join(folder, "meta", "_journal.json"), "utf8")) as {
    entries: { tag: string; when: number; breakpoints: boolean }[];
  };
  return journal.entries.map((entry) => {
    const query = readFileSync(join(folder, `${entry.tag}.sql`), "utf8");
    return {
      tag: entry.tag,
      sql: query.split("--> statement-breakpoint"),
      bps: entry.breakpoints,
      folderMillis: entry.when,
      hash: createHash("sha256").update(query).digest("hex"),
    };
  });
}
