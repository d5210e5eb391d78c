import { and, desc, eq, lt, sql, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client";
import { auditEvents } from "../../db/tables";

/** Every event the trail records (the admin page offers them as a filter). */
export const AUDIT_EVENTS = [
  "user_registered",
  "login_succeeded",
  "login_failed",
  "logout",
  "refresh_reuse_detected",
  "password_changed",
  "password_change_failed",
  "session_revoked",
  "rate_limited",
  "key_created",
  "key_deleted",
  "admin_user_created",
  "admin_user_updated",
  "admin_user_deleted",
  "mail_dropped",
  "code_failed",
  "email_verified",
  "email_changed",
  "email_change_requested",
  "password_reset_requested",
  "password_reset",
  "mfa_challenge_failed",
  "totp_enabled",
  "totp_removed",
  "recovery_codes_generated",
  "recovery_code_used",
  "mfa_reset",
  "signing_keys_rotated",
  "oidc_client_created",
  "oidc_client_deleted",
  "oidc_client_secret_rotated",
  "oidc_consent_granted",
  "oidc_consent_revoked",
  "oidc_access_denied",
  "oidc_code_exchanged",
  "oidc_code_replayed",
  "oidc_logout",
  "oidc_token_revoked",
  "oidc_grant_refused",
  "passkey_registered",
  "passkey_registration_failed",
  "passkey_renamed",
  "passkey_deleted",
  "passkey_counter_regression",
  "invitation_created",
  "invitation_used",
  "invitation_revoked",
  "passkey_step_up",
  "passkey_step_up_failed",
  "oidc_client_updated",
  "password_removed",
  "passkey_setup_link_created",
  "passkeys_reset",
  "sign_in_link_requested",
  "passkey_fallback_used",
  "email_change_failed",
] as const;

export type AuditEventName = (typeof AUDIT_EVENTS)[number];

export interface AuditContext {
  ip: string | null;
  userAgent: string | null;
}

export interface AuditEntry extends Partial<AuditContext> {
  event: AuditEventName;
  userId?: string | null;
  /** Never a password or a token: names, ids and reasons only. */
  detail?: Record<string, unknown>;
}

export interface AuditPage {
  events: {
    id: number;
    time: string;
    event: string;
    user_id: string | null;
    ip: string | null;
    user_agent: string | null;
    detail: Record<string, unknown>;
  }[];
  next_cursor: string | null;
}

/** The security trail: one row in audit_events and one JSON line on stdout per event. */
export function createAuditLog(db: Db, log: (line: string) => void = console.log) {
  // Prepared once: every sign-in writes a row (drizzle would build and SQLite compile the insert anew each time).
  const insert = db
    .insert(auditEvents)
    .values({
      event: sql.placeholder("event"),
      userId: sql.placeholder("userId"),
      ip: sql.placeholder("ip"),
      userAgent: sql.placeholder("userAgent"),
      detail: sql.placeholder("detail"),
    })
    .returning({ id: auditEvents.id, createdAt: auditEvents.createdAt })
    .prepare();
  return {
    async record(entry: AuditEntry): Promise<void> {
      const userAgent = entry.userAgent ?? null;
      const [row] = (await insert.execute({
        event: entry.event,
        userId: entry.userId ?? null,
        ip: entry.ip ?? null,
        userAgent,
        detail: entry.detail ?? {},
      })) as { id: number; createdAt: Date }[];
      log(
        JSON.stringify({
          type: "audit",
          time: row!.createdAt.toISOString(),
          event: entry.event,
          user_id: entry.userId ?? null,
          ip: entry.ip ?? null,
          user_agent: userAgent,
          detail: entry.detail ?? {},
        }),
      );
    },

    /** Newest first; `cursor` is the last id of the previous page. */
    async list(filter: { userId?: string; event?: string; cursor?: number; limit: number }): Promise<AuditPage> {
      const conditions: SQL[] = [];
      if (filter.userId) conditions.push(eq(auditEvents.userId, filter.userId));
      if (filter.event) conditions.push(eq(auditEvents.event, filter.event));
      if (filter.cursor !== undefined) conditions.push(lt(auditEvents.id, filter.cursor));
      const rows = await db
        .select()
        .from(auditEvents)
        .where(and(...conditions))
        .orderBy(desc(auditEvents.id))
        .limit(filter.limit + 1);
      const page = rows.slice(0, filter.limit);
      return {
        events: page.map((row) => ({
          id: row.id,
          time: row.createdAt.toISOString(),
          event: row.event,
          user_id: row.userId,
          ip: row.ip,
          user_agent: row.userAgent,
          detail: row.detail,
        })),
        next_cursor: rows.length > filter.limit ? String(page.at(-1)!.id) : null,
      };
    },
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;

/** Deletes events older than the retention period (AUDIT_RETENTION_DAYS). */
export async function pruneAuditEvents(db: Db, retentionDays: number): Promise<void> {
  await db.delete(auditEvents).where(lt(auditEvents.createdAt, new Date(Date.now() - retentionDays * 86_400_000)));
}
