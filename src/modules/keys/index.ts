import { Elysia, t } from "elysia";
import { AUTH_PREFIX } from "../../http/routes";
import { strictBodies } from "../../http/strict-body";
import type { RequesterPlugin } from "../../http/client-ip";
import type { AuditLog } from "../audit/service";
import type { authGuard } from "../auth/guard";
import { NoContent, SESSION_SECURITY } from "../../http/schema";
import { BODY_ERRORS, CSRF_CHECK, errorResponses, SESSION_GUARD } from "../../http/error-catalogue";
import { API_KEY_FORMAT, CreateKeyBody, CreatedKey, KeyListItem, KeyParams } from "./model";
import { KEY_CREATIONS_PER_HOUR, type ApiKeyService } from "./service";
import { JSON_BODY } from "../../http/body";
import { noStore } from "../../http/cache";

/** API key management. Only a session of the key's own user may create, list or delete keys. */
export function keyRoutes(deps: {
  apiKeys: ApiKeyService;
  guard: ReturnType<typeof authGuard>;
  audit: AuditLog;
  withRequester: RequesterPlugin;
}) {
  const { apiKeys, guard, audit, withRequester } = deps;

  return new Elysia({ prefix: AUTH_PREFIX, tags: ["api keys"] })
    .use(withRequester)
    .use(guard)
    .use(strictBodies)
    .post(
      "/keys",
      async ({ principal, body, set, requester }) => {
        // The owner is always the session's user: no user id is ever taken from the request.
        const created = await apiKeys.create(principal, { name: body.name, expiresIn: body.expires_in, scopes: body.scopes });
        await audit.record({
          event: "key_created",
          userId: principal.userId,
          ...requester,
          detail: { key_id: created.key_id, name: created.name },
        });
        set.status = 201;
        noStore(set.headers);
        return created;
      },
      {
        auth: true,
        strictBody: CreateKeyBody,
        body: CreateKeyBody,
        parse: JSON_BODY,
        response: {
          201: CreatedKey,
          ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, { 403: ["key_limit_reached"], 409: ["key_name_taken"], 429: ["rate_limited"] }),
        },
        detail: {
          summary: "Create an API key (the secret is in this response only)",
          description:
            `${API_KEY_FORMAT} \`api_key\` is in this response only: the server keeps its SHA-256 hash, never the key. ` +
            "Use it as `X-API-Key: lk_...` or `Authorization: Bearer lk_...` on GET /me and GET /validate, in every delivery mode. " +
            "Only a signed-in session creates keys, always for its own user (an API key gets 403 session_required). " +
            `A user may create ${KEY_CREATIONS_PER_HOUR} keys an hour (429 rate_limited past that).`,
          security: SESSION_SECURITY,
        },
      },
    )
    .get("/keys", ({ principal }) => apiKeys.list(principal.userId), {
      auth: true,
      response: { 200: t.Array(KeyListItem), ...errorResponses(SESSION_GUARD) },
      detail: {
        summary: "List your API keys (never their secrets)",
        description: "Each key shows its `prefix` (the 8 characters after lk_) to recognise it by; the secret itself is never stored.",
        security: SESSION_SECURITY,
      },
    })
    .delete(
      "/keys/:key_id",
      async ({ principal, params, set, requester }) => {
        await apiKeys.delete(principal.userId, params.key_id);
        await audit.record({ event: "key_deleted", userId: principal.userId, ...requester, detail: { key_id: params.key_id } });
        set.status = 204;
      },
      {
        auth: true,
        params: KeyParams,
        response: {
          204: NoContent("The key is deleted: its next request gets 401 invalid_api_key"),
          ...errorResponses(SESSION_GUARD, CSRF_CHECK, BODY_ERRORS, { 404: ["key_not_found"] }),
        },
        detail: {
          summary: "Delete an API key: it fails from the next request on",
          description: "Another user's key answers 404 key_not_found too, so a key id reveals nothing.",
          security: SESSION_SECURITY,
        },
      },
    );
}
