import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac, createPublicKey } from "node:crypto";
import { createRemoteJWKSet, decodeProtectedHeader, exportSPKI, jwtVerify, type JWK } from "jose";
import { bearer, call } from "../support/http";
import { removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";

const PASSWORD = "a long passphrase";
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

async function addUser(dataDir: string, username: string, extra: string[] = []) {
  const result = await runCli(["user", "add", username, ...extra], { DATA_DIR: dataDir }, PASSWORD);
  expect(result.code).toBe(0);
}

async function signIn(server: RunningServer, username = "root"): Promise<string> {
  const response = await call(server.url, "POST", "/api/v1/auth/login", { username, password: PASSWORD });
  expect(response.status).toBe(200);
  return response.body.access_token;
}

const validate = (server: RunningServer, token: string) => call(server.url, "GET", "/api/v1/auth/validate", undefined, bearer(token));

/**
 * An independent verifier, as an app would set it up from the issuer URL: the discovery document names the
 * jwks_uri (PUBLIC_URL-based, so it is read here from the server it describes), and jose fetches the key set
 * (again on an unknown kid: cooldownDuration 0).
 */
async function verifierOf(server: RunningServer, alg: string) {
  const discovery = (await call(server.url, "GET", "/.well-known/openid-configuration")).body as { issuer: string; jwks_uri: string };
  expect(discovery.issuer).toBe(ISSUER);
  expect(discovery.jwks_uri).toBe(`${ISSUER}/.well-known/jwks.json`);
  const keySet = createRemoteJWKSet(new URL(discovery.jwks_uri.replace(ISSUER, server.url)), { cooldownDuration: 0 });
  return (token: string) => jwtVerify(token, keySet, { issuer: discovery.issuer, algorithms: [alg] });
}

/** A fixed PUBLIC_URL: the issuer stays the same across a restart on another port. */
const ISSUER = "https://auth.example.test";

async function startWith(env: Record<string, string>, dataDir = tempDataDir()) {
  return startServer({ RATE_LIMIT: "off", PUBLIC_URL: ISSUER, ...env }, dataDir);
}

describe("HS256 (the default)", () => {
  let server: RunningServer;
  beforeAll(async () => {
    const dataDir = tempDataDir();
    await addUser(dataDir, "root", ["--admin"]);
    server = await startWith({}, dataDir);
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("the key set is empty and cacheable; tokens name the HS256 kid", async () => {
    const response = await fetch(`${server.url}/.well-known/jwks.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("public, max-age=300");
    expect(await response.json()).toEqual({ keys: [] });
    const header = decodeProtectedHeader(await signIn(server));
    expect(header.alg).toBe("HS256");
    expect(header.kid).toMatch(/^hs256-[\w-]{16}$/);
  });
});

for (const alg of ["RS256", "ES256", "EdDSA"] as const) {
  describe(`JWT_ALG=${alg} through the binary`, () => {
    let server: RunningServer;
    let token: string;
    beforeAll(async () => {
      const dataDir = tempDataDir();
      await addUser(dataDir, "root", ["--admin"]);
      server = await startWith({ JWT_ALG: alg }, dataDir);
      token = await signIn(server);
    });
    afterAll(async () => {
      await server.stop();
      removeDataDir(server.dataDir);
    });

    test("jose's createRemoteJWKSet + jwtVerify accept the access token; /validate too", async () => {
      const { payload, protectedHeader } = await (await verifierOf(server, alg))(token);
      expect(protectedHeader.alg).toBe(alg);
      expect(payload.sub).toBeString();
      expect((await validate(server, token)).status).toBe(200);
      const set = (await call(server.url, "GET", "/.well-known/jwks.json")).body as { keys: JWK[] };
      expect(set.keys.map((key) => key.kid)).toEqual([protectedHeader.kid]);
      for (const member of ["d", "p", "q", "dp", "dq", "qi"]) expect(set.keys[0]).not.toHaveProperty(member);
      expect(server.output()).not.toContain('"d":');
    });

    test("forgeries are refused by jose and by /validate: alg confusion, none, unknown kid, tampered payload", async () => {
      const [header, payload, signature] = token.split(".") as [string, string, string];
      const { kid } = decodeProtectedHeader(token);
      const jwk = (await call(server.url, "GET", "/.well-known/jwks.json")).body.keys[0];
      const claims = { ...JSON.parse(Buffer.from(payload, "base64url").toString()), sub: "someone-else" };
      const pem = await exportSPKI(createPublicKey({ key: jwk, format: "jwk" }) as never);
      const confusionInput = `${b64({ alg: "HS256", kid })}.${b64(claims)}`;
      const forgeries = {
        confusion: `${confusionInput}.${createHmac("sha256", pem).update(confusionInput).digest("base64url")}`,
        none: `${b64({ alg: "none", kid })}.${b64(claims)}.`,
        unknownKid: `${b64({ alg, kid: "not-a-key" })}.${payload}.${signature}`,
        tampered: `${header}.${b64(claims)}.${signature}`,
      };
      const verify = await verifierOf(server, alg);
      for (const [name, forged] of Object.entries(forgeries)) {
        expect({ name, jose: await verify(forged).then(() => "accepted", () => "refused") }).toEqual({ name, jose: "refused" });
        const response = await validate(server, forged);
        expect({ name, status: response.status, error: response.body.error }).toEqual({ name, status: 401, error: "invalid_token" });
      }
    });
  });
}

describe("rotation and restart (JWT_ALG=ES256)", () => {
  let server: RunningServer;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = tempDataDir();
    await addUser(dataDir, "root", ["--admin"]);
    server = await startWith({ JWT_ALG: "ES256", ACCESS_TOKEN_TTL: "4s", REFRESH_TOKEN_TTL: "4s" }, dataDir);
  });
  afterAll(async () => {
    await server.stop();
    removeDataDir(dataDir);
  });

  test("latchkey keys rotate while the server runs: old and new tokens verify; the retired key leaves the set after its last token", async () => {
    const verify = await verifierOf(server, "ES256");
    const before = await signIn(server);
    const oldKid = decodeProtectedHeader(before).kid!;
    const rotated = await runCli(["keys", "rotate"], { DATA_DIR: dataDir, JWT_ALG: "ES256", ACCESS_TOKEN_TTL: "4s", REFRESH_TOKEN_TTL: "4s" });
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toContain("new signing keys: es256-");
    const list = await runCli(["keys", "list"], { DATA_DIR: dataDir });
    expect(list.stdout.split("\n")[0]).toMatch(/^KID +ALG +CREATED +RETIRED +LIVE UNTIL$/);
    expect(list.stdout).toContain(oldKid);
    expect(list.stdout).not.toContain('"d"');
    // The server signs with the new key within about a second: sign in until it does.
    let after = await signIn(server);
    while (decodeProtectedHeader(after).kid === oldKid) {
      await Bun.sleep(100);
      after = await signIn(server);
    }
    expect(list.stdout).toContain(decodeProtectedHeader(after).kid!);
    expect((await verify(before)).protectedHeader.kid).toBe(oldKid);
    expect((await verify(after)).protectedHeader.kid).not.toBe(oldKid);
    expect((await validate(server, before)).status).toBe(200);
    expect((await validate(server, after)).status).toBe(200);
    const kids = async () => ((await call(server.url, "GET", "/.well-known/jwks.json")).body.keys as JWK[]).map((key) => key.kid);
    expect(await kids()).toContain(oldKid);
    // ACCESS_TOKEN_TTL=4s and REFRESH_TOKEN_TTL=4s (a retired key stays the longer of the two: an ID token kept for
    // id_token_hint lives with its session): the key leaves the set within 4 s of the rotation.
    while ((await kids()).includes(oldKid)) await Bun.sleep(200);
    expect((await kids()).filter((kid) => kid!.startsWith("es256-"))).toEqual([decodeProtectedHeader(after).kid!]);
  });

  test("POST /api/v1/admin/keys/rotate rotates, is audited, and the keys survive a restart", async () => {
    const root = await signIn(server);
    const response = await call(server.url, "POST", "/api/v1/admin/keys/rotate", undefined, bearer(root));
    expect(response.status).toBe(200);
    const current = response.body.keys.filter((key: { retired_at: string | null }) => key.retired_at === null);
    expect(current.map((key: { alg: string }) => key.alg).sort()).toEqual(["ES256", "RS256"]);
    for (const key of response.body.keys) expect(Object.keys(key).sort()).toEqual(["alg", "created_at", "kid", "live_until", "retired_at"]);
    const es256 = current.find((key: { alg: string }) => key.alg === "ES256").kid;
    // The response came after the reload: the next token is signed with the new key at once.
    const fresh = await signIn(server);
    expect(decodeProtectedHeader(fresh).kid).toBe(es256);
    const member = await call(server.url, "POST", "/api/v1/admin/keys/rotate");
    expect(member.status).toBe(401);
    const events = await call(server.url, "GET", "/api/v1/admin/audit?event=signing_keys_rotated", undefined, bearer(root));
    expect(events.body.events.map((event: { detail: { via: string } }) => event.detail.via)).toEqual(["api", "cli"]);

    const setBefore = (await call(server.url, "GET", "/.well-known/jwks.json")).body;
    expect(await server.stop()).toBe(0);
    server = await startWith({ JWT_ALG: "ES256", ACCESS_TOKEN_TTL: "4s", REFRESH_TOKEN_TTL: "4s" }, dataDir);
    expect((await call(server.url, "GET", "/.well-known/jwks.json")).body).toEqual(setBefore);
    expect((await validate(server, fresh)).status).toBe(200);
    expect(decodeProtectedHeader(await signIn(server)).kid).toBe(es256);
  });
});

describe("switching JWT_ALG on an instance's data", () => {
  test("HS256 -> EdDSA -> HS256 logs nobody out: old access tokens verify until they expire, refresh tokens keep working", async () => {
    const dataDir = tempDataDir();
    await addUser(dataDir, "root");
    let server = await startWith({}, dataDir);
    const login = await call(server.url, "POST", "/api/v1/auth/login", { username: "root", password: PASSWORD });
    const hsToken = login.body.access_token as string;
    expect(decodeProtectedHeader(hsToken).alg).toBe("HS256");
    expect(await server.stop()).toBe(0);

    server = await startWith({ JWT_ALG: "EdDSA" }, dataDir);
    try {
      expect((await validate(server, hsToken)).status).toBe(200);
      const refreshed = await call(server.url, "POST", "/api/v1/auth/refresh", { refresh_token: login.body.refresh_token });
      expect(refreshed.status).toBe(200);
      const edToken = refreshed.body.access_token as string;
      expect(decodeProtectedHeader(edToken).alg).toBe("EdDSA");
      expect((await validate(server, edToken)).status).toBe(200);
      expect(await server.stop()).toBe(0);

      server = await startWith({}, dataDir);
      expect((await validate(server, edToken)).status).toBe(200);
      expect((await validate(server, hsToken)).status).toBe(200);
      // The EdDSA key is retired, still served until its last token expires.
      const keys = (await call(server.url, "GET", "/.well-known/jwks.json")).body.keys as JWK[];
      expect(keys.map((key) => key.kid)).toEqual([decodeProtectedHeader(edToken).kid]);
      const list = await runCli(["keys", "list"], { DATA_DIR: dataDir });
      expect(list.stdout).toMatch(new RegExp(`${decodeProtectedHeader(edToken).kid} +EdDSA +\\S+ +\\S+Z +\\S+Z`));
    } finally {
      await server.stop();
      removeDataDir(dataDir);
    }
  });
});
