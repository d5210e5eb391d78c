import { expect, test } from "bun:test";
import { sameOriginPost } from "../../src/modules/pages/csrf";

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
