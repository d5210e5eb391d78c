import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

/**
 * The OpenID Foundation's conformance suite (https://gitlab.com/openid/conformance-suite), test plans
 * `oidcc-basic-certification-test-plan` (Basic OP), `oidcc-config-certification-test-plan` (Config OP) and
 * `oidcc-backchannel-rp-initiated-logout-certification-test-plan` (Back-Channel Logout OP): each module that
 * applies to Latchkey's subset, and the test that covers it. Modules for features Latchkey does not
 * offer are listed with why. The test below checks that every named test exists, so this list cannot rot silently.
 */
const UNIT = "test/unit/oidc.test.ts";
const JWKS = "test/e2e/jwks.test.ts";

type Coverage = { module: string; check: string; file: string; test: string } | { module: string; check: string; notApplicable: string };

export const CONFORMANCE: Coverage[] = [
  // Basic OP
  { module: "oidcc-server", check: "code flow: code, token response, ID token claims", file: UNIT, test: "confidential client (client_secret_basic), PKCE, nonce and state: ID token and userinfo carry the same claims; refresh; logout" },
  { module: "oidcc-response-type-missing", check: "a wrong or missing response_type is an error back to the client", file: UNIT, test: "unsupported response types, missing openid scope, and logout to an unregistered URI" },
  { module: "oidcc-idtoken-signature", check: "the ID token verifies against the JWKS (RS256)", file: UNIT, test: "confidential client (client_secret_basic), PKCE, nonce and state: ID token and userinfo carry the same claims; refresh; logout" },
  { module: "oidcc-idtoken-unsigned", check: "alg none ID tokens", notApplicable: "never issued; id_token_signing_alg_values_supported lists one asymmetric algorithm" },
  { module: "oidcc-userinfo-get", check: "userinfo with GET and a bearer token", file: UNIT, test: "confidential client (client_secret_basic), PKCE, nonce and state: ID token and userinfo carry the same claims; refresh; logout" },
  { module: "oidcc-userinfo-post-header", check: "userinfo with POST and a bearer header", file: "test/e2e/oidc-tokens.test.ts", test: "the client's access token is an RFC 9068 JWT a resource server verifies offline from jwks_uri" },
  { module: "oidcc-userinfo-post-body", check: "access token in a POST body", notApplicable: "optional (RFC 6750 §2.2); bearer header only" },
  { module: "oidcc-ensure-request-without-nonce-succeeds-for-code-flow", check: "nonce is optional in the code flow", file: UNIT, test: "max_age that the sign-in satisfies, POST to the authorization endpoint, unknown parameters and no nonce all succeed" },
  { module: "oidcc-scope-profile / -email / -all", check: "profile and email claims present", file: UNIT, test: "confidential client (client_secret_basic), PKCE, nonce and state: ID token and userinfo carry the same claims; refresh; logout" },
  { module: "oidcc-scope-address / -phone", check: "address and phone claims", notApplicable: "Latchkey keeps no address or phone; the scopes are ignored" },
  { module: "oidcc-ensure-other-scope-order-succeeds", check: "scope order does not matter", file: UNIT, test: "max_age that the sign-in satisfies, POST to the authorization endpoint, unknown parameters and no nonce all succeed" },
  { module: "oidcc-display-page / -popup", check: "display is accepted", file: UNIT, test: "max_age that the sign-in satisfies, POST to the authorization endpoint, unknown parameters and no nonce all succeed" },
  { module: "oidcc-prompt-login", check: "prompt=login asks for the password again", file: UNIT, test: "prompt=login and an exceeded max_age sign the browser out and ask again; a fresh sign-in then gets the code" },
  { module: "oidcc-prompt-none-not-logged-in", check: "login_required back to the client", file: UNIT, test: "prompt=none without a browser session sends login_required back to the client; with one and no consent, consent_required; with both, the code" },
  { module: "oidcc-prompt-none-logged-in", check: "prompt=none with a session gets a code", file: UNIT, test: "prompt=none without a browser session sends login_required back to the client; with one and no consent, consent_required; with both, the code" },
  { module: "oidcc-max-age-1", check: "an older sign-in than max_age asks again; auth_time present", file: UNIT, test: "prompt=login and an exceeded max_age sign the browser out and ask again; a fresh sign-in then gets the code" },
  { module: "oidcc-max-age-10000", check: "a recent sign-in satisfies max_age", file: UNIT, test: "max_age that the sign-in satisfies, POST to the authorization endpoint, unknown parameters and no nonce all succeed" },
  { module: "oidcc-ensure-request-with-unknown-parameter-succeeds", check: "unknown parameters are ignored", file: UNIT, test: "max_age that the sign-in satisfies, POST to the authorization endpoint, unknown parameters and no nonce all succeed" },
  { module: "oidcc-id-token-hint", check: "id_token_hint in an authorization request is accepted", file: UNIT, test: "max_age that the sign-in satisfies, POST to the authorization endpoint, unknown parameters and no nonce all succeed" },
  { module: "oidcc-login-hint / oidcc-ui-locales / oidcc-claims-locales / oidcc-ensure-request-with-acr-values-succeeds", check: "accepted and ignored", file: UNIT, test: "max_age that the sign-in satisfies, POST to the authorization endpoint, unknown parameters and no nonce all succeed" },
  { module: "oidcc-codereuse / oidcc-codereuse-30seconds", check: "a used code is refused and what it issued is revoked", file: UNIT, test: "code replay: refused, and the tokens issued from the code are revoked" },
  { module: "oidcc-ensure-registered-redirect-uri", check: "an unregistered redirect_uri is refused without redirecting", file: UNIT, test: "an unregistered redirect URI (or unknown client) is an error page, never a redirect" },
  { module: "oidcc-ensure-redirect-uri-in-authorization-request", check: "a missing redirect_uri is refused", file: UNIT, test: "a missing redirect_uri is an error page; request objects are refused as unsupported" },
  { module: "oidcc-server-client-secret-post", check: "client_secret_post", file: UNIT, test: "public client: none + PKCE, with client_secret_post for a confidential one" },
  { module: "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported", check: "request objects rejected as unsupported", file: UNIT, test: "a missing redirect_uri is an error page; request objects are refused as unsupported" },
  { module: "oidcc-claims-request", check: "the claims parameter", notApplicable: "claims_parameter_supported is false; every client gets the same claims" },
  { module: "oidcc-refresh-token", check: "refresh_token grant, rotation, another client refused", file: UNIT, test: "another client cannot use a client's refresh token" },
  { module: "oidcc-ensure-post-request-succeeds", check: "POST to the authorization endpoint", file: UNIT, test: "max_age that the sign-in satisfies, POST to the authorization endpoint, unknown parameters and no nonce all succeed" },
  { module: "oidcc-ensure-pkce-required (public clients)", check: "S256 required, plain refused, verifier checked", file: UNIT, test: "PKCE: a wrong or missing verifier fails; plain is refused; a public client must use it" },
  // Back-Channel Logout OP (oidcc-backchannel-rp-initiated-logout-certification-test-plan)
  { module: "oidcc-backchannel-logout-discovery-endpoint-verification", check: "backchannel_logout_supported and backchannel_logout_session_supported", file: UNIT, test: "discovery advertises back-channel logout (with sid) and prompt=select_account" },
  { module: "oidcc-backchannel-rp-initiated-logout", check: "a logout token (iss, aud, iat, exp, jti, events, sub, sid; typ logout+jwt) reaches the backchannel_logout_uri", file: "test/e2e/oidc-backchannel.test.ts", test: "a sign-out while the app is down: retried, kept across a restart, delivered when the app is back, verifiable from the JWKS" },
  // Config OP
  { module: "oidcc-discovery-endpoint-verification", check: "issuer equals the URL, required metadata present", file: UNIT, test: "the issuer is exactly PUBLIC_URL, the iss of every token; the endpoints are listed" },
  { module: "oidcc-server-rotate-keys", check: "after a key rotation, new tokens verify from the refetched JWKS; old ones too", file: JWKS, test: "latchkey keys rotate while the server runs: old and new tokens verify; the retired key leaves the set after its last token" },
];

test("every applicable conformance check names a test that exists", () => {
  for (const entry of CONFORMANCE) {
    if ("notApplicable" in entry) {
      expect(entry.notApplicable.length).toBeGreaterThan(10);
      continue;
    }
    const source = readFileSync(resolve(import.meta.dir, "../..", entry.file), "utf8");
    expect({ module: entry.module, found: source.includes(`test("${entry.test}"`) || source.includes(`test(\`${entry.test}\``) }).toEqual({ module: entry.module, found: true });
  }
});
