/** The token endpoint (RFC 6749 §3.2): authorization_code with PKCE, refresh_token and client_credentials. */
import { Elysia, t } from "elysia";
import { OAuthError } from "../../errors";
import { noStore } from "../../http/cache";
import type { RequesterPlugin } from "../../http/client-ip";
import type { ClientAuthentication } from "./client-auth";
import { bodyParams } from "./params";
import type { OidcGrants } from "./grants";

/** An RFC 6749 §5.2 error body, documented by its codes (one "- `code`: meaning" line each). */
export const oauthError = (lines: string) => t.Object({ error: t.String(), error_description: t.String(), message: t.String() }, { description: lines });

const TokenBody = t.Object(
  {
    access_token: t.String({ description: "RFC 9068 JWT (typ at+jwt) for this client: verifiable from jwks_uri; never a credential for Latchkey's own API" }),
    token_type: t.Literal("Bearer"),
    expires_in: t.Number(),
    refresh_token: t.Optional(t.String({ description: "Only with the offline_access scope, or for a client registered with refresh" })),
    id_token: t.Optional(t.String({ description: "Absent for client_credentials" })),
    scope: t.String(),
  },
  { description: "RFC 6749 §5.1 + OpenID Connect Core §3.1.3.3" },
);

const TokenErrors = {
  400: oauthError(
    "- `invalid_request`: a parameter is missing, repeated or malformed\n" +
      "- `invalid_grant`: the code is unknown, expired, used (which revokes what it issued), another client's, for another redirect_uri or PKCE verifier; or the refresh token is unknown, expired, revoked, reused or another client's; or the user was disabled or lost access to the client\n" +
      "- `invalid_scope`: a refresh asked for a scope that was not granted, or a machine token for a user's scope\n" +
      "- `invalid_target`: resource is not an absolute URI\n" +
      "- `unauthorized_client`: client_credentials by a client that is not a machine client, or another grant by one\n" +
      "- `unsupported_grant_type`: grant_type is none of authorization_code, refresh_token and client_credentials\n" +
      "- `payload_too_large`: the body is over 64 KiB",
  ),
  401: oauthError("- `invalid_client`: unknown client, missing or wrong secret, or a secret sent by a public client"),
  415: oauthError("- `unsupported_media_type`: the body is neither a form nor JSON"),
};

export function tokenRoutes(deps: { prefix: string; grants: OidcGrants; authenticateClient: ClientAuthentication; withRequester: RequesterPlugin }) {
  const { grants, authenticateClient, withRequester } = deps;
  return new Elysia({ prefix: deps.prefix, tags: ["openid connect"] }).use(withRequester).post(
    "/token",
    async ({ request, set, body, requester }) => {
      noStore(set.headers);
      set.headers.pragma = "no-cache";
      // Repeated parameters arrive as lists (http/body.ts) and are refused here (RFC 6749 §3.2).
      const params = bodyParams(body);
      if (!params) throw new OAuthError("invalid_request", "Every parameter must be given once, as text.");
      const client = await authenticateClient(request, params);
      const grant = params.grant_type;
      if (client.machine && grant !== "client_credentials") throw new OAuthError("unauthorized_client", "A machine client uses client_credentials only.");
      if (grant === "authorization_code") {
        if (!params.code) throw new OAuthError("invalid_request", "code is required.");
        return grants.exchangeCode(client, { code: params.code, redirectUri: params.redirect_uri, codeVerifier: params.code_verifier, resource: params.resource }, requester);
      }
      if (grant === "refresh_token") {
        if (!params.refresh_token) throw new OAuthError("invalid_request", "refresh_token is required.");
        return grants.refresh(client, { refreshToken: params.refresh_token, scope: params.scope, resource: params.resource }, requester);
      }
      if (grant === "client_credentials") return grants.clientCredentials(client, { scope: params.scope, resource: params.resource });
      throw new OAuthError("unsupported_grant_type", "grant_type must be authorization_code, refresh_token or client_credentials.");
    },
    {
      parse: ["urlencoded", "json"],
      response: { 200: TokenBody, ...TokenErrors },
      detail: {
        summary: "OpenID Connect token endpoint: authorization_code (with PKCE), refresh_token and client_credentials",
        description:
          "Client authentication: client_secret_basic, client_secret_post, or none for a public client. `resource` (RFC 8707) sets the access token's audience (default: the client). Errors are RFC 6749 §5.2.",
      },
    },
  );
}
