import { expect, test } from "bun:test";
import { tooManyAttempts } from "../../src/modules/pages/signed-in-forms";
import { describeEvent } from "../../src/modules/pages/audit";
import { plural } from "../../src/modules/pages/layout";
import { deviceName, relativeTime } from "../../src/modules/pages/table";
import { keyGroups } from "../../src/modules/pages/two-step";
import { rateLimited } from "../../src/errors";

test("devices read as people name them, from the User-Agent (bowser)", () => {
  expect(deviceName("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/140.0.0.0 Safari/537.36")).toBe("Chrome on Linux");
  expect(deviceName("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")).toBe("Safari on iOS");
  expect(deviceName("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0")).toBe("Firefox on Windows");
  expect(deviceName("curl/8.5.0")).toBe("curl");
  expect(deviceName(null)).toBe("Unknown device");
  expect(deviceName("")).toBe("Unknown device");
});

test("times read relative to now, past and future, singular and plural", () => {
  const now = Date.parse("2026-06-01T12:00:00Z");
  const at = (seconds: number) => new Date(now + seconds * 1000);
  expect(relativeTime(at(-10), now)).toBe("just now");
  expect(relativeTime(at(-60), now)).toBe("1 minute ago");
  expect(relativeTime(at(-150), now)).toBe("2 minutes ago");
  expect(relativeTime(at(-3600 * 5), now)).toBe("5 hours ago");
  expect(relativeTime(at(-86400), now)).toBe("1 day ago");
  expect(relativeTime(at(86400 * 30), now)).toBe("in 1 month");
  expect(relativeTime(at(86400 * 800), now)).toBe("in 2 years");
});

test("a wait in words: 1 second, 2 seconds", () => {
  expect(plural(1, "second")).toBe("1 second");
  expect(plural("1", "second")).toBe("1 second");
  expect(plural(2, "second")).toBe("2 seconds");
  expect(tooManyAttempts(rateLimited(1))).toBe("Too many attempts. Try again in 1 second.");
  expect(tooManyAttempts(rateLimited(30))).toBe("Too many attempts. Try again in 30 seconds.");
});

test("the authenticator's key in groups of four", () => {
  expect(keyGroups("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")).toEqual(["ABCD", "EFGH", "IJKL", "MNOP", "QRST", "UVWX", "YZ23", "4567"]);
});

test("audit events read as sentences about their user", () => {
  expect(describeEvent("login_succeeded", "alice", { second_factor: "totp", via: "browser" })).toBe("alice signed in with an authenticator");
  expect(describeEvent("login_succeeded", "alice", {})).toBe("alice signed in");
  expect(describeEvent("login_failed", "someone", { reason: "invalid_credentials" })).toBe("A sign-in failed: wrong username or password");
  expect(describeEvent("admin_user_deleted", "someone", { username: "dave", actor: "root" })).toBe("dave was deleted by root");
  expect(describeEvent("admin_user_created", "bob", { via: "cli", username: "bob" })).toBe("bob was created by the command line");
  expect(describeEvent("some_future_event", "alice", {})).toBe("some future event (alice)");
});
