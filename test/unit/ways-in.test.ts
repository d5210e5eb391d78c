import { expect, test } from "bun:test";
import { leavesNoWayIn } from "../../src/lib/ways-in";

test("a password goes only while a passkey remains", () => {
  expect(leavesNoWayIn({ hasPassword: true, passkeys: 0 }, "password")).toBe(true);
  expect(leavesNoWayIn({ hasPassword: true, passkeys: 1 }, "password")).toBe(false);
  expect(leavesNoWayIn({ hasPassword: true, passkeys: 3 }, "password")).toBe(false);
});

test("the last passkey goes only while a password remains", () => {
  expect(leavesNoWayIn({ hasPassword: false, passkeys: 1 }, "passkey")).toBe(true);
  expect(leavesNoWayIn({ hasPassword: false, passkeys: 2 }, "passkey")).toBe(false);
  expect(leavesNoWayIn({ hasPassword: true, passkeys: 1 }, "passkey")).toBe(false);
  // Counted before the delete: a passwordless account holding none has nothing to give up either.
  expect(leavesNoWayIn({ hasPassword: false, passkeys: 0 }, "passkey")).toBe(true);
});

test("a count it cannot read refuses (fail closed)", () => {
  for (const passkeys of [Number.NaN, -1, 1.5, Number.POSITIVE_INFINITY]) {
    expect(leavesNoWayIn({ hasPassword: true, passkeys }, "password")).toBe(true);
    expect(leavesNoWayIn({ hasPassword: true, passkeys }, "passkey")).toBe(true);
  }
});
