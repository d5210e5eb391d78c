import { Elysia, t } from "elysia";
import { ADMIN_PREFIX } from "../../http/routes";
import type { Db } from "../../db/client";
import type { RequesterPlugin } from "../../http/client-ip";
import { listSigningKeys, rotateSigningKeys, type KeyRing } from "../../tokens/keys";
import type { JwtAlg } from "../../lib/jwt-algs";
import type { AuditLog } from "../audit/service";
import type { authGuard } from "../auth/guard";
import { SESSION_SECURITY } from "../../http/schema";
import { ADMIN_GUARD, BODY_ERRORS, CSRF_CHECK, errorResponses } from "../../http/error-catalogue";

export const JWKS_PATH = "/.well-known/jwks.json";
/**
 * Clients may cache the key set this long. A rotation adds the new key to the set at once and signs with it
 * within a second, so a client that meets an unknown kid fetches the set again (jose's createRemoteJWKSet does);
 * a retired key stays in the set for a whole token lifetime, far longer than this.
 */
const JWKS_MAX_AGE = 300;

const Jwk = t.Object(
  {
    kid: t.String(),
    kty: t.String({ description: "RSA, EC or OKP" }),
    alg: t.String({ description: "RS256, ES256 or EdDSA" }),
    use: t.Literal("sig"),
  },
  { additionalProperties: true, description: "A public key (RFC 7517); never a private member" },
);

const SigningKeyInfo = t.Object({
  kid: t.String(),
  alg: t.String({ description: "HS256 (JWT_SECRET: no key material stored), RS256, ES256 or EdDSA" }),
  created_at: t.String({ format: "date-time" }),
  retired_at: t.Nullable(t.String({ format: "date-time", description: "null for the current key of its algorithm" })),
  live_until: t.Nullable(
    t.String({ format: "date-time", description: "It leaves the JWKS then: the longer of ACCESS_TOKEN_TTL and REFRESH_TOKEN_TTL after its retirement (an ID token kept as id_token_hint must verify)" }),
  ),
});

const KeyList = t.Object({ keys: t.Array(SigningKeyInfo) });

/** The JWKS, and the admin's view and rotation of the signing keys. */
export function signingKeyRoutes(deps: {
  db: Db;
  keyRing: KeyRing;
  algs: readonly JwtAlg[];
  maxTokenTtl: number;
  guard: ReturnType<typeof authGuard>;
  audit: AuditLog;
  withRequester: RequesterPlugin;
}) {
  const { db, keyRing, algs, maxTokenTtl, guard, audit, withRequester } = deps;

  return new Elysia()
    .get(
      JWKS_PATH,
      ({ set }) => {
        set.headers["cache-control"] = `public, max-age=${JWKS_MAX_AGE}`;
        return keyRing.jwks();
      },
      {
        response: { 200: t.Object({ keys: t.Array(Jwk) }, { description: "The current public keys and the retired ones whose tokens may still be live" }) },
        detail: { tags: ["system"], summary: "JSON Web Key Set: public keys for verifying access and ID tokens (empty while nothing is asymmetric)" },
      },
    )
    .use(
      new Elysia({ prefix: `${ADMIN_PREFIX}/keys`, tags: ["admin"] })
    .use(withRequester)
        .use(guard)
        .get("", async () => ({ keys: await listSigningKeys(db) }), {
          admin: true,
          response: { 200: KeyList, ...errorResponses(ADMIN_GUARD) },
          detail: { summary: "Every signing key, newest first (no key material)", security: SESSION_SECURITY },
        })
        .post(
          "/rotate",
          async ({ principal, requester }) => {
            const created = await rotateSigningKeys(db, algs, maxTokenTtl);
            await keyRing.reload();
            await audit.record({ event: "signing_keys_rotated", userId: principal.userId, ...requester, detail: { via: "api", new_kids: created } });
            return { keys: await listSigningKeys(db) };
          },
          {
            admin: true,
            response: { 200: KeyList, ...errorResponses(ADMIN_GUARD, CSRF_CHECK, BODY_ERRORS) },
            detail: {
              summary: "Retire the current asymmetric keys and sign with new ones (JWT_ALG and OIDC_ID_TOKEN_ALG)",
              description:
                "Tokens signed before keep verifying until they expire: the retired keys stay in the JWKS until then. HS256 rotates by changing JWT_SECRET.",
              security: SESSION_SECURITY,
            },
          },
        ),
    );
}
