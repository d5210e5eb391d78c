import { expect, test } from "bun:test";
import { memoized } from "../../src/lib/memo";

test("memoized computes each key once, an undefined result included, and computes again after the memory was emptied at its bound", () => {
  const computed: string[] = [];
  const lengthOrNone = memoized(2, (key) => {
    computed.push(key);
    return key === "none" ? undefined : key.length;
  });
  expect([lengthOrNone("abc"), lengthOrNone("abc"), lengthOrNone("none"), lengthOrNone("none")]).toEqual([3, 3, undefined, undefined]);
  expect(computed).toEqual(["abc", "none"]);
  // A third key empties the memory (its bound is 2): "abc" is computed again afterwards.
  expect(lengthOrNone("de")).toBe(2);
  expect(lengthOrNone("abc")).toBe(3);
  expect(computed).toEqual(["abc", "none", "de", "abc"]);
});
