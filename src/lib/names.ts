/**
 * A login name as it is stored and compared: NFKC (so a full-width or composed form names the same account) and
 * lower case. Every place that compares a username (sign-in, the limiter's keys, access rules, admin search,
 * OpenID Connect allowed users) goes through this one definition.
 */
export function normalizeUsername(raw: string): string {
  return raw.normalize("NFKC").toLowerCase();
}

/** A role name, as the API stores and compares it: lower case, so "Admin" would match nobody (issue 22). */
export const ROLE_PATTERN = /^[a-z0-9_-]{1,32}$/;

/**
 * Why a role name from the configuration (MFA_REQUIRED_ROLES, ACCESS_RULES_FILE) is not one the API could give a
 * user, or undefined. A role that matches nobody would silently enforce nothing: the start stops instead.
 */
export function configRoleProblem(role: string): string | undefined {
  if (ROLE_PATTERN.test(role)) return undefined;
  const lower = role.toLowerCase();
  return (
    `role ${JSON.stringify(role)} is not a role name: roles are 1-32 characters of a-z, 0-9, '_' or '-', as the API stores them` +
    (lower !== role && ROLE_PATTERN.test(lower) ? ` (write ${JSON.stringify(lower)})` : "")
  );
}
