/**
 * Issue 22's bad-input rows: a NUL byte (PostgreSQL refuses it in text and jsonb: a 500 there, stored on SQLite)
 * or another control character in a string the API stores or looks up. Every row answers the same on both engines:
 * 422 validation_failed naming the field (400 invalid_request at the OAuth endpoints). Run in process by
 * test/unit/bad-input.test.ts and against the binary, on each engine, by test/e2e/contract-input-cors-restart.test.ts.
 */
import { expect } from "bun:test";

/** Sends one request to the server under test and returns the status and the parsed JSON body (or the text). */
export type Fetcher = (path: string, init: RequestInit) => Promise<{ status: number; body: any }>;

/** The characters tried: NUL (the 500), BEL, ESC, DEL and a C1 control (NEL). */
export const CONTROLS = ["\u0000", "\u0007", "\u001b", "\u007f", "\u0085"];

const json = (method: string, body: unknown, token?: string): RequestInit => ({
  method,
  headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
  body: JSON.stringify(body),
});
const bare = (method: string, token: string): RequestInit => ({ method, headers: { authorization: `Bearer ${token}` } });

export interface Tokens {
  /** An ordinary user's access token (bearer). */
  user: string;
  /** An admin's access token (bearer) and the id of a user it may change. */
  admin: string;
  userId: string;
}

/** [what, path, request, field named in the 422]: for one control character `c`. */
function rows(c: string, tokens: Tokens): [string, string, RequestInit, string][] {
  const PASSWORD = "correct horse battery staple";
  const enc = encodeURIComponent(c);
  return [
    ["register username", "/api/v1/auth/register", json("POST", { username: `a${c}b`, password: PASSWORD }), "username"],
    ["register email", "/api/v1/auth/register", json("POST", { username: "ctrl-email", password: PASSWORD, email: `a${c}@example.com` }), "email"],
    ["login username", "/api/v1/auth/login", json("POST", { username: `a${c}b`, password: PASSWORD }), "username"],
    ["login email", "/api/v1/auth/login", json("POST", { email: `a${c}@example.com`, password: PASSWORD }), "email"],
    ["refresh token", "/api/v1/auth/refresh", json("POST", { refresh_token: `x${c}` }), "refresh_token"],
    ["verify challenge", "/api/v1/auth/login/verify", json("POST", { challenge_id: `x${c}`, code: "123456" }), "challenge_id"],
    ["password forgot email", "/api/v1/auth/password/forgot", json("POST", { email: `a${c}@example.com` }), "email"],
    ["API key name", "/api/v1/auth/keys", json("POST", { name: `nas${c}` }, tokens.user), "name"],
    ["API key scope", "/api/v1/auth/keys", json("POST", { name: "nas", scopes: [`photos${c}`] }, tokens.user), "scopes.0"],
    ["API key id in the path", `/api/v1/auth/keys/k${enc}`, bare("DELETE", tokens.user), "key_id"],
    ["session id in the path", `/api/v1/auth/sessions/s${enc}`, bare("DELETE", tokens.user), "id"],
    ["admin search", `/api/v1/admin/users?query=a${enc}`, bare("GET", tokens.admin), "query"],
    ["admin user id in the path", `/api/v1/admin/users/u${enc}`, bare("GET", tokens.admin), "id"],
    ["admin create username", "/api/v1/admin/users", json("POST", { username: `b${c}c`, password: PASSWORD }, tokens.admin), "username"],
    ["admin role", `/api/v1/admin/users/${tokens.userId}`, json("PATCH", { roles: [`family${c}`] }, tokens.admin), "roles.0"],
    ["admin email", `/api/v1/admin/users/${tokens.userId}`, json("PATCH", { email: `a${c}@example.com` }, tokens.admin), "email"],
    ["admin metadata value", `/api/v1/admin/users/${tokens.userId}`, json("PATCH", { metadata: { tier: `gold${c}` } }, tokens.admin), "metadata"],
    ["admin metadata key", `/api/v1/admin/users/${tokens.userId}`, json("PATCH", { metadata: { [`ti${c}er`]: "gold" } }, tokens.admin), "metadata"],
    ["audit event filter", `/api/v1/admin/audit?event=x${enc}`, bare("GET", tokens.admin), "event"],
    ["OIDC client id", "/api/v1/admin/oidc/clients", json("POST", { client_id: `app${c}`, redirect_uris: ["https://app.example.com/cb"] }, tokens.admin), "client_id"],
    ["OIDC redirect URI", "/api/v1/admin/oidc/clients", json("POST", { client_id: "app", redirect_uris: [`https://app.example.com/cb${c}`] }, tokens.admin), "redirect_uris.0"],
  ];
}

/** Every row with every control character: the exact 422 naming the field, and nothing else. */
export async function expectControlCharactersRefused(fetcher: Fetcher, tokens: Tokens): Promise<void> {
  for (const c of CONTROLS)
    for (const [what, path, init, field] of rows(c, tokens)) {
      const reply = await fetcher(path, init);
      const label = `${what} with U+${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
      expect({ label, status: reply.status, error: reply.body?.error }).toEqual({ label, status: 422, error: "validation_failed" });
      expect({ label, details: reply.body.details }).toEqual({ label, details: [{ field, message: expect.stringMatching(/^Must not contain control characters/) }] });
    }
  // The OAuth token endpoint's form speaks RFC 6749: 400 invalid_request.
  for (const c of CONTROLS) {
    const form = new URLSearchParams({ grant_type: "password", username: `a${c}b`, password: "correct horse battery staple" });
    const reply = await fetcher("/api/v1/auth/token", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: form.toString() });
    expect({ status: reply.status, error: reply.body?.error }).toEqual({ status: 400, error: "invalid_request" });
  }
}
