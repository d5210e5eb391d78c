import { describe, expect, test } from "bun:test";
import { createHmac, createPublicKey } from "node:crypto";
import { decodeProtectedHeader, exportSPKI, importJWK, SignJWT, type JWK } from "jose";
import { migrate, openDatabase, type Db } from "../../src/db/client";
import { createAccessTokens } from "../../src/tokens/access";
import { createKeyRing, listSigningKeys, rotateSigningKeys } from "../../src/tokens/keys";
import { hs256Kid } from "../../src/tokens/verifier";
import { ASYMMETRIC_ALGS, type JwtAlg } from "../../src/lib/jwt-algs";

const secret = new TextEncoder().encode("s".repeat(32));
const issuer = "https://auth.example.test";
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

function fresh(): Db {
  const db = openDatabase(":memory:");
  migrate(db);
  return db;
}

function tokensFor(db: Db, alg: JwtAlg, ttl = 600) {
  const ring = createKeyRing(db, { hs256Secret: secret, algs: [alg], maxTokenTtl: ttl });
  return { ring, tokens: createAccessTokens(ring, alg, issuer, ttl) };
}

const issue = (tokens: ReturnType<typeof tokensFor>["tokens"]) => tokens.issue("user-1", "session-1", Date.now() + 3_600_000);

describe("asymmetric access tokens", () => {
  for (const alg of ASYMMETRIC_ALGS) {
    test(`${alg}: a key pair is made on first need, every token names its kid, the JWKS has no private member`, async () => {
      const db = fresh();
      const { ring, tokens } = tokensFor(db, alg);
      expect(ring.jwks().keys).toEqual([]);
      const { token, exp } = await issue(tokens);
      const header = decodeProtectedHeader(token);
      expect(header.alg).toBe(alg);
      const [jwk] = ring.jwks().keys;
      expect(header.kid).toBe(jwk!.kid);
      expect(jwk!.alg).toBe(alg);
      for (const member of ["d", "p", "q", "dp", "dq", "qi"]) expect(jwk).not.toHaveProperty(member);
      expect(tokens.verify(token)).toEqual({ sub: "user-1", sid: "session-1", exp });
      // A second token reuses the same key (no new pair per token).
      expect(decodeProtectedHeader((await issue(tokens)).token).kid).toBe(header.kid);
      expect((await listSigningKeys(db)).filter((key) => key.alg === alg)).toHaveLength(1);
    });

    test(`${alg}: forgeries are refused (HS256 with the public key, none, unknown kid, another alg, tampered payload)`, async () => {
      const db = fresh();
      const { ring, tokens } = tokensFor(db, alg);
      const { token } = await issue(tokens);
      const [header, payload, signature] = token.split(".") as [string, string, string];
      const jwk = ring.jwks().keys[0]!;
      const now = Math.floor(Date.now() / 1000);
      const claims = { sub: "admin", sid: "session-1", jti: "x", iss: issuer, iat: now, exp: now + 600 };
      // Algorithm confusion: the public key (as PEM and as JWK text) used as an HMAC secret, with the key's kid.
      const pem = await exportSPKI(createPublicKey({ key: jwk as never, format: "jwk" }) as never);
      for (const hmacSecret of [pem, JSON.stringify(jwk)]) {
        const input = `${b64({ alg: "HS256", kid: jwk.kid })}.${b64(claims)}`;
        expect(tokens.verify(`${input}.${createHmac("sha256", hmacSecret).update(input).digest("base64url")}`)).toBeUndefined();
      }
      expect(tokens.verify(`${b64({ alg: "none", kid: jwk.kid })}.${b64(claims)}.`)).toBeUndefined();
      expect(tokens.verify(`${b64({ alg, kid: "unknown" })}.${payload}.${signature}`)).toBeUndefined();
      const other = alg === "RS256" ? "ES256" : "RS256";
      expect(tokens.verify(`${b64({ alg: other, kid: jwk.kid })}.${payload}.${signature}`)).toBeUndefined();
      expect(tokens.verify(`${header}.${b64(claims)}.${signature}`)).toBeUndefined();
      // The HS256 secret is not a key of this configuration: a correctly HMAC-signed token is refused too.
      expect(tokens.verify(await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(secret))).toBeUndefined();
      expect(tokens.verify(await new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: hs256Kid(secret) }).sign(secret))).toBeUndefined();
      // The same claims signed with the real private key verify: the refusals above are about the forgery.
      const row = db.$client.query("select private_jwk from signing_keys where kid = ?").get(jwk.kid) as { private_jwk: string };
      const privateKey = await importJWK(JSON.parse(row.private_jwk) as JWK, alg);
      expect(tokens.verify(await new SignJWT(claims).setProtectedHeader({ alg, kid: jwk.kid }).sign(privateKey))).toMatchObject({ sub: "admin" });
    });
  }
});

describe("rotation and switching JWT_ALG", () => {
  test("after a rotation old and new tokens verify; the retired key leaves the set once its tokens expired", async () => {
    const db = fresh();
    const { ring, tokens } = tokensFor(db, "ES256", 600);
    const before = await issue(tokens);
    const [created] = await rotateSigningKeys(db, ["ES256"], 600);
    await ring.reload();
    const after = await issue(tokens);
    expect(decodeProtectedHeader(after.token).kid).toBe(created!);
    expect(decodeProtectedHeader(before.token).kid).not.toBe(created!);
    expect(tokens.verify(before.token)).toMatchObject({ sub: "user-1", sid: "session-1" });
    expect(tokens.verify(after.token)).toMatchObject({ sub: "user-1", sid: "session-1" });
    expect(ring.jwks().keys.map((key) => key.kid).sort()).toEqual([decodeProtectedHeader(before.token).kid!, created!].sort());
    const list = await listSigningKeys(db);
    expect(list.map((key) => [key.kid, key.retired_at === null])).toEqual([
      [created!, true],
      [decodeProtectedHeader(before.token).kid!, false],
    ]);
    // The retired key's last token has expired: it leaves the set, and nothing it signed verifies.
    db.$client.run("update signing_keys set live_until = ? where retired_at is not null", [Date.now() - 1]);
    await ring.reload();
    expect(ring.jwks().keys.map((key) => key.kid)).toEqual([created!]);
    expect(tokens.verify(before.token)).toBeUndefined();
    expect(tokens.verify(after.token)).toEqual({ sub: "user-1", sid: "session-1", exp: after.exp });
  });

  test("another process's rotation (the CLI) is picked up: an unknown kid re-reads the set", async () => {
    const db = fresh();
    const { tokens } = tokensFor(db, "EdDSA");
    await issue(tokens);
    const other = tokensFor(db, "EdDSA");
    const [created] = await rotateSigningKeys(db, ["EdDSA"], 600);
    const fromOther = await issue(other.tokens);
    expect(decodeProtectedHeader(fromOther.token).kid).not.toBe(created!);
    // The first ring has not reloaded yet; a token naming the new kid makes it look (at most once a second).
    await Bun.sleep(1000);
    const fromNew = await new SignJWT({ sid: "s" }).setProtectedHeader({ alg: "EdDSA", kid: created! }).setSubject("u").setIssuer(issuer).setIssuedAt().setExpirationTime("5m").setJti("j")
      .sign(await importJWK(JSON.parse((db.$client.query("select private_jwk from signing_keys where kid = ?").get(created!) as { private_jwk: string }).private_jwk) as JWK, "EdDSA"));
    expect(tokens.verify(fromNew)).toMatchObject({ sub: "u" });
  });

  test("switching HS256 -> RS256 logs nobody out; switching back keeps the RS256 tokens until they expire", async () => {
    const db = fresh();
    const hs = tokensFor(db, "HS256");
    const hsToken = await issue(hs.tokens);
    expect(decodeProtectedHeader(hsToken.token)).toMatchObject({ alg: "HS256", kid: hs256Kid(secret) });
    const rs = tokensFor(db, "RS256");
    const rsToken = await issue(rs.tokens);
    expect(rs.tokens.verify(hsToken.token)).toEqual({ sub: "user-1", sid: "session-1", exp: hsToken.exp });
    expect(rs.tokens.verify(rsToken.token)).toEqual({ sub: "user-1", sid: "session-1", exp: rsToken.exp });
    const hsRow = (await listSigningKeys(db)).find((key) => key.alg === "HS256")!;
    expect(hsRow.retired_at).not.toBeNull();
    const back = tokensFor(db, "HS256");
    expect(back.tokens.verify(rsToken.token)).toEqual({ sub: "user-1", sid: "session-1", exp: rsToken.exp });
    expect(back.tokens.verify(hsToken.token)).toEqual({ sub: "user-1", sid: "session-1", exp: hsToken.exp });
    expect(back.ring.jwks().keys).toHaveLength(1);
    // A token from before kids existed is the HS256 key's.
    const legacy = await new SignJWT({ sid: "s" }).setProtectedHeader({ alg: "HS256" }).setSubject("u").setIssuer(issuer).setIssuedAt().setExpirationTime("5m").setJti("j").sign(secret);
    expect(back.tokens.verify(legacy)).toMatchObject({ sub: "u" });
  });
});
