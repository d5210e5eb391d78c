import { t } from "elysia";

/** OpenAPI security requirements, naming the schemes declared in modules/system. */
export const SESSION_SECURITY: Record<string, string[]>[] = [{ bearer: [] }, { cookie: [] }];
export const SESSION_OR_KEY_SECURITY: Record<string, string[]>[] = [...SESSION_SECURITY, { apiKey: [] }];

export const ErrorBody = t.Object(
  {
    error: t.String({ description: "snake_case error code" }),
    message: t.String({ description: "A sentence for a human" }),
    details: t.Optional(t.Array(t.Object({ field: t.String(), message: t.String() }))),
  },
  { description: "Every error has this shape." },
);

export const OAuthErrorBody = t.Object(
  {
    error: t.Union([t.Literal("invalid_request"), t.Literal("invalid_grant"), t.Literal("unsupported_grant_type")]),
    error_description: t.String(),
    message: t.String(),
  },
  { description: "RFC 6749 §5.2 error response" },
);

export const UserBody = t.Object({
  id: t.String(),
  username: t.String(),
  email: t.Nullable(t.String()),
  email_verified: t.Boolean(),
  roles: t.Array(t.String()),
  created_at: t.String({ format: "date-time" }),
});

export const RegisterBody = t.Object({
  username: t.String({ description: "3-32 of a-z 0-9 . _ -, starting with a letter or digit; stored lower-cased" }),
  password: t.String({ description: "At least PASSWORD_MIN_LENGTH characters, at most 1024 bytes" }),
  email: t.Optional(t.String({ description: "Stored lower-cased; unique" })),
});

export const LoginBody = t.Object({
  username: t.Optional(t.String({ description: "A username or an email address, case-insensitive" })),
  email: t.Optional(t.String({ description: "Same as username: either field may carry either value" })),
  password: t.String(),
});

// Loosely typed on purpose: the token endpoint reports a malformed request as RFC 6749 invalid_request, not 422.
export const TokenRequestBody = t.Object({
  grant_type: t.Optional(t.Unknown({ description: "string: password or refresh_token" })),
  username: t.Optional(t.Unknown({ description: "string: username or email (password grant)" })),
  password: t.Optional(t.Unknown({ description: "string (password grant)" })),
  refresh_token: t.Optional(t.Unknown({ description: "string (refresh_token grant)" })),
});

export const RefreshBody = t.Object({
  refresh_token: t.Optional(t.String({ description: "bearer and header modes; cookie mode reads the refresh cookie" })),
});

const tokenFields = {
  access_token: t.String(),
  token_type: t.Literal("bearer"),
  expires_in: t.Integer({ description: "Seconds until the access token expires" }),
  refresh_token: t.String(),
};

export const OAuthTokenResponse = t.Object(tokenFields, { description: "RFC 6749 §5.1 token response" });

export const TokenResponse = t.Union(
  [
    t.Object({ ...tokenFields, user: UserBody }, { title: "bearer / header mode" }),
    t.Object({ message: t.String(), expires_in: t.Integer(), user: UserBody }, { title: "cookie mode (tokens in cookies)" }),
  ],
  { description: "Token response; its shape depends on TOKEN_DELIVERY" },
);

export const MessageBody = t.Object({ message: t.String() });

export const MeResponse = t.Object({ user: UserBody });

const identityFields = {
  user_id: t.String(),
  username: t.String(),
  email: t.Nullable(t.String()),
  roles: t.Array(t.String()),
  metadata: t.Record(t.String(), t.Unknown(), { description: "Free JSON set by an admin (e.g. a licensing tier)" }),
};

export const ValidateResponse = t.Union([
  t.Object(
    {
      ...identityFields,
      session_id: t.String(),
      expires_at: t.String({ format: "date-time", description: "When the presented access token expires" }),
    },
    { title: "access token" },
  ),
  t.Object(
    { ...identityFields, key_id: t.String(), scopes: t.Array(t.String()), auth: t.Literal("api_key") },
    { title: "API key" },
  ),
]);

export const LogoutQuery = t.Object({
  scope: t.Optional(t.Union([t.Literal("current"), t.Literal("others"), t.Literal("global")], { description: "Default current" })),
});

export const PasswordChangeBody = t.Object({
  current_password: t.String(),
  new_password: t.String({ description: "At least PASSWORD_MIN_LENGTH characters, at most 1024 bytes, not a common password" }),
});
