import type { ErrorCode } from "./http/error-catalogue";

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

export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_grant"
  | "unsupported_grant_type"
  | "user_not_verified"
  | "mfa_required"
  | "invalid_client"
  | "unauthorized_client";

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

export const unauthorized = (message = "Authentication is required.") =>
  new ApiError(401, "unauthorized", message, undefined, { "WWW-Authenticate": 'Bearer realm="latchkey"' });

export const invalidToken = (message = "The access token is invalid, expired or revoked.") =>
  new ApiError(401, "invalid_token", message, undefined, {
    "WWW-Authenticate": 'Bearer realm="latchkey", error="invalid_token"',
  });

export const invalidRefreshToken = () =>
  new ApiError(401, "invalid_refresh_token", "The refresh token is unknown, expired or revoked.");

export const validationFailed = (details: FieldError[]) =>
  new ApiError(422, "validation_failed", "The request is not valid.", details);
