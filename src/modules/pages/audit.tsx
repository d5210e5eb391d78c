import { AUDIT_EVENTS } from "../audit/service";
import { Cut, DataTable, Device, When } from "./table";

export interface AuditRow {
  id: number;
  time: string;
  event: string;
  user_id: string | null;
  ip: string | null;
  user_agent?: string | null;
  detail: Record<string, unknown>;
}

/** Events that record something refused or gone wrong: shown in the danger colour. */
const FAILURES: ReadonlySet<string> = new Set([
  "login_failed",
  "password_change_failed",
  "refresh_reuse_detected",
  "rate_limited",
  "mail_dropped",
  "code_failed",
  "mfa_challenge_failed",
  "oidc_access_denied",
  "oidc_code_replayed",
  "oidc_grant_refused",
  "passkey_registration_failed",
  "passkey_counter_regression",
  "passkey_step_up_failed",
  "email_change_failed",
]);

export const isFailure = (event: string) => FAILURES.has(event);

/** Who made an admin's change: the admin's name, or the command line (`latchkey user ...`). */
const byWhom = (detail: Record<string, unknown>) => (detail.via === "cli" ? "the command line" : (text(detail.actor) ?? "an admin"));

const text = (value: unknown) => (typeof value === "string" || typeof value === "number" ? String(value) : undefined);

/** How a second factor is named in a sentence. */
const FACTOR: Record<string, string> = { totp: "an authenticator", recovery_code: "a recovery code", email_code: "an emailed code", passkey: "a passkey" };

/** Why a sign-in failed, in words. */
const REASONS: Record<string, string> = {
  invalid_credentials: "wrong username or password",
  account_disabled: "the account is disabled",
  user_not_verified: "the email address is not verified",
  deleted: "the account was deleted",
  passkey_unknown_credential: "an unknown passkey",
  passkey_challenge_expired: "the passkey prompt expired",
  passkey_wrong_origin: "a passkey from another site",
  passkey_wrong_rp_id: "a passkey for another site",
  passkey_counter_regression: "the passkey may be a clone",
  passkey_verification_failed: "the passkey's answer did not verify",
  passkey_already_registered: "that authenticator already holds a passkey here",
};

/**
 * Each event as a sentence about `who` ("alice signed in with an authenticator"), from its name and detail:
 * what an admin reads in the audit log instead of snake_case names and JSON.
 */
const SENTENCES: Record<(typeof AUDIT_EVENTS)[number], (who: string, detail: Record<string, unknown>) => string> = {
  user_registered: (who) => `${who} signed up`,
  login_succeeded: (who, d) =>
    `${who} signed in${d.passkey === true ? " with a passkey" : ""}${text(d.second_factor) ? `${d.passkey === true ? " and" : ""} with ${FACTOR[text(d.second_factor)!] ?? text(d.second_factor)}` : ""}`,
  login_failed: (who, d) => `${who === "someone" ? "A sign-in failed" : `${who} failed to sign in`}${text(d.reason) ? `: ${REASONS[text(d.reason)!] ?? text(d.reason)!.replaceAll("_", " ")}` : ""}`,
  logout: (who) => `${who} signed out`,
  refresh_reuse_detected: (who) => `A stolen or replayed session of ${who} was refused, and the session ended`,
  password_changed: (who) => `${who} changed their password`,
  password_change_failed: (who) => `${who} typed a wrong current password`,
  session_revoked: (who) => `${who} signed out a device`,
  rate_limited: (who, d) => `Too many attempts${who === "someone" ? "" : ` for ${who}`}${text(d.scope) ? ` (limit per ${text(d.scope)})` : ""}`,
  key_created: (who, d) => `${who} created the API key ${text(d.name) ? `"${text(d.name)}"` : ""}`.trim(),
  key_deleted: (who) => `${who} deleted an API key`,
  admin_user_created: (who, d) => `${who} was created by ${byWhom(d)}`,
  admin_user_updated: (who, d) => `${who} was changed by ${byWhom(d)}${Array.isArray(d.changed) ? ` (${d.changed.join(", ")})` : ""}`,
  admin_user_deleted: (who, d) => `${text(d.username) ?? who} was deleted by ${byWhom(d)}`,
  mail_dropped: (who, d) => `A mail to ${who} could not be sent${text(d.kind) ? ` (${text(d.kind)!.replaceAll("_", " ")})` : ""}`,
  code_failed: (who) => `A wrong emailed code was typed for ${who}`,
  email_verified: (who) => `${who} verified their email address`,
  email_changed: (who) => `${who} changed their email address`,
  email_change_requested: (who) => `${who} asked to change their email address`,
  password_reset_requested: (who) => `${who} asked for a password reset`,
  password_reset: (who) => `${who} reset their password with a mailed code`,
  mfa_challenge_failed: (who) => `${who} typed a wrong second-step code`,
  totp_enabled: (who) => `${who} turned on an authenticator`,
  totp_removed: (who) => `${who} turned off their authenticator`,
  recovery_codes_generated: (who) => `${who} made new recovery codes`,
  recovery_code_used: (who) => `${who} used a recovery code`,
  mfa_reset: (who, d) => `${who}'s second factors were reset by ${byWhom(d)}`,
  signing_keys_rotated: (who) => `${who} rotated the signing keys`,
  oidc_client_created: (who, d) => `${who} registered the application ${text(d.client_id) ?? ""}`.trim(),
  oidc_client_deleted: (who, d) => `${who} deleted the application ${text(d.client_id) ?? ""}`.trim(),
  oidc_client_secret_rotated: (who, d) => `${who} made a new secret for ${text(d.client_id) ?? "an application"}`,
  oidc_consent_granted: (who, d) => `${who} allowed ${text(d.client_id) ?? "an application"} to sign them in`,
  oidc_consent_revoked: (who, d) => `${who} withdrew ${text(d.client_id) ?? "an application"}`,
  oidc_access_denied: (who, d) => `${who} was refused by ${text(d.client_id) ?? "an application"}`,
  oidc_code_exchanged: (who, d) => `${who} signed in to ${text(d.client_id) ?? "an application"}`,
  oidc_code_replayed: (who, d) => `A used sign-in code of ${text(d.client_id) ?? "an application"} was replayed for ${who}`,
  oidc_logout: (who, d) => `${who} signed out of ${text(d.client_id) ?? "an application"}`,
  oidc_token_revoked: (who, d) => `${text(d.client_id) ?? "An application"} ended its sign-in of ${who}`,
  oidc_grant_refused: (who, d) => `${text(d.client_id) ?? "An application"} could not renew ${who}'s sign-in: access was withdrawn`,
  passkey_registered: (who, d) => (text(d.name) ? `${who} added the passkey “${text(d.name)}”` : `${who} added a passkey`),
  passkey_registration_failed: (who, d) => `${who} failed to add a passkey${text(d.reason) ? `: ${REASONS[text(d.reason)!] ?? text(d.reason)!.replaceAll("_", " ")}` : ""}`,
  passkey_renamed: (who, d) => (text(d.name) ? `${who} renamed a passkey to “${text(d.name)}”` : `${who} renamed a passkey`),
  passkey_deleted: (who) => `${who} deleted a passkey`,
  passkey_counter_regression: (who) => `A passkey of ${who} was refused: its signature counter went back (a cloned authenticator?)`,
  invitation_created: (who, d) => {
    const how = `${d.via === "cli" ? " with the command line" : ""}`;
    if (who === "someone") return `An invitation link was made${how}${d.mailed === true ? " and mailed" : ""}`;
    return `${who} made an invitation link${how}${d.mailed === true ? " and mailed it" : ""}`;
  },
  invitation_used: (who) => `${who} signed up with an invitation link`,
  invitation_revoked: (who) => `${who === "someone" ? "An invitation link was revoked" : `${who} revoked an invitation link`}`,
  passkey_step_up: (who) => `${who} confirmed with a passkey (an app asked for one)`,
  oidc_client_updated: (who, d) => `${who} changed the application ${text(d.client_id) ?? ""}: ${d.require === "passkey" ? "a passkey is required" : "no passkey is required"}`,
  passkey_step_up_failed: (who, d) => `${who} failed to confirm with a passkey${text(d.reason) ? `: ${REASONS[text(d.reason)!] ?? text(d.reason)!.replaceAll("_", " ")}` : ""}`,
  password_removed: (who) => `${who} removed their password: passkeys only`,
  passkey_setup_link_created: (who, d) => `A passkey setup link was made for ${who}${d.via === "cli" ? " with the command line" : ""}${d.reset === true ? " (passkeys reset)" : ""}`,
  passkeys_reset: (who, d) => `The passkeys of ${who} were reset by an admin${typeof d.passkeys_deleted === "number" ? ` (${d.passkeys_deleted} deleted)` : ""}`,
  sign_in_link_requested: (who) => `A sign-in link was mailed to ${who} (lost passkey)`,
  passkey_fallback_used: (who, d) => `${who} signed in with ${FALLBACK[text(d.method) ?? ""] ?? "a fallback"} to add a new passkey`,
  email_change_failed: (who, d) =>
    d.reason === "reauthentication_required"
      ? `${who} was asked to confirm with a passkey before changing their email address`
      : `${who} typed a wrong password to change their email address`,
};

/** How a passkey_fallback_used sign-in was made. */
const FALLBACK: Record<string, string> = { recovery_code: "a recovery code", email_link: "an emailed sign-in link", setup_link: "a passkey setup link" };

/** An event's sentence; an event this page does not know (a newer one) reads as its name in words. */
export function describeEvent(event: string, who: string, detail: Record<string, unknown>): string {
  const sentence = SENTENCES[event as keyof typeof SENTENCES];
  // Not capitalised: a sentence may start with a username, which is lower-case ("alice signed in").
  return sentence ? sentence(who, detail) : `${event.replaceAll("_", " ")} (${who})`;
}

/** Event names as a filter offers them: "Signed in" for login_succeeded. */
export const eventLabel = (event: string) => {
  const said = describeEvent(event, "someone", {});
  return said.replace(/^someone /, "").replace(/^./, (first) => first.toUpperCase());
};

/** The audit log's rows: when, what (a sentence, failures in colour), from where. */
export function AuditTable({ events, usernames }: { events: AuditRow[]; usernames: ReadonlyMap<string, string> }) {
  return (
    <DataTable
      label="Audit log"
      columns={[{ label: "When" }, { label: "What", kind: "wrap" }, { label: "Address" }, { label: "Device" }]}
      rows={events}
      empty="No events match."
      cells={(event) => {
        const who = (event.user_id && usernames.get(event.user_id)) || text(event.detail.username) || text(event.detail.login) || "someone";
        const sentence = describeEvent(event.event, who, event.detail);
        return [
          <When date={event.time} />,
          <span class={isFailure(event.event) ? "failure" : undefined} title={event.event} safe>
            {isFailure(event.event) ? `⚠ ${sentence}` : sentence}
          </span>,
          <Cut text={event.ip ?? "unknown"} />,
          <Device userAgent={event.user_agent} />,
        ];
      }}
    />
  );
}
