import { Elysia, t } from "elysia";
import { ADMIN_PREFIX, AUTH_PREFIX } from "../../http/routes";
import { apiErrors } from "../../errors";
import { JSON_BODY } from "../../http/body";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import type { AuditLog } from "../audit/service";
import type { authGuard } from "../auth/guard";
import { NoContent, SESSION_SECURITY, PlainText } from "../../http/schema";
import { ADMIN_GUARD, BODY_ERRORS, CSRF_CHECK, errorResponses, SESSION_GUARD } from "../../http/error-catalogue";
import type { OidcClients } from "./clients";
import type { OidcService } from "./service";

const UriList = (description: string) => t.Array(PlainText(), { description });

const Client = t.Object({
  client_id: t.String(),
  redirect_uris: t.Array(t.String()),
  post_logout_redirect_uris: t.Array(t.String()),
  public: t.Boolean(),
  trusted: t.Boolean(),
  allowed_roles: t.Array(t.String()),
  allowed_users: t.Array(t.String({ description: "user ids" })),
  backchannel_logout_uri: t.Nullable(t.String()),
  refresh: t.Boolean(),
  machine: t.Boolean(),
  id_token_alg: t.Nullable(t.String()),
  require: t.Nullable(t.String({ description: '"passkey": sign-ins for this client must use a passkey; null: none' })),
  created_at: t.String({ format: "date-time" }),
});

const Requirement = t.Nullable(
  PlainText({
    description:
      '"passkey": every sign-in for this client must be made with a passkey (a session without one is sent through the passkey step; its ID tokens say amr hwk and acr phr); null: none',
  }),
);

const CreatedClient = t.Object({
  ...Client.properties,
  client_secret: t.Nullable(t.String({ description: "Shown this once (stored as SHA-256); null for a public client" })),
});

const CreateClientBody = t.Object({
  client_id: PlainText({ description: "1-64 of a-z 0-9 . _ -, e.g. grafana" }),
  redirect_uris: t.Optional(UriList("Exact redirect URIs (custom schemes allowed, e.g. app.immich:///oauth-callback); required unless machine")),
  post_logout_redirect_uris: t.Optional(UriList("Where RP-initiated logout may send the browser")),
  public: t.Optional(t.Boolean({ description: "No secret; PKCE required (mobile and single-page apps)" })),
  trusted: t.Optional(t.Boolean({ description: "Skip the consent page" })),
  allowed_roles: t.Optional(t.Array(PlainText(), { description: "Only users with one of these roles (or listed in allowed_users) may use it" })),
  allowed_users: t.Optional(t.Array(PlainText(), { description: "Usernames or user ids allowed to use it" })),
  backchannel_logout_uri: t.Optional(
    t.Nullable(PlainText({ description: "Where Latchkey POSTs a logout token when the user signs out (OpenID Connect Back-Channel Logout 1.0), e.g. mod_auth_openidc's redirect URI with ?logout=backchannel" })),
  ),
  refresh: t.Optional(t.Boolean({ description: "Always issue a refresh token (otherwise only for the offline_access scope)" })),
  machine: t.Optional(t.Boolean({ description: "A machine client: the client_credentials grant only (no user, no redirect URIs)" })),
  id_token_alg: t.Optional(PlainText({ description: "RS256, ES256 or EdDSA (default: OIDC_ID_TOKEN_ALG)" })),
  require: t.Optional(Requirement),
});

const ClientParams = t.Object({ client_id: PlainText() });

/** Admin management of OpenID Connect clients, and each user's consents. */
export function oidcAdminRoutes(deps: { clients: OidcClients; oidc: OidcService; guard: ReturnType<typeof authGuard>; audit: AuditLog; withRequester: RequesterPlugin }) {
  const { clients, oidc, guard, audit, withRequester } = deps;
  const record = (event: "oidc_client_created" | "oidc_client_deleted" | "oidc_client_secret_rotated" | "oidc_client_updated", userId: string, clientId: string, from: ClientInfo, more: Record<string, unknown> = {}) =>
    audit.record({ event, userId, ...from, detail: { via: "api", client_id: clientId, ...more } });

  return new Elysia()
    .use(
      new Elysia({ prefix: `${ADMIN_PREFIX}/oidc/clients`, tags: ["admin"] })
    .use(withRequester)
        .use(guard)
        .get("", async () => ({ clients: await clients.list() }), {
          admin: true,
          response: { 200: t.Object({ clients: t.Array(Client) }), ...errorResponses(ADMIN_GUARD) },
          detail: { summary: "OpenID Connect clients", security: SESSION_SECURITY },
        })
        .post(
          "",
          async ({ body, principal, set, requester }) => {
            const { client, secret } = await clients.create(body);
            await record("oidc_client_created", principal.userId, client.client_id, requester);
            set.status = 201;
            return { ...client, client_secret: secret };
          },
          {
            admin: true,
            body: CreateClientBody,
            parse: JSON_BODY,
            response: { 201: CreatedClient, ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS, { 409: ["oidc_client_exists"] }) },
            detail: { summary: "Register a client; its secret is in this answer only", security: SESSION_SECURITY },
          },
        )
        .patch(
          "/:client_id",
          async ({ params, body, principal, requester }) => {
            const client = await clients.setRequirement(params.client_id, body.require);
            await record("oidc_client_updated", principal.userId, params.client_id, requester, { require: client.require });
            return client;
          },
          {
            admin: true,
            params: ClientParams,
            body: t.Object({ require: Requirement }),
            parse: JSON_BODY,
            response: { 200: Client, ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["oidc_client_not_found"] }) },
            detail: { summary: "Change a client's requirement: require a passkey of its sign-ins, or no longer", security: SESSION_SECURITY },
          },
        )
        .delete(
          "/:client_id",
          async ({ params, principal, set, requester }) => {
            await clients.delete(params.client_id);
            await record("oidc_client_deleted", principal.userId, params.client_id, requester);
            set.status = 204;
          },
          {
            admin: true,
            params: ClientParams,
            response: { 204: NoContent("Deleted, with its consents, codes and every session its tokens belong to"), ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["oidc_client_not_found"] }) },
            detail: { summary: "Delete a client (its tokens stop working at once)", security: SESSION_SECURITY },
          },
        )
        .post(
          "/:client_id/secret",
          async ({ params, principal, requester }) => {
            const secret = await clients.rotateSecret(params.client_id);
            await record("oidc_client_secret_rotated", principal.userId, params.client_id, requester);
            return { client_id: params.client_id, client_secret: secret };
          },
          {
            admin: true,
            params: ClientParams,
            response: {
              200: t.Object({ client_id: t.String(), client_secret: t.String() }),
              ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["oidc_client_not_found"], 409: ["oidc_client_public"] }),
            },
            detail: { summary: "A new client secret (the old one stops working at once)", security: SESSION_SECURITY },
          },
        ),
    )
    .use(
      new Elysia({ prefix: `${AUTH_PREFIX}/oidc/consents`, tags: ["sessions"] })
    .use(withRequester)
        .use(guard)
        .get("", async ({ principal }) => ({ consents: await oidc.listConsents(principal.userId) }), {
          auth: true,
          response: {
            200: t.Object({ consents: t.Array(t.Object({ client_id: t.String(), scope: t.String(), created_at: t.String({ format: "date-time" }) })) }),
            ...errorResponses(SESSION_GUARD),
          },
          detail: { summary: "The applications you allowed to sign you in", security: SESSION_SECURITY },
        })
        .delete(
          "/:client_id",
          async ({ params, principal, set, requester }) => {
            if (!(await oidc.revokeConsent(principal.userId, params.client_id, requester)))
              throw apiErrors.consent_not_found("You have not allowed this application.");
            set.status = 204;
          },
          {
            auth: true,
            params: ClientParams,
            response: { 204: NoContent("Withdrawn; the application's sessions for you have ended"), ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["consent_not_found"] }) },
            detail: { summary: "Withdraw consent: the application must ask again, and its tokens for you stop working", security: SESSION_SECURITY },
          },
        ),
    );
}
