import { eq, inArray } from "drizzle-orm";
import { changes, rows, transaction } from "../../db/atomic";
import type { Db } from "../../db/client";
import { oidcClients, oidcGrants, sessions, users } from "../../db/tables";
import { apiErrors, type FieldError, validationFailed } from "../../errors";
import { randomToken, safeEqual, sha256Hex } from "../../lib/crypto";
import { rolesProblem } from "../admin/accounts";
import { normalizeUsername } from "../../lib/names";
import { ASYMMETRIC_ALGS } from "../../lib/jwt-algs";

export type OidcClient = typeof oidcClients.$inferSelect;

export interface ClientInput {
  client_id: string;
  /** Required (at least one) unless machine. */
  redirect_uris?: string[];
  post_logout_redirect_uris?: string[];
  public?: boolean;
  trusted?: boolean;
  allowed_roles?: string[];
  /** Usernames (or user ids); stored as user ids. */
  allowed_users?: string[];
  /** Where logout tokens are POSTed (OpenID Connect Back-Channel Logout 1.0). */
  backchannel_logout_uri?: string | null;
  /** Always issue a refresh token, even without offline_access. */
  refresh?: boolean;
  /** client_credentials only: no user, no redirect URIs; confidential. */
  machine?: boolean;
  /** RS256, ES256 or EdDSA; absent: OIDC_ID_TOKEN_ALG. */
  id_token_alg?: string;
  /** "passkey": every sign-in for this client must be made with a passkey (the step-up otherwise); null: none. */
  require?: string | null;
}

/** A client as the admin API and the CLI show it (never the secret or its hash). */
export interface ClientView {
  client_id: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  public: boolean;
  trusted: boolean;
  allowed_roles: string[];
  allowed_users: string[];
  backchannel_logout_uri: string | null;
  refresh: boolean;
  machine: boolean;
  id_token_alg: string | null;
  require: "passkey" | null;
  created_at: string;
}

const CLIENT_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** Schemes that run code or read local data in a browser: never a redirect target (RFC 9700 §4.1, OWASP). */
const FORBIDDEN_SCHEMES = new Set(["javascript:", "data:", "vbscript:", "file:", "blob:", "about:"]);
const MAX_URIS = 20;

export const clientNotFound = () => apiErrors.oidc_client_not_found("No such OpenID Connect client.");

/**
 * Why `uri` cannot be a registered redirect URI, or undefined. Absolute, no fragment (RFC 6749 §3.1.2); custom
 * schemes are allowed for native apps (RFC 8252 §7.1: Immich's app.immich:///oauth-callback).
 */
function redirectUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return "Must be an absolute URI, e.g. https://app.example.com/callback or app.example:/callback.";
  }
  if (FORBIDDEN_SCHEMES.has(url.protocol)) return `The ${url.protocol} scheme is not allowed.`;
  if (uri.includes("#")) return "Must not contain a fragment (#).";
  if (url.username || url.password) return "Must not contain credentials.";
  if (uri.length > 2000) return "Must be at most 2000 characters.";
  return undefined;
}

/**
 * Why `uri` cannot be a back-channel logout URI, or undefined: an absolute http(s) URI without a fragment
 * (Back-Channel Logout 1.0 §2.2; a query is allowed: mod_auth_openidc's is its redirect URI with ?logout=backchannel).
 */
function backchannelUriProblem(uri: unknown): string | undefined {
  if (typeof uri !== "string") return "Must be a string.";
  const problem = redirectUriProblem(uri);
  if (problem) return problem;
  return /^https?:$/.test(new URL(uri).protocol) ? undefined : "Must be an http or https URI.";
}

function uriList(field: string, list: unknown, required: boolean, details: FieldError[]): string[] {
  if (!Array.isArray(list) || (required && list.length === 0) || list.length > MAX_URIS) {
    details.push({ field, message: `Must be a list of ${required ? "1" : "0"} to ${MAX_URIS} URIs.` });
    return [];
  }
  list.forEach((uri, index) => {
    const problem = typeof uri === "string" ? redirectUriProblem(uri) : "Must be a string.";
    if (problem) details.push({ field: `${field}.${index}`, message: problem });
  });
  return [...new Set(list as string[])];
}

/** Why `require` cannot be a client's requirement, or undefined: "passkey", or null / absent for none. */
function requirementProblem(require: unknown, machine: boolean | undefined): string | undefined {
  if (require === undefined || require === null) return undefined;
  if (require !== "passkey") return 'Must be "passkey", or null for none.';
  return machine ? "A machine client signs no user in: a passkey cannot be required of it." : undefined;
}

export function toClientView(client: OidcClient): ClientView {
  return {
    client_id: client.clientId,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    public: client.public,
    trusted: client.trusted,
    allowed_roles: client.allowedRoles,
    allowed_users: client.allowedUsers,
    backchannel_logout_uri: client.backchannelLogoutUri,
    refresh: client.refresh,
    machine: client.machine,
    id_token_alg: client.idTokenAlg,
    require: client.requirePasskey ? "passkey" : null,
    created_at: client.createdAt.toISOString(),
  };
}

const newSecret = () => `lkcs_${randomToken(32)}`;

/** The OpenID Connect clients: registration (admin API, CLI), lookup and client authentication. */
export function createOidcClients(db: Db) {
  async function find(clientId: string): Promise<OidcClient | undefined> {
    return (await db.select().from(oidcClients).where(eq(oidcClients.clientId, clientId)))[0];
  }

  async function userIdsOf(logins: string[], details: FieldError[]): Promise<string[]> {
    const ids: string[] = [];
    for (const [index, login] of logins.entries()) {
      const [found] = [
        ...(await db.select({ id: users.id }).from(users).where(eq(users.id, login))),
        ...(await db.select({ id: users.id }).from(users).where(eq(users.username, normalizeUsername(login)))),
      ];
      if (found) ids.push(found.id);
      else details.push({ field: `allowed_users.${index}`, message: `No such user: ${login}.` });
    }
    return [...new Set(ids)];
  }

  return {
    find,

    async list(): Promise<ClientView[]> {
      return (await db.select().from(oidcClients).orderBy(oidcClients.clientId)).map(toClientView);
    },

    /** Registers a client; returns it with its secret (shown once; null for a public client). */
    async create(input: ClientInput): Promise<{ client: ClientView; secret: string | null }> {
      const details: FieldError[] = [];
      if (typeof input.client_id !== "string" || !CLIENT_ID_PATTERN.test(input.client_id))
        details.push({ field: "client_id", message: "Must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit." });
      // A machine client never sends a browser anywhere: it may (and usually does) have no redirect URI.
      const redirectUris = uriList("redirect_uris", input.redirect_uris ?? [], !input.machine, details);
      if (input.machine && input.public) details.push({ field: "machine", message: "A machine client authenticates with its secret: it cannot be public." });
      const requireProblem = requirementProblem(input.require, input.machine);
      if (requireProblem) details.push({ field: "require", message: requireProblem });
      const idTokenAlg = input.id_token_alg ?? null;
      if (idTokenAlg !== null && !(ASYMMETRIC_ALGS as readonly string[]).includes(idTokenAlg))
        details.push({ field: "id_token_alg", message: `Must be one of ${ASYMMETRIC_ALGS.join(", ")}.` });
      const postLogout = uriList("post_logout_redirect_uris", input.post_logout_redirect_uris ?? [], false, details);
      const roles = input.allowed_roles ?? [];
      const rolesIssue = rolesProblem(roles);
      if (rolesIssue) details.push({ field: "allowed_roles", message: rolesIssue });
      const allowedUsers = await userIdsOf(input.allowed_users ?? [], details);
      const backchannel = input.backchannel_logout_uri ?? null;
      const backchannelProblem = backchannel === null ? undefined : backchannelUriProblem(backchannel);
      if (backchannelProblem) details.push({ field: "backchannel_logout_uri", message: backchannelProblem });
      if (details.length) throw validationFailed(details);
      if (await find(input.client_id)) throw apiErrors.oidc_client_exists("A client with this client_id exists.");
      const secret = input.public ? null : newSecret();
      const [row] = await db
        .insert(oidcClients)
        .values({
          clientId: input.client_id,
          secretHash: secret === null ? null : sha256Hex(secret),
          redirectUris,
          postLogoutRedirectUris: postLogout,
          public: input.public ?? false,
          trusted: input.trusted ?? false,
          allowedRoles: [...new Set(roles)],
          allowedUsers,
          backchannelLogoutUri: backchannel,
          refresh: input.refresh ?? false,
          machine: input.machine ?? false,
          idTokenAlg,
          requirePasskey: input.require === "passkey",
        })
        .returning();
      return { client: toClientView(row!), secret };
    },

    /**
     * Requires a passkey of this client's sign-ins, or no longer (`latchkey oidc client update --require`, the admin
     * API's PATCH). Sign-ins that already have a code or tokens keep them; new authorizations follow the new rule.
     */
    async setRequirement(clientId: string, require: string | null): Promise<ClientView> {
      const client = await find(clientId);
      if (!client) throw clientNotFound();
      const problem = requirementProblem(require, client.machine);
      if (problem) throw validationFailed([{ field: "require", message: problem }]);
      const [row] = await db.update(oidcClients).set({ requirePasskey: require === "passkey" }).where(eq(oidcClients.clientId, clientId)).returning();
      if (!row) throw clientNotFound();
      return toClientView(row);
    },

    /** A new secret for a confidential client; the old one stops working at once. */
    async rotateSecret(clientId: string): Promise<string> {
      const client = await find(clientId);
      if (!client) throw clientNotFound();
      if (client.public) throw apiErrors.oidc_client_public("A public client has no secret.");
      const secret = newSecret();
      await db.update(oidcClients).set({ secretHash: sha256Hex(secret) }).where(eq(oidcClients.clientId, clientId));
      return secret;
    },

    /** Deletes the client, its codes, consents and every session its tokens belong to. */
    async delete(clientId: string): Promise<void> {
      // Serial order with a grant being written: no session of this client survives its deletion.
      await transaction(db, function* (tx) {
        const granted = yield* rows(tx.select({ id: oidcGrants.sessionId }).from(oidcGrants).where(eq(oidcGrants.clientId, clientId)));
        if (granted.length) yield* changes(tx.delete(sessions).where(inArray(sessions.id, granted.map((grant) => grant.id))));
        if ((yield* changes(tx.delete(oidcClients).where(eq(oidcClients.clientId, clientId)))) !== 1) throw clientNotFound();
      });
    },

    /** Constant-time check of a presented secret against the stored hash (OWASP ASVS V11.2). */
    secretMatches(client: OidcClient, secret: string): boolean {
      return client.secretHash !== null && safeEqual(sha256Hex(secret), client.secretHash);
    },
  };
}

export type OidcClients = ReturnType<typeof createOidcClients>;

/** Whether the user may use the client: no restriction, one of its roles, or listed by id. */
export function userMayUse(client: OidcClient, user: { userId: string; roles: string[] }): boolean {
  if (client.allowedRoles.length === 0 && client.allowedUsers.length === 0) return true;
  return client.allowedUsers.includes(user.userId) || user.roles.some((role) => client.allowedRoles.includes(role));
}
