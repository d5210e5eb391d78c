import { describe, expect, test } from "bun:test";
import { formTokens, sameOriginPost } from "../../src/modules/pages/csrf";

const origins = new Set(["https://auth.example.com"]);
const post = (headers: Record<string, string>) => new Request("https://auth.example.com/login", { method: "POST", headers });

test("a form post from our own page under Referrer-Policy: no-referrer (Origin: null, no Referer) passes on Sec-Fetch-Site: same-origin", () => {
  // What Chromium sends for the sign-in form: the pages' no-referrer policy turns Origin into "null".
  expect(sameOriginPost(post({ origin: "null", "sec-fetch-site": "same-origin" }), origins)).toBe(true);
  expect(sameOriginPost(post({ "sec-fetch-site": "same-origin" }), origins)).toBe(true);
  // Without Fetch Metadata or with another site's, a null origin is still refused.
  expect(sameOriginPost(post({ origin: "null" }), origins)).toBe(false);
  expect(sameOriginPost(post({ origin: "null", "sec-fetch-site": "same-site" }), origins)).toBe(false);
  expect(sameOriginPost(post({ origin: "null", "sec-fetch-site": "cross-site" }), origins)).toBe(false);
  expect(sameOriginPost(post({ origin: "https://auth.example.com", "sec-fetch-site": "cross-site" }), origins)).toBe(false);
  expect(sameOriginPost(post({ origin: "https://evil.example" }), origins)).toBe(false);
  expect(sameOriginPost(post({ origin: "https://auth.example.com" }), origins)).toBe(true);
});

test("without Origin the Referer decides: ours passes, another site's, a missing or an unparsable one is refused", () => {
  expect(sameOriginPost(post({ referer: "https://auth.example.com/account" }), origins)).toBe(true);
  expect(sameOriginPost(post({ origin: "null", referer: "https://auth.example.com/account" }), origins)).toBe(true);
  expect(sameOriginPost(post({ referer: "https://evil.example/auth.example.com" }), origins)).toBe(false);
  expect(sameOriginPost(post({ origin: "null", referer: "https://evil.example/" }), origins)).toBe(false);
  expect(sameOriginPost(post({}), origins)).toBe(false);
  expect(sameOriginPost(post({ referer: "not a url" }), origins)).toBe(false);
  // An Origin that is present wins over the Referer: a foreign Origin is refused whatever the Referer says.
  expect(sameOriginPost(post({ origin: "https://evil.example", referer: "https://auth.example.com/account" }), origins)).toBe(false);
  expect(sameOriginPost(post({ origin: "https://evil.example", "sec-fetch-site": "same-origin" }), origins)).toBe(false);
});

describe("form tokens: one form, one binding", () => {
  const tokens = formTokens(new Uint8Array(32).fill(7));
  const other = formTokens(new Uint8Array(32).fill(8));
  const token = tokens.issue("/logout", "session-a");

  test("the token issued for a form and binding is accepted there", () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(tokens.check("/logout", "session-a", token)).toBe(true);
  });

  test("another form's, another binding's, another key's token, a missing or non-string one is refused", () => {
    expect(tokens.check("/account/password", "session-a", token)).toBe(false);
    expect(tokens.check("/logout", "session-b", token)).toBe(false);
    expect(tokens.check("/logout", "session-a", other.issue("/logout", "session-a"))).toBe(false);
    for (const presented of [undefined, null, "", 42, [token], { token }]) expect(tokens.check("/logout", "session-a", presented)).toBe(false);
  });

  test("new bindings are random 24-byte tokens", () => {
    const a = tokens.newBinding();
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(tokens.newBinding()).not.toBe(a);
  });
});
