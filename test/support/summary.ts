// Prints the plain "N passed, N failed" line CI reads, from bun test's JUnit report.
const path = process.argv[2];
if (!path) throw new Error("usage: bun test/support/summary.ts <junit.xml>");
const xml = await Bun.file(path).text();
const attribute = (name: string) => Number(new RegExp(`<testsuites[^>]*\\s${name}="(\\d+)"`).exec(xml)?.[1] ?? 0);
const total = attribute("tests");
const failed = attribute("failures") + attribute("errors");
const skipped = attribute("skipped");
console.log(`${total - failed - skipped} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
