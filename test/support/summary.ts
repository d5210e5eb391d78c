// Prints the plain "N passed, N failed" line CI reads, from bun test's JUnit report. `--bench-skipped` (the
// Makefile's, when wrk is missing) counts the bench check as one skipped check, so the skip shows in that line.
const path = process.argv[2];
if (!path) throw new Error("usage: bun test/support/summary.ts <junit.xml> [--bench-skipped]");
const xml = await Bun.file(path).text();
const attribute = (name: string) => Number(new RegExp(`<testsuites[^>]*\\s${name}="(\\d+)"`).exec(xml)?.[1] ?? 0);
const total = attribute("tests");
const failed = attribute("failures") + attribute("errors");
const testsSkipped = attribute("skipped");
const skipped = testsSkipped + (process.argv.includes("--bench-skipped") ? 1 : 0);
console.log(`${total - failed - testsSkipped} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
