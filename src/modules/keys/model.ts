import { t } from "elysia";

export const CreateKeyBody = t.Object({
  name: t.String({ description: "1-64 characters, unique among your keys" }),
  expires_in: t.Optional(t.Integer({ description: "Lifetime in seconds (60 to 315360000); omit for a key that does not expire" })),
  scopes: t.Optional(t.Array(t.String(), { description: "Free-form scopes, returned by /validate for your apps to enforce" })),
});

export const CreatedKey = t.Object({
  key_id: t.String(),
  api_key: t.String({ description: "The secret: shown this once and never again" }),
  name: t.String(),
  scopes: t.Array(t.String()),
  created_at: t.String({ format: "date-time" }),
  expires_at: t.Nullable(t.String({ format: "date-time" })),
});

export const KeyListItem = t.Object({
  key_id: t.String(),
  name: t.String(),
  scopes: t.Array(t.String()),
  prefix: t.String({ description: "The first 8 characters after lk_, for recognising a key" }),
  created_at: t.String({ format: "date-time" }),
  expires_at: t.Nullable(t.String({ format: "date-time" })),
  last_used_at: t.Nullable(t.String({ format: "date-time", description: "Updated at most once a minute" })),
});

export const KeyParams = t.Object({ key_id: t.String() });
