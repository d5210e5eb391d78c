import { t, type TSchema } from "elysia";
import { withHeaders } from "@elysiajs/openapi";
import { ERROR_CODES, type ErrorCode, type ErrorStatus } from "../error-codes";

/** Which error codes a route answers with each status. */
export type ErrorSpec = { readonly [S in ErrorStatus]?: readonly ErrorCode[] };

const errorShape = {
  message: t.String({ description: "A sentence for a human" }),
  details: t.Optional(
    t.Array(t.Object({ field: t.String(), message: t.String() }), {
      description: "validation_failed and weak_password only: each field at fault (never the submitted value)",
    }),
  ),
};

/** The shape of every error; routes use errorResponses, which says which codes each status carries. */
export const ErrorBody = t.Object(
  { error: t.String({ description: "snake_case error code" }), ...errorShape },
  { description: "Every error has this shape." },
);

const WWW_AUTHENTICATE = t.String({ description: 'Bearer realm="latchkey", with error="invalid_token" for a bad token or API key' });

/** Response headers that come with some codes. */
const HEADERS_BY_CODE: Partial<Record<ErrorCode, Record<string, TSchema>>> = {
  unauthorized: { "WWW-Authenticate": WWW_AUTHENTICATE },
  invalid_token: { "WWW-Authenticate": WWW_AUTHENTICATE },
  invalid_api_key: { "WWW-Authenticate": WWW_AUTHENTICATE },
  rate_limited: { "Retry-After": t.String({ description: "Seconds to wait before trying again" }) },
  database_unavailable: { "Retry-After": t.String({ description: "Seconds to wait before trying again" }) },
  payload_too_large: { Connection: t.String({ description: "close" }) },
};

/** `- \`code\`: meaning` lines (Markdown, which OpenAPI descriptions allow). */
export const describeCodes = (codes: readonly string[], meaning: (code: string) => string) =>
  codes.map((code) => `- \`${code}\`: ${meaning(code)}`).join("\n");

/**
 * One error response whose description names the codes it carries. `error` stays a plain string (no enum):
 * responses are validated, and a code added later must not turn into a 500.
 */
export function errorBody(codes: readonly ErrorCode[]): typeof ErrorBody {
  const unique = [...new Set(codes)];
  const schema = t.Object(
    { error: t.String({ description: `snake_case error code: ${unique.join(", ")}` }), ...errorShape },
    { description: describeCodes(unique, (code) => ERROR_CODES[code as ErrorCode][1]) },
  );
  const headers = Object.assign({}, ...unique.map((code) => HEADERS_BY_CODE[code] ?? {})) as Record<string, TSchema>;
  return Object.keys(headers).length ? withHeaders(schema, headers) : schema;
}

type StatusesOf<S extends readonly ErrorSpec[]> = Extract<{ [I in keyof S]: keyof S[I] }[number], ErrorStatus>;

/**
 * The error responses of a route: the code lists of several specs (e.g. its guard's and its own) merged into one
 * response per status, typed with exactly those statuses.
 */
export function errorResponses<const S extends readonly ErrorSpec[]>(...specs: S): { [K in StatusesOf<S>]: typeof ErrorBody } {
  const merged = new Map<number, ErrorCode[]>();
  for (const spec of specs)
    for (const [status, codes] of Object.entries(spec) as [string, readonly ErrorCode[]][])
      merged.set(Number(status), [...(merged.get(Number(status)) ?? []), ...codes]);
  return Object.fromEntries([...merged].map(([status, codes]) => [status, errorBody(codes)])) as { [K in StatusesOf<S>]: typeof ErrorBody };
}

/**
 * Any request with a body passes the global parser (src/http/body.ts) first, even on a route that takes none:
 * it must be a JSON object.
 */
export const BODY_ERRORS = {
  400: ["invalid_json"],
  413: ["payload_too_large"],
  415: ["unsupported_media_type"],
  422: ["validation_failed"],
} as const satisfies ErrorSpec;
/** With DATABASE_URL: PostgreSQL did not answer in time (every route that reads a session, a key or an account). */
const DATABASE_ERRORS = { 503: ["database_unavailable"] } as const satisfies ErrorSpec;
export const INVALID_INPUT = { 422: ["validation_failed"] } as const satisfies ErrorSpec;
/** `secretCheck` routes: the per-IP limit (and, where a password is checked, the per-account delays). */
export const SECRET_CHECK = { 429: ["rate_limited"], ...DATABASE_ERRORS } as const satisfies ErrorSpec;
/** A state-changing route that accepts the access cookie (cookie mode): the Origin check. */
export const CSRF_CHECK = { 403: ["csrf_rejected"] } as const satisfies ErrorSpec;
const CREDENTIAL_ERRORS = { 401: ["unauthorized", "invalid_token", "invalid_api_key"], ...DATABASE_ERRORS } as const satisfies ErrorSpec;
/** The `authOrApiKey` guard: a session or an API key; a key over API_KEY_RATE_LIMIT is 429. */
export const SESSION_OR_KEY_GUARD = { ...CREDENTIAL_ERRORS, 429: ["rate_limited"] } as const satisfies ErrorSpec;
/**
 * The `auth` guard: a session. An API key is checked (a bad one is 401 invalid_api_key), then refused with
 * session_required without spending its quota.
 */
export const SESSION_GUARD = { ...CREDENTIAL_ERRORS, 403: ["session_required"] } as const satisfies ErrorSpec;
/** The `admin` guard: a session whose user has the admin role. */
export const ADMIN_GUARD = { ...CREDENTIAL_ERRORS, 403: ["session_required", "forbidden"] } as const satisfies ErrorSpec;
