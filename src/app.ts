import { Elysia } from "elysia";
import type { Config } from "./config";
import type { Db } from "./db/client";
import { createDelivery } from "./delivery";
import { parseBody } from "./http/body";
import { createErrorHandler, routeMethods } from "./http/errors";
import { responseHeaders } from "./http/security";
import { directRoutes } from "./http/direct";
import { clientInfoReader, requesterPlugin } from "./http/client-ip";
import { createSecretCheckLimiter } from "./limits";
import { createRateLimitAudit } from "./limits/audit";
import { createIpLimit, rateLimitPlugin } from "./limits/plugin";
import { deviceCookies } from "./limits/device";
import { createPasswordHasher } from "./lib/passwords";
import { adminRoutes } from "./modules/admin";
import { createAdminService } from "./modules/admin/service";
import { auditRoutes } from "./modules/audit";
import { createAuditLog } from "./modules/audit/service";
import { authGuard, requestIdentity } from "./modules/auth/guard";
import { authRoutes, AUTH_FORM_PATHS } from "./modules/auth";
import { signInRoutes } from "./modules/auth/sign-in-routes";
import { validateRoutes } from "./modules/auth/validate";
import { createAuthService } from "./modules/auth/service";
import { keyRoutes } from "./modules/keys";
import { createApiKeyService } from "./modules/keys/service";
import { sessionRoutes } from "./modules/sessions";
import { createSessionService } from "./modules/sessions/service";
import { oidcRoutes, OIDC_FORM_PATHS, type BrowserSessionPort } from "./modules/oidc";
import { oidcAdminRoutes } from "./modules/oidc/admin";
import { createOidcClients } from "./modules/oidc/clients";
import { createOidcService } from "./modules/oidc/service";
import { createLogoutNotices, deliverLogoutNotices, LOGOUT_NOTICE_KIND } from "./modules/oidc/backchannel";
import { createOidcGrants } from "./modules/oidc/grants";
import { signingKeyRoutes } from "./modules/signing-keys";
import { hmacBase64url } from "./lib/crypto";
import { systemRoutes } from "./modules/system";
import { createUserService } from "./modules/users/service";
import { createMailer, type Mailer } from "./mail";
import { createOneTimeCodes } from "./modules/codes/service";
import { EMAIL_FORM_PATHS, emailRoutes } from "./modules/email";
import { createEmailFlows } from "./modules/email/service";
import { createChallengeStore } from "./modules/auth/challenges";
import { createSecondStep } from "./modules/auth/second-step";
import { createSecondFactorLimiter } from "./limits/second-factor";
import { mfaRoutes } from "./modules/mfa";
import { passkeyRoutes } from "./modules/passkeys";
import { createPasskeyService } from "./modules/passkeys/service";
import { createMfaService } from "./modules/mfa/service";
import { forwardAuthRoutes } from "./modules/forward";
import { loadAccessRules } from "./modules/forward/rules";
import { PAGE_FORM_PATHS, signInPages } from "./modules/pages";
import { applicationPages } from "./modules/pages/applications";
import { accountPages } from "./modules/pages/account-routes";
import { adminPages } from "./modules/pages/admin-routes";
import { auditPages } from "./modules/pages/audit-routes";
import { formTokens } from "./modules/pages/csrf";
import { createHandoffCodes, type HandoffCodes } from "./modules/pages/handoff";
import { createBrowserSessions } from "./modules/pages/session";
import { errorPages } from "./modules/pages/error-pages";
import { createFlashes } from "./modules/pages/flash";
import { configureBranding } from "./modules/pages/layout";
import type { Secrets } from "./secrets";
import { createAccessTokens, createClientAccessTokens } from "./tokens/access";
import { createKeyRing, keyRetention } from "./tokens/keys";
import { isPostgres } from "./db/atomic";
import { metricsRoutes } from "./modules/metrics";
import { createMetrics, NO_METRICS, type Metrics, type Recorder } from "./modules/metrics/service";
import { readyRoutes } from "./modules/system/ready";
import { invitationAdminRoutes, invitationRoutes } from "./modules/invitations";
import { createInvitations, invitationMailVars } from "./modules/invitations/service";
import { invitationPages, takesInvitationForm } from "./modules/pages/invitations";
import { signUpPages } from "./modules/pages/signup";
import { createPasskeyFallbacks } from "./modules/auth/passkey-fallbacks";
import { createPasswordCheck } from "./modules/auth/password-check";
import { lostPasskeyPages, takesLostPasskeyForm } from "./modules/pages/lost-passkey";

/** The paths whose POST bodies may be HTML forms (application/x-www-form-urlencoded); every other route takes JSON. */
const FORM_BODY_PATHS: ReadonlySet<string> = new Set([...AUTH_FORM_PATHS, ...EMAIL_FORM_PATHS, ...OIDC_FORM_PATHS, ...PAGE_FORM_PATHS]);

/**
 * Builds the whole HTTP application from its configuration; the server and the in-process tests both use it.
 * `options.browser` replaces the browser sessions (in-process tests of the OpenID Connect provider), `options.handoffs`
 * the store of handoff codes (in-process tests of a full store); `options.metrics` is the server's (its mailer counts
 * into it too), made here when metrics are on and none is given.
 */
export function createApp(
  config: Config,
  db: Db,
  secrets: Secrets,
  mailer?: Mailer,
  options: { browser?: BrowserSessionPort; handoffs?: HandoffCodes; metrics?: Metrics } = {},
) {
  const metrics = options.metrics ?? (metricsEnabled(config) ? createMetrics(config, db) : undefined);
  const recorder = metrics?.recorder ?? NO_METRICS;
  const hasher = createPasswordHasher(config.passwordHash);
  void hasher.prepareDummyHash();
  const users = createUserService(db, hasher, config.passwordMinLength);
  const sessions = createSessionService(db, {
    refreshTokenTtl: config.refreshTokenTtl,
    refreshReuseInterval: config.refreshReuseInterval,
    refreshRotationKey: secrets.refreshRotationKey,
    slideOnActivity: config.tokenDelivery === "header",
    browserIdleTtl: config.sessionIdleTtl,
    onRevoked: recorder.sessionsRevoked,
  });
  const signing = { algs: [...new Set([config.jwtAlg, config.oidcIdTokenAlg])], maxTokenTtl: keyRetention(config) };
  const keyRing = createKeyRing(db, { hs256Secret: secrets.jwtKey, ...signing });
  const accessTokens = createAccessTokens(keyRing, config.jwtAlg, config.publicUrl, config.accessTokenTtl);
  const delivery = createDelivery(config);
  const audit = countedAudit(createAuditLog(db), recorder);
  const limiter = createSecretCheckLimiter(db, config.rateLimit);
  const readClient = clientInfoReader(config.trustProxy, config.trustProxyHeader);
  const withRequester = requesterPlugin(readClient);
  const auditHit = createRateLimitAudit((event) => audit.record(event));
  // Every refusal is counted; the trail gets one row per address and account a minute (limits/audit.ts).
  const auditRateLimit: typeof auditHit = (hit) => (recorder.rateLimited(hit.scope), auditHit(hit));
  mailer ??= createAppMailer(config, db, secrets, audit, recorder);
  const outbox = mailer.outbox;
  const notices = createLogoutNotices(db, (userId, notice) => outbox.enqueue(LOGOUT_NOTICE_KIND, userId, notice));
  deliverLogoutNotices(outbox, { keyRing, issuer: config.publicUrl, alg: config.oidcIdTokenAlg });
  const emailFlows = createEmailFlows({
    users,
    sessions,
    codes: createOneTimeCodes(db, secrets.codeKey),
    mailer,
    limiter,
    audit,
    settings: { publicUrl: config.publicUrl, codeTtl: config.mail.codeTtl, passwordResetTtl: config.mail.passwordResetTtl },
  });
  const mfa = createMfaService(db, secrets.dataKey, config.mail.appName);
  const passkeys = createPasskeyService({ db, users, audit, settings: config.passkeys, appName: config.appName });
  const secondStep = createSecondStep({
    users,
    mfa,
    passkeys,
    challenges: createChallengeStore(db, secrets.codeKey, config.mail.codeTtl),
    secondFactors: createSecondFactorLimiter(db, config.rateLimit),
    emailFlows,
    audit,
    auditRateLimit,
    settings: { loginEmailCode: config.mail.loginEmailCode, mfaRequiredRoles: config.mail.mfaRequiredRoles },
  });
  const auth = createAuthService({
    users,
    mfa,
    secondStep,
    devices: deviceCookies(secrets.deviceKey),
    sessions,
    accessTokens,
    hasher,
    limiter,
    audit,
    auditRateLimit,
    emailFlows,
    settings: {
      allowRegistration: config.allowRegistration,
      requireEmailVerification: config.mail.requireEmailVerification,
      refreshTokenTtl: config.refreshTokenTtl,
    },
    notices,
    passkeys,
  });
  // The ways back to a passkey (a recovery code, a mailed link, an admin's reset) and setup links.
  const fallbacks = createPasskeyFallbacks({
    users,
    sessions,
    codes: createOneTimeCodes(db, secrets.codeKey),
    mfa,
    passkeys,
    passwords: createPasswordCheck({ users, hasher, limiter, devices: deviceCookies(secrets.deviceKey), audit, auditRateLimit, requireEmailVerification: config.mail.requireEmailVerification }),
    devices: deviceCookies(secrets.deviceKey),
    mailer,
    audit,
    publicUrl: config.publicUrl,
    notices,
  });
  const apiKeys = createApiKeyService(db, { maxPerUser: config.apiKeysMaxPerUser, rateLimit: config.apiKeyRateLimit });
  const waits = isPostgres(db);
  const identity = requestIdentity({ delivery, accessTokens, sessions, apiKeys, waits });
  const guard = authGuard(identity);
  const headers = responseHeaders(config);
  const ipLimit = createIpLimit(limiter, auditRateLimit);
  const rateLimit = rateLimitPlugin({ ipLimit, readClient, refuseCrossSite: delivery.assertNotForeignPage, refuseCrossSiteSignIn: delivery.refuseCrossSiteSignIn });
  const browser = createBrowserSessions(config, sessions, secrets.pageCookieKey);
  const admin = createAdminService({ db, users, sessions, apiKeys, audit, mfa, notices });
  const forms = formTokens(secrets.formKey);
  const signedInForms = { appName: config.appName, origins: new Set(config.signInOrigins), browser, forms, flashes: createFlashes(browser, secrets.dataKey) };
  configureBranding({ accent: config.branding.accent, logo: config.branding.logo !== undefined });
  const accessRules = loadAccessRules(config.accessRulesFile);
  const invitations = createInvitations({
    db,
    audit,
    users,
    publicUrl: config.publicUrl,
    send: mailer.enabled ? (to, link, expiresAt) => mailer!.send("invitation", to, { id: null, username: "" }, invitationMailVars(link, expiresAt)) : undefined,
  });
  const signUp = { ...signedInForms, auth, ipLimit, withRequester, allowRegistration: config.allowRegistration, requireEmailVerification: config.mail.requireEmailVerification };
  /** The browser session as the OpenID Connect provider sees it: who is signed in, and signing out. */
  const browserPort: BrowserSessionPort = {
    current: (request) => browser.current(request),
    async signOut(request, headers) {
      const principal = await browser.current(request);
      if (principal) await auth.signOutBrowser(principal, readClient(request, null), false);
      browser.clearSession(headers as Parameters<typeof browser.clearSession>[0], browser.hostOf(request));
    },
  };
  const oidcClients = createOidcClients(db);
  const oidc = createOidcService({ db, sessions, audit, notices });
  const oidcGrants = createOidcGrants({
    db,
    sessions,
    clientAccess: createClientAccessTokens(keyRing, config.oidcIdTokenAlg, config.publicUrl, config.accessTokenTtl),
    keyRing,
    audit,
    settings: { issuer: config.publicUrl, idTokenAlg: config.oidcIdTokenAlg, tokenTtl: config.accessTokenTtl },
  });

  // The error handler learns the route table from the finished app (for 405 and its Allow header).
  const allowedMethods = routeMethods(() => app.routes);
  const peerAddress = (request: Request): string | null => app.server?.requestIP(request)?.address ?? null;
  // /validate and forward auth's GET, served by Bun's router outside Elysia where they answer at once (http/direct.ts).
  const direct = directRoutes(() => app.fetch);
  const app = new Elysia({ serve: { routes: direct.routes } })
    .use(createErrorHandler(allowedMethods, errorPages(config.appName), recorder.databaseFailed))
    .use(headers.plugin)
    // Before the body parser: these two run on every request of every protected app and take no body.
    .use(validateRoutes(identity, headers, direct))
    .use(forwardAuthRoutes({ config, browser, accessTokens, sessions, apiKeys, rules: accessRules, headers, peerAddress, waits, metrics: recorder, direct }))
    .onParse(({ request, contentType, path }) =>
      parseBody(request, contentType, FORM_BODY_PATHS.has(path) || takesInvitationForm(path) || takesLostPasskeyForm(path)),
    )
    .use(systemRoutes(db, config.accessCookieName))
    .use(readyRoutes(db))
    .use(metrics && config.metrics.token !== undefined ? metricsRoutes(metrics, config.metrics.token) : new Elysia())
    .use(signInRoutes({ auth, delivery, rateLimit, withRequester }))
    .use(authRoutes({ auth, mfa, delivery, guard, rateLimit, withRequester }))
    .use(mfaRoutes({ auth, mfa, guard, rateLimit, withRequester }))
    .use(passkeyRoutes({ passkeys, auth, delivery, guard, rateLimit, withRequester }))
    .use(emailRoutes({ flows: emailFlows, auth, guard, rateLimit, withRequester, appName: config.mail.appName }))
    .use(sessionRoutes({ sessions, guard, audit, withRequester }))
    .use(keyRoutes({ apiKeys, guard, audit, withRequester }))
    .use(adminRoutes({ admin, guard, withRequester, fallbacks }))
    .use(auditRoutes({ audit, users, guard }))
    .use(signingKeyRoutes({ db, keyRing, ...signing, guard, audit, withRequester }))
    .use(
      oidcRoutes({
        issuer: config.publicUrl,
        appName: config.appName,
        idTokenAlg: config.oidcIdTokenAlg,
        clients: oidcClients,
        oidc,
        grants: oidcGrants,
        keyRing,
        browser: options.browser ?? browserPort,
        pageKey: Buffer.from(hmacBase64url(secrets.jwtKey, "latchkey/oidc-pages/v1"), "base64url"),
        origins: new Set(config.signInOrigins),
        notices,
        audit,
        withRequester,
      }),
    )
    .use(oidcAdminRoutes({ clients: oidcClients, oidc, guard, audit, withRequester }))
    .use(
      signInPages({
        config,
        auth,
        sessions,
        browser,
        forms,
        handoffs: options.handoffs ?? createHandoffCodes(),
        ipLimit,
        withRequester,
        emailFlows,
        mailEnabled: mailer.enabled,
        passkeys,
      }),
    )
    .use(accountPages({ ...signedInForms, auth, users, sessions, apiKeys, audit, ipLimit, withRequester, mfa, oidc, emailFlows, mailEnabled: mailer.enabled, passkeys, passkeyOrigins: new Set(config.passkeys.origins) }))
    .use(adminPages({ ...signedInForms, admin, users, sessions, mfa, audit, withRequester, fallbacks }))
    .use(auditPages({ ...signedInForms, audit, users }))
    .use(applicationPages({ ...signedInForms, clients: oidcClients, audit, withRequester, issuer: config.publicUrl }))
    .use(invitationAdminRoutes({ invitations, guard, withRequester }))
    .use(invitationRoutes({ invitations, auth, delivery, rateLimit, withRequester }))
    .use(signUpPages(signUp))
    .use(invitationPages({ ...signUp, invitations, mailEnabled: mailer.enabled, fallbacks }))
    .use(lostPasskeyPages({ ...signUp, fallbacks, mailEnabled: mailer.enabled }));
  // The server waits for this before it listens: the signing keys' first read (db/atomic.ts: at once on SQLite).
  return Object.assign(app, { ready: keyRing.ready, metrics });
}

/** Metrics are counted only when someone can read them: METRICS_ADDR or METRICS_TOKEN. */
export const metricsEnabled = (config: Config) => config.metrics.listen !== undefined || config.metrics.token !== undefined;

/** The audit log, whose sign-in and second-factor events are also counted (/metrics). */
function countedAudit(audit: ReturnType<typeof createAuditLog>, recorder: Recorder): ReturnType<typeof createAuditLog> {
  if (recorder === NO_METRICS) return audit;
  return { ...audit, record: (entry) => (recorder.audited(entry), audit.record(entry)) };
}

/** The mailer of a server: its outbox reports a dropped mail as one audit event (which is also its log line). */
export function createAppMailer(config: Config, db: Db, secrets: Secrets, audit = createAuditLog(db), recorder: Recorder = NO_METRICS): Mailer {
  return createMailer(
    config,
    db,
    secrets.dataKey,
    async (dropped) => {
      recorder.mailDropped();
      await audit.record({
        event: "mail_dropped",
        userId: dropped.userId,
        detail: { kind: dropped.kind, attempts: dropped.attempts, error: dropped.error },
      });
    },
    recorder.mailAttempted,
  );
}
