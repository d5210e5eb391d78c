import { describe, expect, test } from "bun:test";
import { SignJWT } from "jose";
import { createHmac } from "node:crypto";
import { createAccessTokens } from "../../src/tokens/access";
import { createKeyRing } from "../../src/tokens/keys";
import { createHs256Verifier } from "../../src/tokens/verifier";
import { migrate, openDatabase } from "../../src/db/client";

const secret = new TextEncoder().encode("s".repeat(32));
const issuer = "https://auth.example.test";
const verify = createHs256Verifier(secret, issuer);
const now = Math.floor(Date.now() / 1000);
const claims = { sub: "user-1", sid: "session-1", jti: "id-1", iss: issuer, iat: now, exp: now + 600 };
const sign = (payload: Record<string, unknown>, header: Record<string, unknown> = { alg: "HS256", typ: "JWT" }, key = secret) =>
  new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("the synchronous HS256 verifier", () => {
  test("accepts what the access-token signer issues for a session, with the claims the guard uses", async () => {
    const db = openDatabase(":memory:");
    migrate(db);
    const tokens = createAccessTokens(createKeyRing(db, { hs256Secret: secret, algs: ["HS256"], maxTokenTtl: 600 }), "HS256", issuer, 600);
    const issued = await tokens.issue("user-1", "session-1", Date.now() + 3_600_000);
    expect(tokens.verify(issued.token)).toEqual({ sub: "user-1", sid: "session-1", exp: issued.exp });
    expect(verify(await sign(claims))).toEqual(claims);
  });

  test("refuses every other algorithm, unsigned tokens and extension headers", async () => {
    expect(verify(await sign(claims, { alg: "HS512" }))).toBeUndefined();
    expect(verify(await sign(claims, { alg: "HS384" }))).toBeUndefined();
    expect(verify(`${b64({ alg: "none" })}.${b64(claims)}.`)).toBeUndefined();
    const good = (await sign(claims)).split(".");
    expect(verify(`${b64({ alg: "none", typ: "JWT" })}.${good[1]}.${good[2]}`)).toBeUndefined();
    // Correctly signed, but with headers that change how the token must be read.
    for (const header of [{ alg: "HS256", crit: ["exp"] }, { alg: "HS256", b64: false }]) {
      const input = `${b64(header)}.${b64(claims)}`;
      const signature = createHmac("sha256", secret).update(input).digest("base64url");
      expect(verify(`${input}.${signature}`)).toBeUndefined();
    }
    const plain = `${b64({ alg: "HS256" })}.${b64(claims)}`;
    expect(verify(`${plain}.${createHmac("sha256", secret).update(plain).digest("base64url")}`)).toEqual(claims);
  });

  test("refuses a wrong key, a changed payload and a non-canonical signature", async () => {
    expect(verify(await sign(claims, undefined, new TextEncoder().encode("t".repeat(32))))).toBeUndefined();
    const [header, , signature] = (await sign(claims)).split(".");
    expect(verify(`${header}.${b64({ ...claims, sub: "admin" })}.${signature}`)).toBeUndefined();
    expect(verify(`${header}.${b64(claims)}.${signature}!`)).toBeUndefined();
    expect(verify("not-a-jwt")).toBeUndefined();
    expect(verify("a.b.c.d")).toBeUndefined();
    expect(verify("..")).toBeUndefined();
  });

  test("checks exp, nbf, iss and the required claims", async () => {
    expect(verify(await sign({ ...claims, exp: now - 1 }))).toBeUndefined();
    expect(verify(await sign({ ...claims, exp: now }), now)).toBeUndefined();
    expect(verify(await sign({ ...claims, exp: now + 1 }), now)).toEqual({ ...claims, exp: now + 1 });
    // An exp no date can hold (a key holder's token: /validate would fail to print it).
    expect(verify(await sign({ ...claims, exp: 253_402_300_799 }))).toEqual({ ...claims, exp: 253_402_300_799 });
    expect(verify(await sign({ ...claims, exp: 253_402_300_800 }))).toBeUndefined();
    expect(verify(await sign({ ...claims, exp: 1e20 }))).toBeUndefined();
    expect(verify(await sign({ ...claims, nbf: now + 60 }))).toBeUndefined();
    expect(verify(await sign({ ...claims, iss: "https://other.example" }))).toBeUndefined();
    for (const missing of ["sub", "sid", "jti", "iat", "exp", "iss"]) {
      const { [missing]: _dropped, ...rest } = claims as Record<string, unknown>;
      expect(verify(await sign(rest))).toBeUndefined();
    }
  });
});
