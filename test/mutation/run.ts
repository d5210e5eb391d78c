/**
 * `make mutate`: StrykerJS on the security modules (test/mutation/groups.json), one group at a time, then one table
 * of mutation scores per file and in all. `bun test/mutation/run.ts redirect csrf` runs only those groups.
 * Score = (killed + timed out) / (killed + timed out + survived + no coverage), Stryker's own definition; it fails
 * when any module, or all of them together, scores under 85 %.
 */
import groups from "./groups.json";

const THRESHOLD = 85;
const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(groups);
for (const name of names) if (!(name in groups)) throw new Error(`no mutation group ${name}: ${Object.keys(groups).join(", ")}`);

interface Mutant {
  status: string;
}
interface Report {
  files: Record<string, { mutants: Mutant[] }>;
}

const rows: { group: string; file: string; detected: number; undetected: number }[] = [];
for (const name of names) {
  const started = performance.now();
  const run = Bun.spawnSync(["bun", "x", "stryker", "run", "test/mutation/stryker.config.mjs"], {
    env: { ...process.env, MUTATE_GROUP: name },
    stdout: "inherit",
    stderr: "inherit",
  });
  if (run.exitCode !== 0) throw new Error(`stryker failed on group ${name} (exit ${run.exitCode})`);
  const report = (await Bun.file(`reports/mutation/${name}.json`).json()) as Report;
  for (const [file, { mutants }] of Object.entries(report.files)) {
    const count = (statuses: string[]) => mutants.filter((mutant) => statuses.includes(mutant.status)).length;
    rows.push({ group: name, file, detected: count(["Killed", "Timeout"]), undetected: count(["Survived", "NoCoverage"]) });
  }
  console.log(`group ${name}: ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

const score = (detected: number, undetected: number) => (detected + undetected === 0 ? 100 : (100 * detected) / (detected + undetected));
const total = rows.reduce((sum, row) => ({ detected: sum.detected + row.detected, undetected: sum.undetected + row.undetected }), { detected: 0, undetected: 0 });
console.log(`\nmutation score (${new Date().toISOString().slice(0, 10)}), reports in reports/mutation/<group>.html`);
console.log("| group | file | killed | survived | score |\n|---|---|---|---|---|");
for (const row of rows) console.log(`| ${row.group} | ${row.file} | ${row.detected} | ${row.undetected} | ${score(row.detected, row.undetected).toFixed(1)} % |`);
const all = score(total.detected, total.undetected);
console.log(`| all | | ${total.detected} | ${total.undetected} | ${all.toFixed(1)} % |`);
// The target holds for every module, not only in all: a high total can hide one module's gap.
const below = rows.filter((row) => score(row.detected, row.undetected) < THRESHOLD);
for (const row of below) console.log(`${row.file} (group ${row.group}): ${score(row.detected, row.undetected).toFixed(1)} % is below ${THRESHOLD} %`);
if (all < THRESHOLD) console.log(`mutation score ${all.toFixed(1)} % is below ${THRESHOLD} %`);
if (below.length > 0 || all < THRESHOLD) process.exit(1);
