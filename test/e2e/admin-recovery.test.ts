import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { bearer, call } from "../support/http";
import { removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";

/** An admin resets a forgotten password (API), and removes an account from the CLI (issue 16). */

const PASSWORD = "a long passphrase";
const NEW_PASSWORD = "another long passphrase";

async function addUser(dataDir: string, username: string, extra: string[] = []) {
  expect((await runCli(["user", "add", username, ...extra], { DATA_DIR: dataDir }, PASSWORD)).code).toBe(0);
}

const login = (server: RunningServer, username: string, password: string) =>
  call(server.url, "POST", "/api/v1/auth/login", { username, password });

describe("POST /api/v1/admin/users/:id/password", () => {
  let server: RunningServer;
  let root: string;

  beforeAll(async () => {
    const dataDir = tempDataDir();
    await addUser(dataDir, "root", ["--admin"]);
    await addUser(dataDir, "forgetful");
    server = await startServer({ RATE_LIMIT: "off" }, dataDir);
    root = (await login(server, "root", PASSWORD)).body.access_token;
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("sets the password, ends the user's sessions at once, keeps its API keys, and is audited", async () => {
    const session = (await login(server, "forgetful", PASSWORD)).body;
    const key = (await call(server.url, "POST", "/api/v1/auth/keys", { name: "nas" }, bearer(session.access_token))).body.api_key;
    const reset = await call(server.url, "POST", `/api/v1/admin/users/${session.user.id}/password`, { new_password: NEW_PASSWORD }, bearer(root));
    expect(reset.status).toBe(200);
    expect(reset.body).toEqual({ message: "Password set; 1 session(s) of the user ended." });
    const old = await call(server.url, "GET", "/api/v1/auth/validate", undefined, bearer(session.access_token));
    expect(old.status).toBe(401);
    expect(old.body.error).toBe("invalid_token");
    expect((await call(server.url, "GET", "/api/v1/auth/validate", undefined, { "x-api-key": key })).status).toBe(200);
    expect((await login(server, "forgetful", PASSWORD)).status).toBe(401);
    expect((await login(server, "forgetful", NEW_PASSWORD)).status).toBe(200);
    const events = await call(server.url, "GET", `/api/v1/admin/audit?user_id=${session.user.id}&event=admin_user_updated`, undefined, bearer(root));
    expect(events.status).toBe(200);
    expect(events.body.events[0].detail).toMatchObject({ changed: ["password"], sessions_ended: 1, actor: "root" });
  });

  test("refuses a weak password (422 weak_password), a missing one or an unknown field (422), an unknown user (404) and a non-admin (403)", async () => {
    const member = (await login(server, "forgetful", NEW_PASSWORD)).body;
    const path = `/api/v1/admin/users/${member.user.id}/password`;
    const weak = await call(server.url, "POST", path, { new_password: "password123" }, bearer(root));
    expect(weak.status).toBe(422);
    expect(weak.body.error).toBe("weak_password");
    // PATCH /users/:id does not set passwords: a `password` field there is named as unknown, not ignored with a 200.
    const patched = await call(server.url, "PATCH", `/api/v1/admin/users/${member.user.id}`, { password: NEW_PASSWORD + "x" }, bearer(root));
    expect(patched.status).toBe(422);
    expect(patched.body.details).toEqual([{ field: "password", message: "Is not a field this route takes." }]);
    const extra = await call(server.url, "POST", path, { new_password: NEW_PASSWORD, notify: true }, bearer(root));
    expect(extra.status).toBe(422);
    expect(extra.body.details).toEqual([{ field: "notify", message: "Is not a field this route takes." }]);
    const missingField = await call(server.url, "POST", path, {}, bearer(root));
    expect(missingField.status).toBe(422);
    expect(missingField.body.error).toBe("validation_failed");
    const missing = await call(server.url, "POST", "/api/v1/admin/users/00000000-0000-7000-8000-000000000000/password", { new_password: NEW_PASSWORD }, bearer(root));
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe("user_not_found");
    const notAdmin = await call(server.url, "POST", path, { new_password: NEW_PASSWORD }, bearer(member.access_token));
    expect(notAdmin.status).toBe(403);
    expect(notAdmin.body.error).toBe("forbidden");
  });
});

describe("latchkey user delete", () => {
  test("deletes a user with its sessions, refuses the last admin and an unknown name, each in one line", async () => {
    const dataDir = tempDataDir();
    try {
      await addUser(dataDir, "root", ["--admin"]);
      await addUser(dataDir, "leaver");
      const env = { DATA_DIR: dataDir };
      const deleted = await runCli(["user", "delete", "leaver"], env);
      expect(deleted).toMatchObject({ code: 0, stdout: "deleted user leaver with its sessions and API keys\n" });
      const list = await runCli(["user", "list"], env);
      expect(list.stdout).not.toContain("leaver");
      const lastAdmin = await runCli(["user", "delete", "root"], env);
      expect(lastAdmin.code).toBe(1);
      expect(lastAdmin.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(lastAdmin.stderr).toContain("last");
      const unknown = await runCli(["user", "delete", "nobody"], env);
      expect(unknown).toMatchObject({ code: 1, stderr: "latchkey: no such user: nobody\n" });
    } finally {
      removeDataDir(dataDir);
    }
  });
});
