import type { Config } from "../config";
import { closeDatabase, openMigratedDatabase } from "../db/client";
import { createAuditLog } from "../modules/audit/service";
import { keyRetention, listSigningKeys, rotateSigningKeys } from "../tokens/keys";
import type { ArgSpec, ParsedArgs } from "./args";
import { printTable } from "./table";

/** `latchkey keys list`: kid, algorithm, created, retired, and until when a retired key still verifies. */
async function keysList(config: Config): Promise<void> {
  const db = await openMigratedDatabase(config);
  try {
    const rows = [["KID", "ALG", "CREATED", "RETIRED", "LIVE UNTIL"]];
    for (const key of await listSigningKeys(db))
      rows.push([key.kid, key.alg, key.created_at, key.retired_at ?? "-", key.live_until ?? (key.retired_at ? "-" : "current")]);
    printTable(rows);
  } finally {
    await closeDatabase(db);
  }
}

/**
 * `latchkey keys rotate`: new keys for JWT_ALG (when asymmetric) and OIDC_ID_TOKEN_ALG. Safe while the server
 * runs: it re-reads the key set within a second, and tokens signed with the retired keys verify until they expire.
 */
async function keysRotate(config: Config): Promise<void> {
  const db = await openMigratedDatabase(config);
  try {
    const created = await rotateSigningKeys(db, [...new Set([config.jwtAlg, config.oidcIdTokenAlg])], keyRetention(config));
    await createAuditLog(db, () => {}).record({ event: "signing_keys_rotated", detail: { via: "cli", new_kids: created } });
    console.log(`new signing keys: ${created.join(", ")}; retired keys verify their tokens until those expire`);
  } finally {
    await closeDatabase(db);
  }
}

export const KEYS_COMMANDS: Record<string, { spec: ArgSpec; run: (config: Config, args: ParsedArgs) => void | Promise<void> }> = {
  list: { spec: { usage: "latchkey keys list", positionals: 0 }, run: keysList },
  rotate: { spec: { usage: "latchkey keys rotate", positionals: 0 }, run: keysRotate },
};
