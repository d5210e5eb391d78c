/**
 * The API's two route prefixes, defined once: the modules' prefixes, the paths whose bodies may be forms and the
 * refresh cookie's `Path` must agree, and agree by construction when they are built from these.
 */
export const AUTH_PREFIX = "/api/v1/auth";
export const ADMIN_PREFIX = "/api/v1/admin";

/**
 * The page that confirms a session with one of its user's passkeys: forward auth and the OpenID Connect
 * authorization send browsers there, the account pages link to it, and the pages module serves it.
 */
export const PASSKEY_STEP_PATH = "/login/passkey-step";
