import { Elysia, t } from "elysia";
import type { Delivery } from "../../delivery";
import { validationFailed } from "../../errors";
import { JSON_BODY } from "../../http/body";
import { noStore } from "../../http/cache";
import type { RequesterPlugin } from "../../http/client-ip";
import { BODY_ERRORS, CSRF_CHECK, errorResponses, SECRET_CHECK } from "../../http/error-catalogue";
import { AUTH_PREFIX } from "../../http/routes";
import { PlainText } from "../../http/schema";
import { strictBodies } from "../../http/strict-body";
import type { rateLimitPlugin } from "../../limits/plugin";
import { CeremonyOptions } from "../passkeys/model";
import { ChallengeResponse, LoginBody, LoginVerifyBody, TokenResponse, TotpEnrollmentResponse, VerifiedTokenResponse } from "./model";
import type { AuthService } from "./service";
import { signInAnswer } from "./sign-in-answer";

export interface SignInRouteDeps {
  auth: AuthService;
  delivery: Delivery;
  rateLimit: ReturnType<typeof rateLimitPlugin>;
  withRequester: RequesterPlugin;
}

/**
 * A sign-in through the API, its two steps: the password (POST /login), then, when the account owes a second
 * step, its answer (POST /login/verify), with what that answer may need first (an authenticator to enrol, a
 * passkey's options). Mounted beside authRoutes, with the same prefix and limits.
 */
export function signInRoutes({ auth, delivery, rateLimit, withRequester }: SignInRouteDeps) {
  return new Elysia({ prefix: AUTH_PREFIX, tags: ["auth"] })
    .use(withRequester)
    .use(strictBodies)
    .use(rateLimit)
    .post(
      "/login",
      async ({ body, set, cookie, requester }) => {
        // An empty field counts as absent: {"username": "", "email": "alice@example.com"} signs in by email.
        const login = body.username || body.email || undefined;
        if (login === undefined)
          throw validationFailed([
            { field: "username", message: "Give a username or an email address." },
          ]);
        return signInAnswer(delivery, { set, cookie }, await auth.login(login, body.password, requester));
      },
      {
        secretCheck: "sign-in",
        body: LoginBody,
        parse: JSON_BODY,
        response: {
          200: TokenResponse,
          202: ChallengeResponse,
          ...errorResponses(BODY_ERRORS, SECRET_CHECK, CSRF_CHECK, {
            401: ["invalid_credentials"],
            403: ["account_disabled", "user_not_verified"],
          }),
        },
        detail: {
          summary: "Sign in with a username or email and a password",
          description:
            "Either `username` or `email` may carry a username or an email address (case-insensitive); an empty string counts as absent. " +
            "An unknown user and a wrong password get the same 401; `account_disabled` is only told to someone who knows the password.\n\n" +
            "An account with TOTP, or every account when `LOGIN_EMAIL_CODE=true` (a 6-digit code is mailed), gets 202 `{challenge_id, methods, expires_in}` " +
            "instead of tokens: answer it at POST /login/verify. A user with a role in `MFA_REQUIRED_ROLES` and no authenticator gets methods `[\"totp_enrollment\"]`: POST /login/enroll, then /login/verify with the app's first code. " +
            "The mailed code goes to one address at most once a minute: a sign-in within that minute gets a challenge of its own that takes the code already mailed " +
            "(429 `rate_limited` only when that code is already spent or expired, told only after the right password).",
        },
      },
    )
    .post(
      "/login/verify",
      async ({ body, set, cookie, requester }) => {
        if ([body.code, body.recovery_code, body.passkey].filter((answer) => answer !== undefined).length !== 1)
          throw validationFailed([{ field: "code", message: "Give one of code, recovery_code or passkey." }]);
        const { tokens, recoveryCodes } = await auth.verifyChallenge(body.challenge_id, body, requester);
        const answer = delivery.respond({ set, cookie }, tokens);
        return recoveryCodes ? { ...answer, recovery_codes: recoveryCodes } : answer;
      },
      {
        secretCheck: "sign-in",
        body: LoginVerifyBody,
        parse: JSON_BODY,
        response: {
          200: VerifiedTokenResponse,
          ...errorResponses(BODY_ERRORS, SECRET_CHECK, CSRF_CHECK, {
            400: ["passkey_wrong_origin", "passkey_wrong_rp_id", "passkey_verification_failed"],
            401: ["challenge_expired", "invalid_mfa_code", "passkey_challenge_expired", "passkey_unknown_credential", "passkey_counter_regression"],
          }),
        },
        detail: {
          summary: "Second step of a sign-in: the emailed code, a TOTP code, a recovery code or a passkey",
          description:
            "Answers the token response of the delivery mode. A challenge lives `EMAIL_CODE_TTL` (10 minutes) and works once; " +
            "a wrong code (TOTP, recovery or emailed) is 401 `invalid_mfa_code`; after 5 wrong codes the challenge is dead (401 `challenge_expired`, even for the right code). " +
            "Wrong answers are also counted per account, across challenges and addresses, until a sign-in completes: from the 100th in a row every answer waits " +
            "(429 `rate_limited` with `Retry-After`, 1 s doubling up to `RATE_LIMIT_MAX_DELAY`), and the account's verified address is mailed once. " +
            "A TOTP code is accepted once (a replay in the same 30 s step is refused); each recovery code works once. A `totp_enrollment` challenge takes the authenticator's first code and also answers the 10 `recovery_codes`. " +
            "A `passkey` challenge takes `passkey`: the browser's answer (navigator.credentials.get) to the options of POST /login/verify/options; a refused passkey counts as a wrong answer and is told by its own code.",
        },
      },
    )
    .post(
      "/login/enroll",
      ({ body, set }) => {
        noStore(set.headers);
        return auth.startChallengeEnrollment(body.challenge_id);
      },
      {
        secretCheck: true,
        body: t.Object({ challenge_id: PlainText() }),
        parse: JSON_BODY,
        response: { 200: TotpEnrollmentResponse, ...errorResponses(BODY_ERRORS, SECRET_CHECK, { 401: ["challenge_expired"] }) },
        detail: {
          summary: "MFA_REQUIRED_ROLES: an authenticator secret for a sign-in that must enrol first",
          description: "For a challenge whose methods are `[\"totp_enrollment\"]`: add the secret (or scan the QR code) in an authenticator app, then send its first code to POST /login/verify.",
        },
      },
    )
    .post(
      "/login/verify/options",
      ({ body, set }) => {
        noStore(set.headers);
        return auth.challengePasskeyOptions(body.challenge_id);
      },
      {
        secretCheck: "sign-in",
        body: t.Object({ challenge_id: PlainText() }),
        parse: JSON_BODY,
        response: { 200: CeremonyOptions, ...errorResponses(BODY_ERRORS, SECRET_CHECK, CSRF_CHECK, { 401: ["challenge_expired"] }) },
        detail: {
          summary: "WebAuthn options for a challenge whose methods include passkey",
          description: "`allowCredentials` lists the account's passkeys. The options work once, for 5 minutes; send the browser's answer as `passkey` to POST /login/verify.",
        },
      },
    );
}
