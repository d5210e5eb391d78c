import { Elysia, t } from "elysia";
import type { ClientInfoReader } from "../../http/client-ip";
import type { AuditLog } from "../audit/service";
import type { authGuard } from "../auth/guard";
import { ErrorBody, SESSION_SECURITY } from "../auth/model";
import { CreateKeyBody, CreatedKey, KeyListItem, KeyParams } from "./model";
import type { ApiKeyService } from "./service";
import { JSON_BODY } from "../../http/body";

/** API key management. Only a session of the key's own user may create, list or delete keys. */
export function keyRoutes(deps: {
  apiKeys: ApiKeyService;
  guard: ReturnType<typeof authGuard>;
  audit: AuditLog;
  readClient: ClientInfoReader;
}) {
  const { apiKeys, guard, audit, readClient } = deps;

  return new Elysia({ prefix: "/api/v1/auth", tags: ["api keys"] })
    .use(guard)
    .post(
      "/keys",
      ({ principal, body, request, server, set }) => {
        // The owner is always the session's user: no user id is ever taken from the request.
        const created = apiKeys.create(principal.userId, { name: body.name, expiresIn: body.expires_in, scopes: body.scopes });
        audit.record({
          event: "key_created",
          userId: principal.userId,
          ...readClient(request, server),
          detail: { key_id: created.key_id, name: created.name },
        });
        set.status = 201;
        set.headers["cache-control"] = "no-store";
        return created;
      },
      {
        auth: true,
        body: CreateKeyBody,
        parse: JSON_BODY,
        response: { 201: CreatedKey, 401: ErrorBody, 403: ErrorBody, 409: ErrorBody, 422: ErrorBody },
        detail: { summary: "Create an API key (the secret is in this response only)", security: SESSION_SECURITY },
      },
    )
    .get("/keys", ({ principal }) => apiKeys.list(principal.userId), {
      auth: true,
      response: { 200: t.Array(KeyListItem), 401: ErrorBody, 403: ErrorBody },
      detail: { summary: "List your API keys (never their secrets)", security: SESSION_SECURITY },
    })
    .delete(
      "/keys/:key_id",
      ({ principal, params, request, server, set }) => {
        apiKeys.delete(principal.userId, params.key_id);
        audit.record({ event: "key_deleted", userId: principal.userId, ...readClient(request, server), detail: { key_id: params.key_id } });
        set.status = 204;
      },
      {
        auth: true,
        params: KeyParams,
        response: { 204: t.Void(), 401: ErrorBody, 403: ErrorBody, 404: ErrorBody },
        detail: { summary: "Delete an API key: it fails from the next request on", security: SESSION_SECURITY },
      },
    );
}
