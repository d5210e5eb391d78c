import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrate, openDatabase } from "../../src/db/client";
import { users } from "../../src/db/schema";
import { createApiKeyService } from "../../src/modules/keys/service";
import { createSessionService } from "../../src/modules/sessions/service";

/**
 * Another process (the CLI, a second instance) deletes a key or disables its user through its own connection:
 * the server's key cache, which reads SQLite's data_version only every DATA_VERSION_CHECK_MS, still refuses the
 * key within 1 s (revocation's bound), and in practice within a few milliseconds.
 */
async function refusedWithinOneSecond(authenticate: () => unknown): Promise<number> {
  const start = Date.now();
  for (;;) {
    try {
      await authenticate();
    } catch (error) {
      expect((error as { code?: string }).code).toBe("invalid_api_key");
      return Date.now() - start;
    }
    if (Date.now() - start > 1000) throw new Error("the key still worked 1 s after another process revoked it");
    await Bun.sleep(1);
  }
}

for (const change of ["deletes the key", "disables the user"] as const) {
  test(`a key cached by the server stops working within 1 s when another process ${change}`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "latchkey-key-cache-"));
    try {
      const server = openDatabase(join(dir, "latchkey.db"));
      migrate(server);
      server.insert(users).values({ id: "u1", username: "someone", passwordHash: "unused" }).run();
      const sessions = createSessionService(server, { refreshTokenTtl: 3600, refreshReuseInterval: 10, refreshRotationKey: new Uint8Array(32) });
      const { sessionId } = await sessions.create({ userId: "u1" }, { ip: "192.0.2.1", userAgent: "test" }, ["pwd"]);
      const keys = createApiKeyService(server, { maxPerUser: 10, rateLimit: undefined });
      const { api_key: key } = await keys.create({ userId: "u1", sessionId }, { name: "cached" });
      expect((await keys.authenticate(key)).userId).toBe("u1");
      expect((await keys.authenticate(key)).userId).toBe("u1");

      const cli = openDatabase(join(dir, "latchkey.db"));
      if (change === "deletes the key") cli.$client.run("DELETE FROM api_keys");
      else cli.$client.run("UPDATE users SET disabled = 1 WHERE id = 'u1'");
      cli.$client.close();
      await refusedWithinOneSecond(() => keys.authenticate(key));
      server.$client.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
