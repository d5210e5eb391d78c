import { t } from "elysia";
import { PageLimitQuery } from "../../http/pagination";
import { UserBody } from "../users/model";
import { MAX_ROLES, METADATA_MAX_BYTES } from "./accounts";
import { ROLE_PATTERN } from "../../lib/names";
import { JsonInteger, PlainText } from "../../http/schema";

export const AdminUser = t.Object(
  {
    ...UserBody.properties,
    disabled: t.Boolean(),
    metadata: t.Record(t.String(), t.Unknown(), { description: "Free JSON object set by an admin; /validate returns it" }),
    updated_at: t.String({ format: "date-time" }),
  },
  { description: "A user as an admin sees it" },
);
export type AdminUser = typeof AdminUser.static;

export const UserPage = t.Object({
  users: t.Array(AdminUser),
  next_cursor: t.Nullable(t.String({ description: "Pass as `cursor` for the next page; null on the last page" })),
});

export const ListUsersQuery = t.Object({
  query: t.Optional(PlainText({ maxLength: 254, description: "Case-insensitive substring of the username or the email" })),
  limit: PageLimitQuery,
  cursor: t.Optional(PlainText({ maxLength: 64, description: "next_cursor of the previous page" })),
});

export const UserParams = t.Object({ id: PlainText({ description: "The user's id" }) });

const RolesField = t.Array(PlainText(), { description: `Up to ${MAX_ROLES} roles of 1-32 characters from a-z 0-9 _ - (${ROLE_PATTERN.source}); \`admin\` grants this API` });

export const CreateUserBody = t.Object({
  username: PlainText({ description: "3-32 of a-z 0-9 . _ -, starting with a letter or digit; stored lower-cased" }),
  password: t.Optional(
    t.String({
      description:
        "At least `PASSWORD_MIN_LENGTH` characters, at most 1024 bytes, not a common password. Required unless `passkey_first` is true",
    }),
  ),
  passkey_first: t.Optional(
    t.Boolean({
      description: "true (and no `password`): the account has no password and sets up a passkey first; the answer carries its `passkey_setup` link",
    }),
  ),
  email: t.Optional(PlainText({ description: "Stored lower-cased; unique" })),
  roles: t.Optional(RolesField),
  email_verified: t.Optional(t.Boolean({ description: "Default false; ignored without an email" })),
});

export const PatchUserBody = t.Object({
  disabled: t.Optional(t.Boolean({ description: "true ends every session and deletes every API key of the user at once" })),
  roles: t.Optional(RolesField),
  email: t.Optional(t.Nullable(PlainText({ description: "null clears it; a new address is unverified unless email_verified says otherwise" }))),
  email_verified: t.Optional(t.Boolean()),
  // t.Unknown, checked by the service: Elysia would turn an array or a string into an object to fit a t.Record.
  metadata: t.Optional(t.Unknown({ description: `A JSON object; replaces the whole metadata; at most ${METADATA_MAX_BYTES} bytes as JSON` })),
});

/** A single-use link that signs its account in once and opens the page that adds a passkey; only its hash is kept. */
export const PasskeySetupLink = t.Object({
  link: t.String({ description: "Hand it to the person: it works once, until expires_at (24 hours)" }),
  expires_at: t.String({ format: "date-time" }),
});

export const CreatedUser = t.Object(
  { ...AdminUser.properties, passkey_setup: t.Optional(PasskeySetupLink) },
  { description: "The new user; `passkey_setup` when it was made without a password" },
);

export const PasskeyResetResponse = t.Object({
  passkey_setup: PasskeySetupLink,
  passkeys_deleted: JsonInteger({ description: "How many passkeys the user had" }),
  sessions_ended: JsonInteger({ description: "How many of their sessions ended" }),
});

/** The password an admin sets for a user. */
export const ResetPasswordBody = t.Object({
  new_password: t.String({ description: "At least `PASSWORD_MIN_LENGTH` characters, at most 1024 bytes, not a common password" }),
});
