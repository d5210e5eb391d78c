import { ERROR_CODES, type ErrorCode } from "./error-codes";

/** A bad configuration value: main.ts prints its one-line message and exits 2. */
export class ConfigError extends Error {}

export interface FieldError {
  field: string;
  message: string;
}

/**
 * An expected failure with its documented status and snake_case code. Thrown by services and hooks,
 * turned into `{error, message, details?}` by the error handler in app.ts.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | OAuthErrorCode,
    message: string,
    readonly details?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  toBody(): Record<string, unknown> {
    return this.details
      ? { error: this.code, message: this.message, details: this.details }
      : { error: this.code, message: this.message };
  }
}

type ApiErrorOf = (message: string, details?: FieldError[], headers?: Record<string, string>) => ApiError;

/**
 * One constructor per code, each with the status the list in error-codes.ts gives it:
 * `apiErrors.username_taken("...")` cannot come out as anything but a 409.
 */
export const apiErrors = Object.fromEntries(
  Object.entries(ERROR_CODES).map(([code, [status]]) => [
    code,
    ((message, details, headers) => new ApiError(status, code as ErrorCode, message, details, headers)) satisfies ApiErrorOf,
  ]),
) as { readonly [Code in ErrorCode]: ApiErrorOf };

export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_grant"
  | "unsupported_grant_type"
  | "user_not_verified"
  | "mfa_required"
  | "invalid_client"
  | "unauthorized_client"
  | "invalid_scope"
  | "unsupported_token_type"
  | "invalid_target";

/**
 * RFC 6749 §5.2: the token endpoint's own error shape (plus `message`, like every other error here). 400, except
 * the two 403s that tell a client with the right password what to do instead (Auth0's `mfa_required` shape),
 * and the OpenID Connect token endpoint's 401 invalid_client.
 */
export class OAuthError extends ApiError {
  constructor(code: OAuthErrorCode, description: string, status: 400 | 401 | 403 = 400, headers?: Record<string, string>) {
    super(status, code, description, undefined, headers);
  }

  override toBody() {
    return { error: this.code, error_description: this.message, message: this.message };
  }
}

/**
 * How a failure of the token endpoint's grants reaches an OAuth client, decided by its code: every credential
 * failure is invalid_grant (RFC 6749 §5.2), a malformed request invalid_request; a rate limit keeps its 429 and
 * user_not_verified its 403 (told only after the right password, and the client can do something about it).
 */
export function toTokenEndpointError(error: unknown): unknown {
  if (!(error instanceof ApiError) || error instanceof OAuthError) return error;
  switch (error.code) {
    case "rate_limited":
      return error;
    case "user_not_verified":
      return new OAuthError("user_not_verified", error.message, 403);
    case "validation_failed":
    case "weak_password":
      return new OAuthError("invalid_request", error.details?.[0]?.message ?? error.message);
    default:
      return new OAuthError("invalid_grant", error.message);
  }
}

/** RFC 6750 §3: a 401 names the scheme; one for a credential that was presented but failed says invalid_token. */
const BEARER_CHALLENGE = 'Bearer realm="latchkey"';
const INVALID_TOKEN_CHALLENGE = `${BEARER_CHALLENGE}, error="invalid_token"`;

export const unauthorized = (message = "Authentication is required.") =>
  apiErrors.unauthorized(message, undefined, { "WWW-Authenticate": BEARER_CHALLENGE });

export const invalidToken = (message = "The access token is invalid, expired or revoked.") =>
  apiErrors.invalid_token(message, undefined, { "WWW-Authenticate": INVALID_TOKEN_CHALLENGE });

export const invalidApiKey = () =>
  apiErrors.invalid_api_key("The API key is invalid, expired or revoked.", undefined, { "WWW-Authenticate": INVALID_TOKEN_CHALLENGE });

/** 429 with RFC 9110's Retry-After (whole seconds), for every limit: per address, per account, per API key. */
export const rateLimited = (retryAfter: number, message = "Too many attempts. Try again later.") =>
  apiErrors.rate_limited(message, undefined, { "Retry-After": String(retryAfter) });

export const invalidRefreshToken = () =>
  apiErrors.invalid_refresh_token("The refresh token is unknown, expired or revoked.");

export const validationFailed = (details: FieldError[]) =>
  apiErrors.validation_failed("The request is not valid.", details);

/**
 * postgres.js's codes for a database that cannot be reached or went away, and PostgreSQL's for a server shutting
 * down, not accepting connections, or a statement cancelled by statement_timeout (db/postgres.ts).
 */
const UNAVAILABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01",
  "57P02",
  "57P03",
  "57014",
  "08000",
  "08001",
  "08003",
  "08006",
]);

/**
 * Why a query failed because the database is unavailable (the innermost cause: drizzle wraps the driver's error
 * in one that quotes the query and its parameters, which must not reach a log), or undefined for any other error.
 */
export function databaseUnavailable(error: unknown): string | undefined {
  for (let cause = error as { code?: unknown; cause?: unknown; message?: unknown } | undefined; cause; cause = cause.cause as typeof cause)
    if (typeof cause.code === "string" && UNAVAILABLE.has(cause.code)) return `${cause.code}: ${String(cause.message)}`;
  return undefined;
}
