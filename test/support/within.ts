/**
 * Waiting for something documented to happen within a bound ("a revocation reaches the other instances within
 * the caches' second"). Unlike waitFor, the clock starts at `since` (the moment the cause was done, not when the
 * wait began), and the bound is the documented one: a probe that starts past it and still sees nothing fails the
 * test, saying how long it waited. A probe that started within the bound counts even when it answered after it,
 * so a slow answer on a loaded machine is not mistaken for a late revocation. Answers the time measured (from
 * `since` to the start of the probe that saw it), for the test to report.
 */
export async function within<T>(what: string, boundMs: number, since: number, probe: () => Promise<T>, done: (value: T) => boolean): Promise<number> {
  for (;;) {
    const started = Date.now();
    const value = await probe();
    const elapsed = started - since;
    if (done(value)) return elapsed;
    if (elapsed > boundMs) throw new Error(`${what}: not within ${boundMs} ms; still not after ${elapsed} ms (last: ${JSON.stringify(value).slice(0, 300)})`);
    await Bun.sleep(10);
  }
}
