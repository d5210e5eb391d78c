/**
 * Revocations other instances must hear of. Each instance caches sessions and API keys for up to a second (the
 * validate path runs on every request of every protected app); a logout, a disable, a deletion or a key deletion
 * drops the entries of the instance that made it at once, and `announce` tells the others. On PostgreSQL that is
 * NOTIFY on one channel, which every instance LISTENs to, so another instance drops its entries typically within
 * milliseconds, the cache's second being only the bound. On SQLite one server owns the file; writes by other
 * processes (the CLI) are noticed through the caches' second and SQLite's data_version (modules/keys/service.ts).
 */
import type { Db } from "./client";
import { isPostgres } from "./atomic";

/** A session, every session and key of a user, an API key; or the signing keys, rotated (id unused). */
export type Revocation = { kind: "session" | "user" | "key" | "signing_keys"; id: string };

export interface Peers {
  /** Tells the other instances (and this one's listeners, harmlessly) about a revocation. */
  announce(revocation: Revocation): Promise<void>;
  /** Calls `listener` for each revocation announced by any instance. */
  listen(listener: (revocation: Revocation) => void): void;
  /**
   * Whether this instance hears announcements now (/ready): on PostgreSQL a NOTIFY of its own comes back on its
   * LISTEN connection within `timeoutMs`; SQLite has no other instances to hear.
   */
  hears(timeoutMs: number): Promise<boolean>;
}

const CHANNEL = "latchkey_revocations";
/** A readiness probe's payload prefix: not a revocation kind, so every instance but its sender ignores it. */
const PROBE = "probe:";

interface PostgresClient {
  notify(channel: string, payload: string): Promise<unknown>;
  listen(channel: string, onNotify: (payload: string) => void): Promise<unknown>;
}

const peersByDb = new WeakMap<Db, Peers>();

function parse(payload: string): Revocation | undefined {
  const [kind, id] = [payload.slice(0, payload.indexOf(":")), payload.slice(payload.indexOf(":") + 1)];
  return (kind === "session" || kind === "user" || kind === "key" || kind === "signing_keys") && id ? { kind, id } : undefined;
}

/** The instances sharing `db` (one object per database handle). */
export function peersOf(db: Db): Peers {
  let peers = peersByDb.get(db);
  if (peers) return peers;
  if (!isPostgres(db)) peers = { announce: async () => {}, listen: () => {}, hears: async () => true };
  else {
    const client = db.$client as unknown as PostgresClient;
    const listeners: ((revocation: Revocation) => void)[] = [];
    const probes = new Map<string, () => void>();
    let listening: Promise<unknown> | undefined;
    peers = {
      async announce({ kind, id }) {
        await client.notify(CHANNEL, `${kind}:${id}`);
      },
      listen(listener) {
        listeners.push(listener);
        // One LISTEN connection per instance; postgres.js listens again after a reconnect.
        listening ??= client
          .listen(CHANNEL, (payload) => {
            if (payload.startsWith(PROBE)) return probes.get(payload)?.();
            const revocation = parse(payload);
            if (revocation) for (const each of listeners) each(revocation);
          })
          .catch((error: Error & { code?: string }) => {
            // Ended by this process (a stop, or a start that failed later): nothing to report.
            if (error.code === "CONNECTION_ENDED" || error.code === "CONNECTION_DESTROYED") return;
            console.error(`latchkey: cannot LISTEN for other instances' revocations (${error.message}); caches expire within a second`);
          });
      },
      async hears(timeoutMs) {
        if (!listening) return false;
        const payload = `${PROBE}${Bun.randomUUIDv7()}`;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const heard = new Promise<boolean>((resolve) => {
          probes.set(payload, () => resolve(true));
          timer = setTimeout(() => resolve(false), timeoutMs);
        });
        try {
          await client.notify(CHANNEL, payload);
          return await heard;
        } catch {
          return false;
        } finally {
          clearTimeout(timer);
          probes.delete(payload);
        }
      },
    };
  }
  peersByDb.set(db, peers);
  return peers;
}
