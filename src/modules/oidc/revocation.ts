/**
 * Token revocation (RFC 7009) and introspection (RFC 7662) for the clients: each acts only on tokens issued to
 * the client that asks (another client's token is refused at revocation, inactive at introspection).
 */
import { Elysia, t } from "elysia";
import { OAuthError } from "../../errors";
import { noStore } from "../../http/cache";
import type { RequesterPlugin } from "../../http/client-ip";
import type { ClientAuthentication } from "./client-auth";
import { bodyParams } from "./params";
import type { OidcGrants } from "./grants";
import { oauthError } from "./token";

const CLIENT_ERRORS = {
  400: oauthError(
    "- `invalid_request`: token is missing, or a parameter is repeated\n" +
      "- `invalid_grant`: revocation: the token was issued to another client\n" +
      "- `unsupported_token_type`: revocation: a machine (client_credentials) access token, which lives only its short lifetime",
  ),
  401: oauthError("- `invalid_client`: unknown client, missing or wrong secret (introspection: public clients too)"),
  415: oauthError("- `unsupported_media_type`: the body is neither a form nor JSON"),
};

const Introspection = t.Object(
  {
    active: t.Boolean(),
    scope: t.Optional(t.String()),
    client_id: t.Optional(t.String()),
    username: t.Optional(t.String()),
    token_type: t.Optional(t.String()),
    exp: t.Optional(t.Number()),
    iat: t.Optional(t.Number()),
    sub: t.Optional(t.String()),
    aud: t.Optional(t.Array(t.String())),
    iss: t.Optional(t.String()),
    jti: t.Optional(t.String()),
  },
  { description: "RFC 7662 §2.2: {active: false} alone for a token that is unknown, expired, revoked or another client's" },
);

export function revocationRoutes(deps: { prefix: string; issuer: string; grants: OidcGrants; authenticateClient: ClientAuthentication; withRequester: RequesterPlugin }) {
  const { issuer, grants, authenticateClient, withRequester } = deps;

  async function clientAndToken(request: Request, body: unknown, set: { headers: Record<string, unknown> }) {
    noStore(set.headers);
    const params = bodyParams(body);
    if (!params) throw new OAuthError("invalid_request", "Every parameter must be given once, as text.");
    const client = await authenticateClient(request, params);
    if (!params.token) throw new OAuthError("invalid_request", "token is required.");
    return { client, token: params.token };
  }

  return new Elysia({ prefix: deps.prefix, tags: ["openid connect"] })
    .use(withRequester)
    .post(
      "/revoke",
      async ({ request, body, set, requester }) => {
        const { client, token } = await clientAndToken(request, body, set);
        const found = await grants.lookUp(token);
        // RFC 7009 §2.2: an unknown, expired or already revoked token is answered 200 all the same.
        if (!found) return {};
        if (found.kind === "machine") {
          if (found.claims.client_id !== client.clientId) throw new OAuthError("invalid_grant", "The token was issued to another client.");
          throw new OAuthError("unsupported_token_type", "A client_credentials token cannot be revoked; it expires on its own.");
        }
        const owner = found.kind === "access" ? { clientId: found.claims.client_id, sessionId: found.owner.sessionId, userId: found.owner.userId } : found.grant;
        if (owner.clientId !== client.clientId) throw new OAuthError("invalid_grant", "The token was issued to another client.");
        await grants.revokeGrant(owner.sessionId, owner.userId, client.clientId, found.kind, requester);
        return {};
      },
      {
        parse: ["urlencoded", "json"],
        response: { 200: t.Object({}, { description: "Revoked (with the whole grant: its access and refresh tokens), or was no token (RFC 7009 §2.2)" }), ...CLIENT_ERRORS },
        detail: {
          summary: "Revoke a token (RFC 7009): the grant it belongs to ends, its refresh and access tokens with it",
          description: "Client authentication as at the token endpoint; token_type_hint is accepted and not needed.",
        },
      },
    )
    .post(
      "/introspect",
      async ({ request, body, set }) => {
        const { client, token } = await clientAndToken(request, body, set);
        // A public client proves nothing about who asks: it could learn whether any token it found is live.
        if (client.public) throw new OAuthError("invalid_client", "Introspection needs a confidential client.", 401);
        const found = await grants.lookUp(token);
        if (!found) return { active: false };
        if (found.kind === "refresh") {
          const { grant } = found;
          if (!found.live || grant.clientId !== client.clientId) return { active: false };
          return { active: true, client_id: grant.clientId, scope: grant.scope, sub: grant.userId, exp: Math.floor(grant.expiresAt.getTime() / 1000), iss: issuer };
        }
        const { claims } = found;
        // The client it was issued to, or a resource server it names as audience (a machine client can be one).
        if (claims.client_id !== client.clientId && !claims.aud.includes(client.clientId)) return { active: false };
        return {
          active: true,
          scope: claims.scope,
          client_id: claims.client_id,
          ...(found.kind === "access" ? { username: found.owner.username } : {}),
          token_type: "Bearer",
          exp: claims.exp,
          iat: claims.iat,
          sub: claims.sub,
          aud: claims.aud,
          iss: issuer,
          jti: claims.jti,
        };
      },
      {
        parse: ["urlencoded", "json"],
        response: { 200: Introspection, ...CLIENT_ERRORS },
        detail: { summary: "Introspect a token (RFC 7662), for the client it was issued to or the resource server it names" },
      },
    );
}
