/**
 * A password with `@ / # ?` written into a postgres:// URL as it is moves the URL's boundaries: a piece of it is
 * read as the host, port or database (and postgres.js, which splits at the first `@`, reads another host than the
 * URL parser), and would be echoed in the error that names the address. So such a URL is refused, without
 * repeating any of it, when `#` appears (a database URL has no fragment), when `@` appears more than once or after
 * the host, or when the user or password does not percent-decode. `url` is the WHATWG parse of `raw`, if any.
 */
export function credentialsIntact(raw: string, url: URL | undefined): boolean {
  const authority = raw.slice(raw.indexOf("//") + 2).split(/[/?#]/)[0]!;
  const ats = raw.split("@").length - 1;
  if (raw.includes("#") || ats > 1 || (ats === 1 && !authority.includes("@"))) return false;
  try {
    if (url) decodeURIComponent(url.username + url.password);
    return true;
  } catch {
    return false;
  }
}

/** What to do about a URL credentialsIntact refuses (DATABASE_URL, migrate-db --to). */
export const UNENCODED_CREDENTIALS =
  "a character of its user or password (@ / # ? %) is not percent-encoded; encode it, or leave the password out of the URL and set PGPASSWORD";
