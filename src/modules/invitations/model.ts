import { t } from "elysia";
import { JsonInteger, PlainText } from "../../http/schema";
import { MAX_DURATION_SECONDS } from "../../lib/duration";
import { ROLE_PATTERN } from "../../lib/names";
import { DEFAULT_INVITATION_TTL, invitationState, MAX_INVITATION_USES, type Invitation as Row } from "./service";

export const InvitationBody = t.Object(
  {
    id: t.String(),
    email: t.Nullable(t.String({ description: "The address the account gets (pinned); null: the invitee chooses" })),
    mailed: t.Boolean({ description: "The link was mailed to `email`: an account made with it starts with a verified address" }),
    roles: t.Array(t.String(), { description: "Roles the new account gets" }),
    max_uses: JsonInteger(),
    uses: JsonInteger({ description: "Accounts made with the link so far" }),
    state: t.String({ description: "pending, `used n of m`, expired or revoked" }),
    expires_at: t.String({ format: "date-time" }),
    revoked_at: t.Nullable(t.String({ format: "date-time" })),
    created_by: t.Nullable(t.String({ description: "The admin's user id; null when made with the CLI" })),
    created_at: t.String({ format: "date-time" }),
  },
  { description: "An invitation as an admin sees it (never its token)" },
);

export function toInvitationBody(row: Row, now = new Date()): typeof InvitationBody.static {
  return {
    id: row.id,
    email: row.email,
    mailed: row.mailed,
    roles: row.roles,
    max_uses: row.maxUses,
    uses: row.uses,
    state: invitationState(row, now),
    expires_at: row.expiresAt.toISOString(),
    revoked_at: row.revokedAt?.toISOString() ?? null,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
  };
}

export const InvitationList = t.Object({ invitations: t.Array(InvitationBody, { description: "Newest first, at most 200" }) });

export const CreatedInvitation = t.Object({
  invitation: InvitationBody,
  link: t.String({ description: "`PUBLIC_URL/invite/<token>`: shown this once (only the token's hash is stored)" }),
});

export const CreateInvitationBody = t.Object({
  email: t.Optional(PlainText({ description: "Pins the new account's address; the link is mailed to it when mail is on" })),
  roles: t.Optional(t.Array(PlainText(), { description: `Roles of the new account (${ROLE_PATTERN.source})` })),
  expires_in: t.Optional(JsonInteger({ minimum: 60, maximum: MAX_DURATION_SECONDS, description: `Seconds the link works; default ${DEFAULT_INVITATION_TTL} (7 days)` })),
  max_uses: t.Optional(JsonInteger({ minimum: 1, maximum: MAX_INVITATION_USES, description: "Accounts the link may make; default 1" })),
});

export const InvitationParams = t.Object({ id: PlainText({ description: "The invitation's id" }) });

export const InvitationToken = t.Object({ token: PlainText({ description: "The token of the link `/invite/<token>`" }) });

export const InvitationLink = t.Object(
  {
    email: t.Nullable(t.String({ description: "The address the account will have; null: the invitee chooses" })),
    roles: t.Array(t.String()),
    expires_at: t.String({ format: "date-time" }),
    uses_left: JsonInteger({ description: "Accounts the link may still make" }),
  },
  { description: "A usable invitation link" },
);
