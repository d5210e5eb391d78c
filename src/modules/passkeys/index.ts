import { Elysia } from "elysia";
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from "@simplewebauthn/server";
import type { Delivery } from "../../delivery";
import { JSON_BODY } from "../../http/body";
import { noStore } from "../../http/cache";
import type { RequesterPlugin } from "../../http/client-ip";
import { BODY_ERRORS, CSRF_CHECK, errorResponses, SECRET_CHECK, SESSION_GUARD } from "../../http/error-catalogue";
import { AUTH_PREFIX } from "../../http/routes";
import { NoContent, SESSION_SECURITY } from "../../http/schema";
import { strictBodies } from "../../http/strict-body";
import type { rateLimitPlugin } from "../../limits/plugin";
import type { authGuard } from "../auth/guard";
import { ChallengeResponse, TokenResponse } from "../auth/model";
import type { AuthService } from "../auth/service";
import { signInAnswer } from "../auth/sign-in-answer";
import { CeremonyOptions, LoginVerifyBody, Passkey, PasskeyList, PasskeyParams, RegisterVerifyBody, RenameBody } from "./model";
import { publicPasskey, type PasskeyService } from "./service";

/** WebAuthn for native and single-page apps: registering passkeys, managing them, and signing in with one. */
export function passkeyRoutes(deps: {
  passkeys: PasskeyService;
  auth: AuthService;
  delivery: Delivery;
  guard: ReturnType<typeof authGuard>;
  rateLimit: ReturnType<typeof rateLimitPlugin>;
  withRequester: RequesterPlugin;
}) {
  const { passkeys, auth, delivery, guard, rateLimit, withRequester } = deps;
  return new Elysia({ prefix: AUTH_PREFIX, tags: ["passkeys"] })
    .use(withRequester)
    .use(guard)
    .use(strictBodies)
    .use(rateLimit)
    .post(
      "/passkeys/register/options",
      async ({ principal, set }) => {
        noStore(set.headers);
        return passkeys.registrationOptions(principal);
      },
      {
        auth: true,
        secretCheck: true,
        response: { 200: CeremonyOptions, ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, SECRET_CHECK) },
        detail: {
          summary: "Options for registering a passkey (navigator.credentials.create)",
          description:
            "A discoverable credential with user verification preferred, attestation `none`; `excludeCredentials` lists the account's passkeys, so an authenticator that holds one refuses to make a second. " +
            "The options work once, for 5 minutes, for this account only.",
          security: SESSION_SECURITY,
        },
      },
    )
    .post(
      "/passkeys/register/verify",
      async ({ principal, body, set, requester }) => {
        const row = await passkeys.register(principal, body.credential as unknown as RegistrationResponseJSON, body.name, requester);
        set.status = 201;
        return publicPasskey(row);
      },
      {
        auth: true,
        secretCheck: true,
        strictBody: RegisterVerifyBody,
        body: RegisterVerifyBody,
        parse: JSON_BODY,
        response: {
          201: Passkey,
          ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, SECRET_CHECK, {
            400: ["passkey_wrong_origin", "passkey_wrong_rp_id", "passkey_verification_failed"],
            401: ["passkey_challenge_expired"],
            409: ["passkey_already_registered"],
          }),
        },
        detail: {
          summary: "Store a new passkey: the browser's answer to the registration options",
          description:
            "Only the public key is stored. Synced passkeys (backup eligible) are accepted. Every refusal is audited (`passkey_registration_failed`); the options are spent even by a refused answer.",
          security: SESSION_SECURITY,
        },
      },
    )
    .get("/passkeys", async ({ principal }) => ({ passkeys: (await passkeys.list(principal.userId)).map(publicPasskey) }), {
      auth: true,
      response: { 200: PasskeyList, ...errorResponses(SESSION_GUARD) },
      detail: { summary: "The account's passkeys, oldest first", security: SESSION_SECURITY },
    })
    .patch("/passkeys/:id", async ({ principal, params, body, requester }) => publicPasskey(await passkeys.rename(principal, params.id, body.name.trim(), requester)), {
      auth: true,
      strictBody: RenameBody,
      params: PasskeyParams,
      body: RenameBody,
      parse: JSON_BODY,
      response: { 200: Passkey, ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["passkey_not_found"] }) },
      detail: { summary: "Rename a passkey", security: SESSION_SECURITY },
    })
    .delete(
      "/passkeys/:id",
      async ({ principal, params, set, requester }) => {
        await passkeys.remove(principal, params.id, requester);
        set.status = 204;
      },
      {
        auth: true,
        params: PasskeyParams,
        response: { 204: NoContent("Deleted"), ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["passkey_not_found"], 409: ["last_sign_in_method"] }) },
        detail: {
          summary: "Delete a passkey",
          description: "The authenticator still holds it, but it signs in nowhere here any more. The last passkey of an account without a password is refused with 409 `last_sign_in_method` (not the last way in): add another passkey or set a password first.",
          security: SESSION_SECURITY,
        },
      },
    )
    .post(
      "/login/passkey/options",
      ({ set }) => {
        noStore(set.headers);
        return passkeys.loginOptions();
      },
      {
        secretCheck: "sign-in",
        response: { 200: CeremonyOptions, ...errorResponses(BODY_ERRORS, SECRET_CHECK, CSRF_CHECK) },
        detail: {
          summary: "Options for signing in with a passkey (navigator.credentials.get), usernameless",
          description: "No username is asked: any passkey of this server answers, and names its account. The options work once, for 5 minutes.",
        },
      },
    )
    .post(
      "/login/passkey/verify",
      async ({ body, set, cookie, requester }) => {
        const { user, userVerified } = await passkeys.authenticate(body.credential as unknown as AuthenticationResponseJSON, requester);
        return signInAnswer(delivery, { set, cookie }, await auth.loginWithPasskey(user, userVerified, requester));
      },
      {
        secretCheck: "sign-in",
        body: LoginVerifyBody,
        parse: JSON_BODY,
        response: {
          200: TokenResponse,
          202: ChallengeResponse,
          ...errorResponses(BODY_ERRORS, SECRET_CHECK, CSRF_CHECK, {
            400: ["passkey_wrong_origin", "passkey_wrong_rp_id", "passkey_verification_failed"],
            401: ["passkey_challenge_expired", "passkey_unknown_credential", "passkey_counter_regression"],
            403: ["account_disabled", "user_not_verified"],
          }),
        },
        detail: {
          summary: "Sign in with a passkey: the browser's answer to the sign-in options",
          description:
            "Answers the token response of the delivery mode (`TOKEN_DELIVERY`). An assertion with user verification (the authenticator's PIN or biometric) is a complete sign-in; " +
            "without it, it counts as one factor and an account with a second step gets the 202 challenge of POST /login (answer it at POST /login/verify). " +
            "A signature counter that went back (a cloned authenticator) is refused with `passkey_counter_regression` and audited.",
        },
      },
    );
}
