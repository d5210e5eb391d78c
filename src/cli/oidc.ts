import type { Config } from "../config";
import { closeDatabase, openMigratedDatabase } from "../db/client";
import { createAuditLog } from "../modules/audit/service";
import { createOidcClients } from "../modules/oidc/clients";
import { CliError, type ArgSpec, type ParsedArgs } from "./args";
import { printTable } from "./table";

async function withClients(config: Config, run: (clients: ReturnType<typeof createOidcClients>, audit: ReturnType<typeof createAuditLog>) => Promise<void>): Promise<void> {
  const db = await openMigratedDatabase(config);
  try {
    await run(createOidcClients(db), createAuditLog(db, () => {}));
  } finally {
    await closeDatabase(db);
  }
}

const commaList = (raw: string | undefined) => (raw ?? "").split(",").map((item) => item.trim()).filter(Boolean);

/** `latchkey oidc client add <client_id> --redirect-uri U ...`: prints the client id and its secret, once. */
async function clientAdd(config: Config, args: ParsedArgs): Promise<void> {
  const [clientId] = args.positionals as [string];
  await withClients(config, async (clients, audit) => {
    const { client, secret } = await clients.create({
      client_id: clientId,
      redirect_uris: args.lists["redirect-uri"] ?? [],
      post_logout_redirect_uris: args.lists["post-logout-redirect-uri"] ?? [],
      public: args.flags.has("public"),
      trusted: args.flags.has("trusted"),
      allowed_roles: commaList(args.options.roles),
      allowed_users: commaList(args.options.users),
      backchannel_logout_uri: args.options["backchannel-logout-uri"],
      refresh: args.flags.has("refresh"),
      machine: args.flags.has("machine"),
      ...(args.options["id-token-alg"] ? { id_token_alg: args.options["id-token-alg"] } : {}),
      ...(args.options.require === undefined ? {} : { require: args.options.require }),
    });
    await audit.record({ event: "oidc_client_created", detail: { via: "cli", client_id: client.client_id } });
    if (args.flags.has("json")) console.log(JSON.stringify({ client_id: client.client_id, client_secret: secret }));
    else {
      console.log(`client_id:     ${client.client_id}`);
      console.log(secret === null ? "client_secret: (none: a public client, PKCE required)" : `client_secret: ${secret}`);
      if (secret !== null) console.log("The secret is shown only now; it is stored hashed.");
    }
  });
}

/** `latchkey oidc client update <client_id> --require passkey|none`: what the client requires of sign-ins. */
async function clientUpdate(config: Config, args: ParsedArgs): Promise<void> {
  const [clientId] = args.positionals as [string];
  const require = args.options.require;
  if (require === undefined) throw new CliError("Say what to change: --require passkey, or --require none.");
  await withClients(config, async (clients, audit) => {
    // "none" on the command line is the API's null; anything else is checked by the service (a 422's message).
    const client = await clients.setRequirement(clientId, require === "none" ? null : require);
    await audit.record({ event: "oidc_client_updated", detail: { via: "cli", client_id: clientId, require: client.require } });
    console.log(client.require === "passkey" ? `client ${clientId}: sign-ins must use a passkey` : `client ${clientId}: no passkey required`);
  });
}

async function clientList(config: Config): Promise<void> {
  await withClients(config, async (clients) => {
    const rows = [["CLIENT_ID", "TYPE", "TRUSTED", "REDIRECT URIS", "ALLOWED"]];
    for (const client of await clients.list())
      rows.push([
        client.client_id,
        client.machine ? "machine" : client.public ? "public" : "confidential",
        client.trusted ? "yes" : "no",
        client.redirect_uris.join(" "),
        [...client.allowed_roles.map((role) => `role:${role}`), ...client.allowed_users.map((id) => `user:${id}`)].join(",") || "everyone",
      ]);
    printTable(rows);
  });
}

async function clientDelete(config: Config, args: ParsedArgs): Promise<void> {
  const [clientId] = args.positionals as [string];
  await withClients(config, async (clients, audit) => {
    await clients.delete(clientId);
    await audit.record({ event: "oidc_client_deleted", detail: { via: "cli", client_id: clientId } });
    console.log(`deleted client ${clientId}; its tokens no longer work`);
  });
}

async function clientRotateSecret(config: Config, args: ParsedArgs): Promise<void> {
  const [clientId] = args.positionals as [string];
  await withClients(config, async (clients, audit) => {
    const secret = await clients.rotateSecret(clientId);
    await audit.record({ event: "oidc_client_secret_rotated", detail: { via: "cli", client_id: clientId } });
    console.log(args.flags.has("json") ? JSON.stringify({ client_id: clientId, client_secret: secret }) : `client_secret: ${secret}`);
  });
}

export const OIDC_CLIENT_COMMANDS: Record<string, { spec: ArgSpec; run: (config: Config, args: ParsedArgs) => void | Promise<void> }> = {
  add: {
    spec: {
      usage:
        "latchkey oidc client add <client_id> --redirect-uri URI [--redirect-uri URI ...] [--post-logout-redirect-uri URI ...] [--public] [--trusted] [--roles a,b] [--users u1,u2] [--backchannel-logout-uri URI] [--refresh] [--machine] [--id-token-alg RS256|ES256|EdDSA] [--require passkey] [--json]",
      positionals: 1,
      repeatable: ["redirect-uri", "post-logout-redirect-uri"],
      options: ["roles", "users", "backchannel-logout-uri", "id-token-alg", "require"],
      flags: ["public", "trusted", "refresh", "machine", "json"],
    },
    run: clientAdd,
  },
  update: { spec: { usage: "latchkey oidc client update <client_id> --require passkey|none", positionals: 1, options: ["require"] }, run: clientUpdate },
  list: { spec: { usage: "latchkey oidc client list", positionals: 0 }, run: clientList },
  delete: { spec: { usage: "latchkey oidc client delete <client_id>", positionals: 1 }, run: clientDelete },
  "rotate-secret": { spec: { usage: "latchkey oidc client rotate-secret <client_id> [--json]", positionals: 1, flags: ["json"] }, run: clientRotateSecret },
};
