import { defineConfig } from "drizzle-kit";

/** SQLite, the default engine: `make migration NAME=...` generates from src/db/schema.ts (and the PostgreSQL twin). */
export default defineConfig({
  dialect: "sqlite",
  schema: "./src/db/schema.ts",
  out: "./drizzle/sqlite",
});
