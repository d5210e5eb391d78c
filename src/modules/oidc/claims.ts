/**
 * What a client learns about a user, decided by the scopes it was granted (OpenID Connect Core §5.4): the ID
 * token, userinfo and the consent page all read this one table, so the page lists exactly what the app receives.
 */
import type { UserIdentity } from "../users/service";

/** The scopes Latchkey knows, in the order discovery lists them. */
export const SCOPES = ["openid", "profile", "email", "groups", "offline_access"] as const;

/** The user's claims for a granted scope (space-separated): `openid` alone gives none beyond `sub`. */
export function claimsFor(user: UserIdentity, scope: string) {
  const granted = new Set(scope.split(" "));
  const name = typeof user.metadata.name === "string" && user.metadata.name ? user.metadata.name : user.username;
  return {
    ...(granted.has("profile") ? { name, preferred_username: user.username } : {}),
    ...(granted.has("email") && user.email ? { email: user.email, email_verified: user.emailVerified } : {}),
    ...(granted.has("groups") ? { groups: user.roles } : {}),
  };
}

/** The consent page's list: one line per thing the app will receive, in words, with the user's values. */
export function consentItems(user: Pick<UserIdentity, "username" | "email" | "roles" | "metadata">, scope: string): string[] {
  const granted = new Set(scope.split(" "));
  const name = typeof user.metadata.name === "string" && user.metadata.name ? user.metadata.name : user.username;
  return [
    "an identifier for your account (not your username)",
    ...(granted.has("profile") ? [`your name and username (${name}, ${user.username})`] : []),
    ...(granted.has("email") ? [user.email ? `your email address (${user.email}) and whether it is verified` : "your email address (you have none)"] : []),
    ...(granted.has("groups") ? [`your groups (${user.roles.join(", ") || "none"})`] : []),
    ...(granted.has("offline_access") ? ["access while you are not using it (until you withdraw it)"] : []),
  ];
}
