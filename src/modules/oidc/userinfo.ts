/** OpenID Connect UserInfo (Core §5.3): the claims of the scopes granted, for a client's access token only. */
import { Elysia, t } from "elysia";
import { invalidToken, unauthorized } from "../../errors";
import { noStore } from "../../http/cache";
import { BODY_ERRORS, errorResponses } from "../../http/error-catalogue";
import { claimsFor } from "./claims";
import type { OidcGrants } from "./grants";

const UserInfo = t.Object(
  {
    sub: t.String(),
    name: t.Optional(t.String({ description: "scope profile" })),
    preferred_username: t.Optional(t.String({ description: "scope profile" })),
    email: t.Optional(t.String({ description: "scope email (when the account has one)" })),
    email_verified: t.Optional(t.Boolean({ description: "scope email" })),
    groups: t.Optional(t.Array(t.String(), { description: "scope groups: the user's roles" })),
  },
  { description: "The claims of the scopes granted (the same as the ID token's)" },
);

/** RFC 6750 §2.1: the access token in `Authorization: Bearer`. */
function bearerOf(request: Request): string | undefined {
  const match = /^Bearer ([\w.~+/-]+=*)$/.exec(request.headers.get("authorization")?.trim() ?? "");
  return match?.[1];
}

export function userinfoRoutes(deps: { prefix: string; grants: OidcGrants }) {
  const { grants } = deps;
  async function userinfo({ request, set }: { request: Request; set: { headers: Record<string, unknown> } }) {
    noStore(set.headers);
    const token = bearerOf(request);
    if (!token) throw unauthorized("A client's access token is required (Authorization: Bearer).");
    const found = await grants.accessOwner(token);
    // Audience restriction (RFC 9700 §2.3): a token meant for another resource server is no token here.
    if (!found || !found.claims.aud.includes(found.claims.client_id) || !found.claims.scope.split(" ").includes("openid")) throw invalidToken();
    return { sub: found.owner.userId, ...claimsFor(found.owner, found.claims.scope) };
  }
  const credentials = { 401: ["unauthorized", "invalid_token"], 503: ["database_unavailable"] } as const;
  // No `security` scheme of the API: none of Latchkey's own credentials is accepted here.
  const detail = (summary: string) => ({
    summary,
    description: "`Authorization: Bearer` with an access token issued to an OpenID Connect client (typ at+jwt, audience the client); Latchkey's own tokens and API keys are refused (401 invalid_token).",
  });
  return new Elysia({ prefix: deps.prefix, tags: ["openid connect"] })
    .get("/userinfo", userinfo, { response: { 200: UserInfo, ...errorResponses(credentials) }, detail: detail("OpenID Connect UserInfo (a client's Bearer access token)") })
    .post("/userinfo", userinfo, { response: { 200: UserInfo, ...errorResponses(credentials, BODY_ERRORS) }, detail: detail("OpenID Connect UserInfo, by POST") });
}
