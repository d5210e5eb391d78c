import { Elysia, t } from "elysia";
import { AUTH_PREFIX } from "../../http/routes";
import { strictBodies } from "../../http/strict-body";
import { oauthTokenBody, tokenResponseHeaders, type Delivery, type IssuedTokens } from "../../delivery";
import type { TokenWriter } from "../../delivery/transport";
import { apiErrors, OAuthError, toTokenEndpointError } from "../../errors";
import { JSON_BODY, JSON_OR_FORM_BODY } from "../../http/body";
import type { RequesterPlugin } from "../../http/client-ip";
import type { rateLimitPlugin } from "../../limits/plugin";
import type { authGuard } from "./guard";
import {
  MeResponse,
  LogoutQuery,
  MessageBody,
  PasswordChangeBody,
  PasswordRemoveBody,
  OAuthErrorBody,
  OAuthForbiddenBody,
  PendingVerificationResponse,
  OAuthTokenResponse,
  RefreshBody,
  RegisterBody,
  TokenRequestBody,
  TokenResponse,
} from "./model";
import { CONTROL_CHARACTER, SESSION_OR_KEY_SECURITY, SESSION_SECURITY } from "../../http/schema";
import { BODY_ERRORS, CSRF_CHECK, errorResponses, SECRET_CHECK, SESSION_GUARD, SESSION_OR_KEY_GUARD } from "../../http/error-catalogue";
import type { MfaService } from "../mfa/service";
import { principalUser, type AuthService } from "./service";

/** The route that also takes application/x-www-form-urlencoded: /token (RFC 6749 §4.3.2). */
export const AUTH_FORM_PATHS = [`${AUTH_PREFIX}/token`];

/** The 201 of a registration (POST /register, an invitation's): tokens in the configured mode, or the pending account. */
export function registered(delivery: Delivery, context: TokenWriter & { set: { status?: number | string } }, result: Awaited<ReturnType<AuthService["register"]>>) {
  context.set.status = 201;
  if ("pending" in result) return { message: "Account created. Confirm your email address with the code or link we sent, then sign in.", user: result.pending };
  return delivery.respond(context, result);
}

export interface AuthRouteDeps {
  auth: AuthService;
  mfa: MfaService;
  delivery: Delivery;
  guard: ReturnType<typeof authGuard>;
  rateLimit: ReturnType<typeof rateLimitPlugin>;
  withRequester: RequesterPlugin;
}

export function authRoutes({ auth, mfa, delivery, guard, rateLimit, withRequester }: AuthRouteDeps) {
  return new Elysia({ prefix: AUTH_PREFIX, tags: ["auth"] })
    .use(withRequester)
    .use(guard)
    .use(strictBodies)
    .use(rateLimit)
    .post(
      "/register",
      async ({ body, set, cookie, requester }) => {
        return registered(delivery, { set, cookie }, await auth.register(body, requester));
      },
      {
        secretCheck: "sign-in",
        body: RegisterBody,
        parse: JSON_BODY,
        response: {
          201: t.Union([TokenResponse, PendingVerificationResponse]),
          ...errorResponses(BODY_ERRORS, SECRET_CHECK, CSRF_CHECK, {
            403: ["registration_disabled"],
            409: ["username_taken", "email_taken"],
            422: ["weak_password"],
          }),
        },
        detail: {
          summary: "Create an account (when ALLOW_REGISTRATION=true) and sign in",
          description:
            "With `REQUIRE_EMAIL_VERIFICATION=true`, `email` is required (422 without it) and the answer has no tokens: a code and a link are mailed, and sign-in works once the address is verified.",
        },
      },
    )
    .post(
      "/token",
      async ({ body, set, requester }) => {
        tokenResponseHeaders(set.headers);
        const field = (name: keyof typeof body) => {
          const value = body[name];
          // A control character is malformed (PostgreSQL refuses NUL in text: issue 22); a password is only hashed.
          if (typeof value !== "string" || value === "" || (name !== "password" && CONTROL_CHARACTER.test(value)))
            throw new OAuthError("invalid_request", `Missing or malformed parameter: ${name}.`);
          return value;
        };
        const grantType = field("grant_type");
        let tokens;
        try {
          if (grantType === "password")
            // allowChallenge=false: the grant answers mfa_required instead of a challenge, so this is tokens.
            tokens = (await auth.login(field("username"), field("password"), requester, false)) as IssuedTokens;
          else if (grantType === "refresh_token") tokens = await auth.refresh(field("refresh_token"), requester);
          else throw new OAuthError("unsupported_grant_type", `Unsupported grant_type: ${grantType}.`);
        } catch (error) {
          throw toTokenEndpointError(error);
        }
        // RFC 6749 §5.1 in every delivery mode: a machine client of /token always gets its tokens in the body.
        return oauthTokenBody(tokens);
      },
      {
        secretCheck: "same-site",
        body: TokenRequestBody,
        parse: JSON_OR_FORM_BODY,
        response: {
          200: OAuthTokenResponse,
          ...errorResponses({ 413: ["payload_too_large"], 415: ["unsupported_media_type"] }, SECRET_CHECK),
          400: OAuthErrorBody,
          403: OAuthForbiddenBody,
        },
        detail: {
          summary: "OAuth2 token endpoint: password and refresh_token grants (RFC 6749 §4.3, §6)",
          description:
            "Accepts application/x-www-form-urlencoded or JSON. Always answers in the RFC 6749 shape with tokens in the body, in every delivery mode: it reads credentials only from the request body, never from cookies.",
        },
      },
    )
    .post(
      "/refresh",
      async ({ body, request, set, cookie, requester }) => {
        const presented = delivery.readRefreshToken(request, body);
        if (!presented) throw apiErrors.invalid_refresh_token("No refresh token was presented.");
        if (presented.viaCookie) delivery.assertSameOrigin(request);
        const tokens = await auth.refresh(presented.token, requester);
        return delivery.respond({ set, cookie }, tokens);
      },
      {
        secretCheck: true,
        body: RefreshBody,
        parse: JSON_BODY,
        response: {
          200: TokenResponse,
          ...errorResponses(BODY_ERRORS, SECRET_CHECK, CSRF_CHECK, { 401: ["invalid_refresh_token", "refresh_token_reused", "invalid_token"] }),
        },
        detail: {
          summary: "Rotate the refresh token and get a new access token (an OpenID Connect client's refresh token is 401 invalid_token: it works only at /oidc/token)",
          description:
            "The presented refresh token is spent. Presenting it again within `REFRESH_REUSE_INTERVAL` returns the same new token; " +
            "after that window it revokes the whole session (401 refresh_token_reused).",
        },
      },
    )
    .post(
      "/logout",
      async ({ principal, query, set, cookie, requester }) => {
        const scope = query.scope ?? "current";
        const ended = await auth.logout(principal, scope, requester);
        if (scope !== "others") delivery.clear({ set, cookie });
        return { message: scope === "current" ? "Signed out." : `Signed out of ${ended} session(s).` };
      },
      {
        auth: true,
        query: LogoutQuery,
        response: { 200: MessageBody, ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS) },
        detail: {
          summary: "End this session (scope=current), every other session (scope=others) or all of them (scope=global)",
          description: "Ended sessions' refresh tokens and every access token they issued stop working at once.",
          security: SESSION_SECURITY,
        },
      },
    )
    .post(
      "/logout/all",
      async ({ principal, set, cookie, requester }) => {
        const ended = await auth.logout(principal, "global", requester);
        delivery.clear({ set, cookie });
        return { message: `Signed out of ${ended} session(s).` };
      },
      {
        auth: true,
        response: { 200: MessageBody, ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS) },
        detail: { summary: "End every session of this user (same as /logout?scope=global)", security: SESSION_SECURITY },
      },
    )
    .post(
      "/password",
      async ({ principal, body, requester }) => {
        const ended = await auth.changePassword(principal, body.current_password, body.new_password, requester);
        return { message: `Password changed; ${ended} other session(s) ended.` };
      },
      {
        auth: true,
        secretCheck: true,
        strictBody: PasswordChangeBody,
        body: PasswordChangeBody,
        parse: JSON_BODY,
        response: {
          200: MessageBody,
          ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, SECRET_CHECK, {
            403: ["invalid_current_password"],
            422: ["weak_password"],
          }),
        },
        detail: {
          summary: "Change the password; this session stays, every other session ends",
          description: "An account without a password (made passwordless, or passkey-first) sets one without `current_password`; an account with one must give it (403 `invalid_current_password` otherwise).",
          security: SESSION_SECURITY,
        },
      },
    )
    .delete(
      "/password",
      async ({ principal, body, requester }) => {
        const ended = await auth.removePassword(principal, body.current_password, requester);
        return { message: `Password removed: sign in with a passkey from now on; ${ended} other session(s) ended.` };
      },
      {
        auth: true,
        secretCheck: true,
        strictBody: PasswordRemoveBody,
        body: PasswordRemoveBody,
        parse: JSON_BODY,
        response: {
          200: MessageBody,
          ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, SECRET_CHECK, {
            403: ["invalid_current_password"],
            409: ["last_sign_in_method", "no_password"],
          }),
        },
        detail: {
          summary: "Remove the password: the account signs in with its passkeys only; this session stays, every other session ends",
          description:
            "Proven by the current password (throttled like a sign-in). Refused with 409 `last_sign_in_method` while the account has no passkey (not the last way in), " +
            "and 409 `no_password` when there is none. Audited as `password_removed`. A password can be set again with POST /password, without `current_password`.",
          security: SESSION_SECURITY,
        },
      },
    )
    .get("/me", async ({ identity }) => ({ user: principalUser(identity.principal), second_factors: await mfa.factors(identity.principal.userId) }), {
      authOrApiKey: true,
      response: { 200: MeResponse, ...errorResponses(SESSION_OR_KEY_GUARD) },
      detail: { summary: "The signed-in user (a session or an API key)", security: SESSION_OR_KEY_SECURITY },
    });

}
