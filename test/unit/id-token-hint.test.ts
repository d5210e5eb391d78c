/**
 * id_token_hint verification (RP-initiated logout, OpenID Connect RP-Initiated Logout 1.0 §2): only an ID token
 * this issuer signed with a published asymmetric key, with the header's alg that key's, a string sub and aud.
 * Expired ones pass (a relying party sends the one it kept). Pure: a key ring on an in-memory database.
 */
import { beforeAll, expect, test } from "bun:test";
import { SignJWT } from "jose";
import { migrate, openDatabase } from "../../src/db/client";
import { verifyIdTokenHint } from "../../src/modules/oidc/id-token-hint";
import { createKeyRing, type SigningKey } from "../../src/tokens/keys";

const ISSUER = "https://auth.example.com";
const db = openDatabase(":memory:");
migrate(db);
const keyRing = createKeyRing(db, { hs256Secret: new Uint8Array(32).fill(5), algs: ["RS256", "HS256"], maxTokenTtl: 3600 });
let rs: SigningKey;
let hs: SigningKey;
beforeAll(async () => {
  rs = await keyRing.signingKey("RS256");
  hs = await keyRing.signingKey("HS256");
});

const sign = (claims: Record<string, unknown>, key = rs, header: Record<string, unknown> = {}) =>
  new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...header }).sign(key.key);
const CLAIMS = { iss: ISSUER, sub: "u1", aud: "wiki", sid: "s1", exp: 1 };
const verify = (token: string) => verifyIdTokenHint(token, keyRing, ISSUER);

test("this issuer's ID token, even expired: its sub, aud and sid (a sid that is not text is left out)", async () => {
  expect(verify(await sign(CLAIMS))).toEqual({ sub: "u1", aud: "wiki", sid: "s1" });
  expect(verify(await sign({ ...CLAIMS, sid: 7 }))).toEqual({ sub: "u1", aud: "wiki", sid: undefined });
});

test("another issuer, a sub or aud that is not text, or missing: refused", async () => {
  for (const claims of [
    { ...CLAIMS, iss: "https://evil.example" },
    { ...CLAIMS, sub: 42 },
    { ...CLAIMS, aud: ["wiki"] },
    { iss: ISSUER, aud: "wiki" },
    { iss: ISSUER, sub: "u1" },
  ])
    expect({ claims, hint: verify(await sign(claims)) }).toEqual({ claims, hint: undefined });
});

test("an HS256 token (even with the server's own secret and kid), a header alg that is not the key's, an unknown or missing kid, a bad signature: refused", async () => {
  expect(verify(await sign(CLAIMS, hs))).toBeUndefined();
  const good = await sign(CLAIMS);
  const [header, payload, signature] = good.split(".");
  const reheader = (fields: Record<string, unknown>) => `${Buffer.from(JSON.stringify({ alg: "RS256", kid: rs.kid, typ: "JWT", ...fields })).toString("base64url")}.${payload}.${signature}`;
  expect(verify(reheader({}))).toEqual({ sub: "u1", aud: "wiki", sid: "s1" });
  expect(verify(reheader({ alg: "RS384" }))).toBeUndefined();
  expect(verify(reheader({ alg: "none" }))).toBeUndefined();
  expect(verify(reheader({ kid: "no-such-key" }))).toBeUndefined();
  expect(verify(reheader({ kid: 5 }))).toBeUndefined();
  // The same keys sign access tokens and logout tokens: only an ID token's typ is a hint (RFC 8725 §3.11).
  for (const typ of ["at+jwt", "logout+jwt", undefined]) expect({ typ, hint: verify(await sign(CLAIMS, rs, { typ })) }).toEqual({ typ, hint: undefined });
  expect(verify(`${Buffer.from(JSON.stringify({ alg: "RS256", typ: "JWT" })).toString("base64url")}.${payload}.${signature}`)).toBeUndefined();
  expect(verify(`${header}.${payload}.${signature!.slice(0, -4)}AAAA`)).toBeUndefined();
  expect(verify(`${header}.${Buffer.from(JSON.stringify({ ...CLAIMS, sub: "root" })).toString("base64url")}.${signature}`)).toBeUndefined();
});

test("a header alg that is not the key's is refused even under a good signature by that key (alg confusion, RFC 8725 §3.1)", async () => {
  const payload = Buffer.from(JSON.stringify(CLAIMS)).toString("base64url");
  /** A token whose header says `alg`, signed by the RS256 key (RSASSA-PKCS1-v1_5 with SHA-256) all the same. */
  const signedAs = async (alg: string) => {
    const header = Buffer.from(JSON.stringify({ alg, kid: rs.kid, typ: "JWT" })).toString("base64url");
    const signature = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", rs.key as CryptoKey, new TextEncoder().encode(`${header}.${payload}`));
    return `${header}.${payload}.${Buffer.from(signature).toString("base64url")}`;
  };
  expect(verify(await signedAs("RS256"))).toEqual({ sub: "u1", aud: "wiki", sid: "s1" });
  for (const alg of ["RS384", "PS256", "ES256", "none", "HS256"]) expect({ alg, hint: verify(await signedAs(alg)) }).toEqual({ alg, hint: undefined });
});

test("what is not a JWT at all is refused, never thrown", async () => {
  const [header, payload, signature] = (await sign(CLAIMS)).split(".");
  for (const token of ["", "a.b", `${header}.${payload}`, `.${payload}.${signature}`, `${header}..${signature}`, `${header}.${payload}.`, "x.y.z", "e30.e30.e30"])
    expect({ token, hint: verify(token) }).toEqual({ token, hint: undefined });
});
