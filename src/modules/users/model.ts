import { t } from "elysia";

/** What clients may see of a user: every answer that names a user uses this schema, and its type. */
export const UserBody = t.Object({
  id: t.String(),
  username: t.String(),
  email: t.Nullable(t.String()),
  email_verified: t.Boolean(),
  roles: t.Array(t.String()),
  created_at: t.String({ format: "date-time" }),
});
