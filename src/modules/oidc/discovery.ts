import { Elysia, t } from "elysia";
import { PHISHING_RESISTANT_ACR } from "../../lib/amr";
import { ASYMMETRIC_ALGS, type JwtAlg } from "../../lib/jwt-algs";
import { JWKS_PATH } from "../signing-keys";
import { PROMPTS } from "./authorize";
import { SCOPES } from "./claims";
import { OIDC_PREFIX } from "./params";

export const DISCOVERY_PATH = "/.well-known/openid-configuration";

/** OpenID Provider metadata (OpenID Connect Discovery 1.0 §3): exactly what this provider implements. */
export function discoveryRoutes(deps: { issuer: string; idTokenAlg: JwtAlg }) {
  const { issuer } = deps;
  const endpoint = (path: string) => `${issuer}${OIDC_PREFIX}${path}`;
  const discovery = {
    issuer,
    authorization_endpoint: endpoint("/authorize"),
    token_endpoint: endpoint("/token"),
    userinfo_endpoint: endpoint("/userinfo"),
    revocation_endpoint: endpoint("/revoke"),
    introspection_endpoint: endpoint("/introspect"),
    end_session_endpoint: endpoint("/logout"),
    jwks_uri: `${issuer}${JWKS_PATH}`,
    scopes_supported: SCOPES,
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: ["authorization_code", "refresh_token", "client_credentials"],
    subject_types_supported: ["public"],
    // The instance's default first; a client may be registered with another (--id-token-alg).
    id_token_signing_alg_values_supported: [deps.idTokenAlg, ...ASYMMETRIC_ALGS.filter((alg) => alg !== deps.idTokenAlg)],
    token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
    revocation_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
    introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
    code_challenge_methods_supported: ["S256"],
    prompt_values_supported: PROMPTS,
    // `phr` (OpenID EAP ACR values): a sign-in with a passkey, asked for by acr_values=phr, said by the ID token's acr.
    acr_values_supported: [PHISHING_RESISTANT_ACR],
    claims_supported: ["sub", "iss", "aud", "exp", "iat", "auth_time", "amr", "acr", "nonce", "sid", "preferred_username", "name", "email", "email_verified", "groups"],
    authorization_response_iss_parameter_supported: true,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    claims_parameter_supported: false,
    // OpenID Connect Back-Channel Logout 1.0 §2.1: logout tokens carry sid (the ID token's) as well as sub.
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
  };

  return new Elysia({ tags: ["openid connect"] }).get(
    DISCOVERY_PATH,
    ({ set }) => {
      set.headers["cache-control"] = "public, max-age=300";
      return discovery;
    },
    {
      response: {
        200: t.Object(
          { issuer: t.String(), authorization_endpoint: t.String(), token_endpoint: t.String(), jwks_uri: t.String() },
          { additionalProperties: true, description: "OpenID Connect Discovery 1.0 §3" },
        ),
      },
      detail: { summary: "OpenID Provider metadata (issuer = PUBLIC_URL = the iss of every token)" },
    },
  );
}
