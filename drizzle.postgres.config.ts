import { defineConfig } from "drizzle-kit";

/** PostgreSQL (issue 11): generated from src/db/schema-postgres.ts, the twin of src/db/schema.ts. */
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema-postgres.ts",
  out: "./drizzle/postgres",
});
