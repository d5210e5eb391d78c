import { expect, test } from "bun:test";
import { copyFileSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { bearer, call } from "../support/http";
import { removeDataDir, runCli, startServer, tempDataDir } from "../support/server";

/**
 * `latchkey backup` is a full restore set (issue 16): restored into an empty folder, as the README says, the old
 * access token, refresh token and API key all still work.
 */
const PASSWORD = "a long passphrase";

test("a backup restored into an empty DATA_DIR keeps access tokens, refresh tokens and API keys working", async () => {
  const original = tempDataDir();
  const restored = tempDataDir();
  try {
    expect((await runCli(["user", "add", "keeper"], { DATA_DIR: original }, PASSWORD)).code).toBe(0);
    // One PUBLIC_URL for both: it is the tokens' issuer, and the two servers listen on different ports.
    const server = await startServer({ RATE_LIMIT: "off", PUBLIC_URL: "http://auth.example.test" }, original);
    const login = await call(server.url, "POST", "/api/v1/auth/login", { username: "keeper", password: PASSWORD });
    const { access_token, refresh_token } = login.body;
    const key = (await call(server.url, "POST", "/api/v1/auth/keys", { name: "nas" }, bearer(access_token))).body.api_key;

    const target = join(original, "backup.db");
    const backup = await runCli(["backup", target], { DATA_DIR: original });
    expect(backup.code).toBe(0);
    expect(backup.stdout).toContain(`backed up ${join(original, "jwt_secret")} to ${target}.jwt_secret\n`);
    expect(statSync(`${target}.jwt_secret`).mode & 0o777).toBe(0o600);
    expect(await server.stop()).toBe(0);

    // The README's restore: both files into the new DATA_DIR.
    copyFileSync(target, join(restored, "latchkey.db"));
    copyFileSync(`${target}.jwt_secret`, join(restored, "jwt_secret"));
    const again = await startServer({ RATE_LIMIT: "off", PUBLIC_URL: "http://auth.example.test" }, restored);
    try {
      const validate = await call(again.url, "GET", "/api/v1/auth/validate", undefined, bearer(access_token));
      expect(validate.status).toBe(200);
      expect(validate.body.username).toBe("keeper");
      expect((await call(again.url, "GET", "/api/v1/auth/validate", undefined, { "x-api-key": key })).status).toBe(200);
      const refreshed = await call(again.url, "POST", "/api/v1/auth/refresh", { refresh_token });
      expect(refreshed.status).toBe(200);
      expect(typeof refreshed.body.access_token).toBe("string");
    } finally {
      await again.stop();
    }

    // A second backup to the same name is refused for either file; nothing is overwritten.
    const twice = await runCli(["backup", target], { DATA_DIR: original });
    expect(twice.code).toBe(1);
    expect(twice.stderr).toBe(`latchkey: ${target} already exists; choose a new file name\n`);
  } finally {
    removeDataDir(original);
    removeDataDir(restored);
  }
});

test("with JWT_SECRET set, backup writes the database only and says the secret must be kept", async () => {
  const dataDir = tempDataDir();
  try {
    const env = { DATA_DIR: dataDir, JWT_SECRET: "s".repeat(40) };
    expect((await runCli(["migrate"], env)).code).toBe(0);
    const target = join(dataDir, "backup.db");
    const backup = await runCli(["backup", target], env);
    expect(backup.code).toBe(0);
    expect(backup.stdout).toContain("the JWT secret comes from JWT_SECRET: keep it with the backup");
    expect(existsSync(`${target}.jwt_secret`)).toBe(false);
  } finally {
    removeDataDir(dataDir);
  }
});
