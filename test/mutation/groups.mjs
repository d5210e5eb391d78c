// The security modules under mutation testing (issue 23), each with the unit tests that reach it without HTTP.
// A "file:from-to" entry mutates only those lines (the security decision inside a larger file).
export const groups = {
  redirect: { mutate: ["src/modules/pages/hosts.ts"], tests: ["test/unit/redirect.test.ts"] },
  csrf: { mutate: ["src/modules/pages/csrf.ts"], tests: ["test/unit/page-csrf.test.ts"] },
  handoff: { mutate: ["src/modules/pages/handoff.ts"], tests: ["test/unit/browser-sessions.test.ts", "test/unit/handoff-redirects.test.ts"] },
  forward: { mutate: ["src/modules/forward/rules.ts"], tests: ["test/unit/forward-rules.test.ts"] },
};
