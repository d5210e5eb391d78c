// StrykerJS over `bun test` (its built-in command runner), one module group at a time: `make mutate` runs
// test/mutation/run.ts, which sets MUTATE_GROUP for each group below and reads the JSON reports.
// The command runner cannot tell which tests cover a mutant (coverageAnalysis "off"), so each group runs only the
// fast unit tests that reach its modules; a mutant is killed when that command fails.
import { readFileSync } from "node:fs";

/** Group name → files to mutate and the unit tests that reach them (test/mutation/README.md). */
const groups = JSON.parse(readFileSync(new URL("./groups.json", import.meta.url), "utf8"));

const name = process.env.MUTATE_GROUP;
const group = groups[name];
if (!group) throw new Error(`MUTATE_GROUP must be one of ${Object.keys(groups).join(", ")}`);

export default {
  $schema: "../../node_modules/@stryker-mutator/core/schema/stryker-schema.json",
  testRunner: "command",
  // `filter` (bun test -t) narrows a slow test file to the describes that reach the group's code.
  commandRunner: { command: `bun test ${group.tests.join(" ")}${group.filter ? ` -t '${group.filter}'` : ""}` },
  coverageAnalysis: "off",
  mutate: group.mutate,
  // Two cores shared with other work: one mutant at a time keeps the machine usable.
  concurrency: Number(process.env.MUTATE_CONCURRENCY ?? 1),
  timeoutMS: 20000,
  reporters: ["json", "html", "clear-text", "progress-append-only"],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  clearTextReporter: { allowColor: false, logTests: false },
  ignorePatterns: ["dist", ".tools", "data", ".test-results", "reports", "bench", "docs", "examples", ".ci"],
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always",
  incremental: false,
};
