/**
 * The token side's pure decisions (issue 21): which verifier takes which token, the scope of a refresh and of a
 * machine token, the audience of a resource indicator, and the claims of each scope.
 */
import { describe, expect, test } from "bun:test";
import { SignJWT } from "jose";
import { migrate, openDatabase } from "../../src/db/client";
import { claimsFor, consentItems } from "../../src/modules/oidc/claims";
import { audienceOf, machineScope, narrowedScope } from "../../src/modules/oidc/grants";
import { createAccessTokens, createClientAccessTokens } from "../../src/tokens/access";
import { createKeyRing } from "../../src/tokens/keys";
import { createClientAccessVerifier, createHs256Verifier } from "../../src/tokens/verifier";

const secret = new TextEncoder().encode("s".repeat(32));
const issuer = "https://auth.example.test";

function ring() {
  const db = openDatabase(":memory:");
  migrate(db);
  return createKeyRing(db, { hs256Secret: secret, algs: ["HS256", "RS256"], maxTokenTtl: 600 });
}

describe("two audiences, two verifiers", () => {
  test("a client's at+jwt never verifies as a first-party token, and a first-party token never as a client's", async () => {
    const keys = ring();
    const own = createAccessTokens(keys, "RS256", issuer, 600);
    const client = createClientAccessTokens(keys, "RS256", issuer, 600);
    const clientToken = (await client.issue({ clientId: "wiki", audience: ["wiki"], scope: "openid", user: { userId: "u1", sessionId: "s1", authTime: Date.now(), amr: ["pwd"] } })).token;
    const ownToken = (await own.issue("u1", "s1", Date.now() + 3_600_000)).token;
    expect(own.verify(ownToken)).toMatchObject({ sub: "u1", sid: "s1" });
    expect(own.verify(clientToken)).toBeUndefined();
    expect(client.verify(clientToken)).toMatchObject({ sub: "u1", sid: "s1", client_id: "wiki", aud: ["wiki"], scope: "openid" });
    expect(client.verify(ownToken)).toBeUndefined();
  });

  test("the first-party verifier refuses any typ but JWT, and any token naming a client, even signed with its own key", async () => {
    const verify = createHs256Verifier(secret, issuer);
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: "u1", sid: "s1", jti: "j", iss: issuer, iat: now, exp: now + 600 };
    const sign = (payload: object, typ?: string) => new SignJWT({ ...payload }).setProtectedHeader({ alg: "HS256", ...(typ ? { typ } : {}) }).sign(secret);
    expect(verify(await sign(claims, "JWT"))).toEqual(claims);
    expect(verify(await sign(claims))).toEqual(claims);
    expect(verify(await sign(claims, "at+jwt"))).toBeUndefined();
    expect(verify(await sign(claims, "jwt"))).toBeUndefined();
    expect(verify(await sign({ ...claims, client_id: "wiki" }, "JWT"))).toBeUndefined();
  });

  test("the client verifier takes only at+jwt from an asymmetric key, with client_id, scope and an audience", async () => {
    const keys = ring();
    const verify = createClientAccessVerifier(keys.verificationKey, issuer);
    const rsa = await keys.signingKey("RS256");
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: "u1", client_id: "wiki", scope: "openid", aud: "wiki", jti: "j", iss: issuer, iat: now, exp: now + 600 };
    const sign = (payload: object, header: Record<string, string>, key: CryptoKey | Uint8Array = rsa.key) => new SignJWT({ ...payload }).setProtectedHeader({ alg: "RS256", kid: rsa.kid, ...header } as { alg: string }).sign(key);
    expect(verify(await sign(claims, { typ: "at+jwt" }))).toMatchObject({ client_id: "wiki", aud: ["wiki"] });
    expect(verify(await sign(claims, { typ: "JWT" }))).toBeUndefined();
    expect(verify(await sign(claims, {}))).toBeUndefined();
    for (const missing of ["client_id", "scope", "aud", "jti"] as const) {
      const { [missing]: _gone, ...rest } = claims;
      expect({ missing, verified: verify(await sign(rest, { typ: "at+jwt" })) }).toEqual({ missing, verified: undefined });
    }
    expect(verify(await sign({ ...claims, aud: [] }, { typ: "at+jwt" }))).toBeUndefined();
    // The HS256 secret signs first-party tokens only: an at+jwt under it is refused.
    const hs = await keys.signingKey("HS256");
    expect(verify(await new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: hs.kid, typ: "at+jwt" }).sign(secret))).toBeUndefined();
  });
});

describe("scopes and audiences", () => {
  test("a refresh may narrow the granted scope, never widen it, and keeps openid", () => {
    expect(narrowedScope("openid profile email", undefined)).toBe("openid profile email");
    expect(narrowedScope("openid profile email", "email openid")).toBe("openid email");
    expect(() => narrowedScope("openid profile", "openid profile groups")).toThrow(expect.objectContaining({ code: "invalid_scope" }));
    expect(() => narrowedScope("openid profile", "profile")).toThrow(expect.objectContaining({ code: "invalid_scope" }));
  });

  test("a machine token takes scope tokens of its own API, none of a user's", () => {
    expect(machineScope(undefined)).toBe("");
    expect(machineScope("backup:read  backup:read backup:write")).toBe("backup:read backup:write");
    for (const bad of ["openid", "backup email", 'quote"d', "back\\slash", "x".repeat(129), Array.from({ length: 33 }, (_, i) => `s${i}`).join(" ")])
      expect(() => machineScope(bad)).toThrow(expect.objectContaining({ code: "invalid_scope" }));
  });

  test("a resource indicator is an absolute URI without fragment, and becomes the only audience", () => {
    expect(audienceOf("wiki", undefined)).toEqual(["wiki"]);
    expect(audienceOf("wiki", "https://api.example/")).toEqual(["https://api.example/"]);
    for (const bad of ["api", "/relative", "https://api.example/#x", `https://a.example/${"x".repeat(2000)}`])
      expect(() => audienceOf("wiki", bad)).toThrow(expect.objectContaining({ code: "invalid_target" }));
  });

  test("claims and the consent page's lines follow the scopes, and nothing else", () => {
    const user = { userId: "u1", username: "alice", email: "alice@example.com", emailVerified: true, roles: ["family"], metadata: { name: "Alice" }, createdAt: new Date() };
    expect(claimsFor(user, "openid")).toEqual({});
    expect(claimsFor(user, "openid profile email groups offline_access")).toEqual({ name: "Alice", preferred_username: "alice", email: "alice@example.com", email_verified: true, groups: ["family"] });
    expect(claimsFor({ ...user, email: null }, "openid email")).toEqual({});
    expect(consentItems(user, "openid")).toEqual(["an identifier for your account (not your username)"]);
    expect(consentItems(user, "openid offline_access")).toEqual(["an identifier for your account (not your username)", "access while you are not using it (until you withdraw it)"]);
  });
});
