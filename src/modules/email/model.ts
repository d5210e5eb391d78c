import { t } from "elysia";
import { PlainText } from "../../http/schema";

const email = PlainText({ description: "The account's email address (case-insensitive)", maxLength: 254 });
const code = PlainText({ description: "The 6-digit code from the mail", maxLength: 32 });
const newPassword = t.String({ description: "At least `PASSWORD_MIN_LENGTH` characters, at most 1024 bytes, not a common password" });

export const EmailBody = t.Object({ email });
export const EmailChangeBody = t.Object({
  new_email: PlainText({ description: "The new address; a code is mailed to it", maxLength: 254 }),
  current_password: t.Optional(t.String({ description: "Required when the account has a password; an account without one leaves it out (its session must be a recent passkey sign-in)" })),
});
export const VerifyEmailBody = t.Object({ email, code });
export const TokenQuery = t.Object({ token: t.Optional(PlainText({ description: "The token from the mailed link" })) });

export const PasswordResetBody = t.Union([
  t.Object({ email, code, new_password: newPassword }, { title: "code from the mail" }),
  t.Object({ token: PlainText({ description: "The token from the mailed link", maxLength: 128 }), new_password: newPassword }, { title: "link token" }),
]);

export const AcceptedBody = t.Object({ message: t.String({ description: "The same for every address, known or not" }) });
export const HtmlPage = t.String({ description: "An HTML page for browsers", contentMediaType: "text/html" });
export const HtmlErrorPage = t.String({
  description: "- `invalid_code`: the link is wrong, already used or expired (an HTML page for browsers saying so)",
  contentMediaType: "text/html",
});
