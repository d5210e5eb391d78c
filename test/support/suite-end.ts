/**
 * What the suite starts for longer than one test (the PostgreSQL cluster of test/support/engine.ts, a server a
 * failed test never stopped) registers its stop here. bun test emits no process "exit" event: its preload
 * (test/support/cleanup.ts) runs the stops after the last test file. Outside bun test (the bench imports the same
 * support), the process's exit runs them.
 */
const STOPS = Symbol.for("latchkey.test.stops");
type Stop = () => unknown;
const registry = globalThis as { [STOPS]?: Set<Stop> };
const stops = (registry[STOPS] ??= new Set());

/** Runs `stop` once every test file has run (or when the process exits, outside bun test). */
export function atSuiteEnd(stop: Stop): void {
  stops.add(stop);
}

export async function runSuiteEnd(): Promise<void> {
  for (const stop of stops) await stop();
  stops.clear();
}

process.on("exit", () => {
  for (const stop of stops) void stop();
});
