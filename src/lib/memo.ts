/**
 * `compute` remembered per key, for a hot path that sees the same few keys again and again (a proxy's address, the
 * protected apps' hosts, their forward URLs). Results that are `undefined` are remembered too. Bounded: the
 * memory is emptied once it holds `limit` keys, so a stream of distinct keys costs recomputing, never memory.
 * (Mutation testing: the memory only saves work, so a condition that always computes again, or empties it at
 * another size or never, gives the same answers: equivalent mutants; the bound is about memory, not the answer.)
 */
export function memoized<V>(limit: number, compute: (key: string) => V): (key: string) => V {
  const memory = new Map<string, V>();
  return (key) => {
    let value = memory.get(key);
    if (value === undefined && !memory.has(key)) {
      if (memory.size >= limit) memory.clear();
      value = compute(key);
      memory.set(key, value);
    }
    return value as V;
  };
}
