import { t } from "elysia";
import { JsonInteger, PlainText } from "../../http/schema";

/** What a key looks like and how it is kept (modules/keys/format.ts, service.ts). */
export const API_KEY_FORMAT =
  "A key is `lk_` followed by 43 base62 characters (32 random bytes) and a 6-character base62 CRC32 checksum, " +
  "so secret scanners recognise a leaked key and a mistyped one is refused before any database lookup.";

const SCOPES_RULE =
  "At most 32 scopes, each 1-64 characters from A-Z a-z 0-9 : . _ - / * (e.g. `backup:write`); duplicates are dropped. " +
  "Latchkey does not interpret them: /validate returns them for your apps to enforce.";

export const CreateKeyBody = t.Object({
  name: PlainText({
    description: "1-64 characters of visible text (NFC-normalised and trimmed; no control characters), unique among your keys",
  }),
  expires_in: t.Optional(
    JsonInteger({
      minimum: 60,
      maximum: 315360000,
      description: "Lifetime in seconds, a JSON integer from 60 to 315360000 (10 years); omit for a key that does not expire",
    }),
  ),
  // Checked by the service (its message names the rule); described here.
  scopes: t.Optional(t.Array(PlainText(), { description: SCOPES_RULE })),
});

export const CreatedKey = t.Object(
  {
    key_id: t.String(),
    api_key: t.String({ description: `The secret, shown this once and never again (only its SHA-256 hash is stored). ${API_KEY_FORMAT}` }),
    name: t.String(),
    scopes: t.Array(t.String()),
    created_at: t.String({ format: "date-time" }),
    expires_at: t.Nullable(t.String({ format: "date-time" })),
  },
  { description: "The new key; `api_key` cannot be retrieved again" },
);

export const KeyListItem = t.Object({
  key_id: t.String(),
  name: t.String(),
  scopes: t.Array(t.String()),
  prefix: t.String({ description: "The first 8 characters after lk_, for recognising a key" }),
  created_at: t.String({ format: "date-time" }),
  expires_at: t.Nullable(t.String({ format: "date-time" })),
  last_used_at: t.Nullable(t.String({ format: "date-time", description: "Updated at most once a minute" })),
});

export const KeyParams = t.Object({ key_id: PlainText() });
