// The security modules under mutation testing (issue 23), each with the fast unit tests that reach it without
// HTTP. A "file:from-to" entry mutates only those lines: the security decision inside a larger file (keep the
// ranges in step with the code; test/mutation/README.md says what each covers).
export const groups = {
  redirect: { mutate: ["src/modules/pages/hosts.ts"], tests: ["test/unit/redirect.test.ts"] },
  csrf: { mutate: ["src/modules/pages/csrf.ts"], tests: ["test/unit/page-csrf.test.ts"] },
  handoff: { mutate: ["src/modules/pages/handoff.ts"], tests: ["test/unit/browser-sessions.test.ts", "test/unit/handoff-redirects.test.ts"] },
  forward: {
    mutate: ["src/modules/forward/decide.ts", "src/modules/forward/rules.ts", "src/modules/forward/paths.ts", "src/modules/forward/request.ts"],
    tests: ["test/unit/forward-rules.test.ts", "test/unit/forward-corpus.test.ts"],
  },
  "second-factor": {
    mutate: ["src/modules/mfa/service.ts:50-62", "src/modules/mfa/service.ts:130-165", "src/limits/second-factor.ts"],
    tests: ["test/unit/totp-window.test.ts", "test/unit/second-factor-limits.test.ts"],
  },
  refresh: { mutate: ["src/modules/sessions/service.ts:343-404"], tests: ["test/unit/refresh-rotation.test.ts"] },
  oidc: { mutate: ["src/modules/oidc/service.ts:198-268", "src/modules/oidc/id-token-hint.ts"], tests: ["test/unit/oidc.test.ts"] },
};
