/**
 * A login name as it is stored and compared: NFKC (so a full-width or composed form names the same account) and
 * lower case. Every place that compares a username (sign-in, the limiter's keys, access rules, admin search,
 * OpenID Connect allowed users) goes through this one definition.
 */
export function normalizeUsername(raw: string): string {
  return raw.normalize("NFKC").toLowerCase();
}
