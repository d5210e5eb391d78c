// Prints the plain "N passed, N failed" line CI reads, from bun test's JUnit reports (the SQLite run and, when it
// ran, the end-to-end suite on PostgreSQL). `--bench-skipped` (the Makefile's, when wrk is missing) counts the bench
// check as one skipped check, so the skip shows in that line. A report that was not written (a run that did not
// happen) counts nothing; the Makefile's status says why.
import { existsSync } from "node:fs";

const paths = process.argv.slice(2).filter((arg) => !arg.startsWith("--"));
if (paths.length === 0) throw new Error("usage: bun test/support/summary.ts <junit.xml> [<junit.xml> ...] [--bench-skipped]");
let total = 0;
let failed = 0;
let skipped = process.argv.includes("--bench-skipped") ? 1 : 0;
let testsSkipped = 0;
for (const path of paths.filter((path) => existsSync(path))) {
  const xml = await Bun.file(path).text();
  const attribute = (name: string) => Number(new RegExp(`<testsuites[^>]*\\s${name}="(\\d+)"`).exec(xml)?.[1] ?? 0);
  total += attribute("tests");
  failed += attribute("failures") + attribute("errors");
  testsSkipped += attribute("skipped");
}
skipped += testsSkipped;
console.log(`${total - failed - testsSkipped} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
