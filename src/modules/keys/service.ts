import { and, count, eq } from "drizzle-orm";
import { assertSessionLive } from "../sessions/service";
import { sql } from "drizzle-orm";
import { changedRows, changes, isPostgres, row, run, transaction, type Atomic } from "../../db/atomic";
import type { Pending } from "../../lib/pending";
import type { Db } from "../../db/client";
import { peersOf } from "../../db/peers";
import { apiKeys, users } from "../../db/tables";
import { principalUserColumns, type UserIdentity } from "../users/service";
import { apiErrors, type FieldError, invalidApiKey, rateLimited, validationFailed } from "../../errors";
import { safeEqual, sha256Hex } from "../../lib/crypto";
import { createTokenBuckets } from "../../limits/token-bucket";
import { MAX_DURATION_SECONDS } from "../../lib/duration";
import { displayPrefix, generateApiKey, isWellFormedApiKey } from "./format";

/** Who an API key acts for: the user's identity plus the key's own id and scopes. No session. */
export interface ApiKeyPrincipal extends UserIdentity {
  keyId: string;
  scopes: string[];
}

export interface ApiKeySettings {
  maxPerUser: number;
  /** Requests allowed per key per period; undefined means no quota. */
  rateLimit: { requests: number; periodSeconds: number } | undefined;
}

const SCOPE_PATTERN = /^[A-Za-z0-9:._\-/*]{1,64}$/;
const MAX_SCOPES = 32;
/** How long a looked-up key is trusted without asking the database again. */
const CACHE_TTL_MS = 1000;
/** Past this many cached keys, stale entries are swept. */
const CACHE_SWEEP_SIZE = 10_000;
/** How often the cache asks SQLite whether another process wrote (see lookUp): the most a revocation made elsewhere waits. */
export const DATA_VERSION_CHECK_MS = 10;
/** last_used_at is written at most this often per key: no database write on every request. */
const LAST_USED_RESOLUTION_MS = 60_000;
/**
 * Keys a user may create per hour (in a burst, refilled evenly): far above any real use, and a bound on what a
 * session, a stolen one included, can write into the table and the audit trail by creating and deleting keys.
 */
export const KEY_CREATIONS_PER_HOUR = 50;

/** NFC, so that one name typed two ways is one name; trimmed. */
const normalizeKeyName = (raw: string) => raw.normalize("NFC").trim();

/** 1-64 characters (code points, not UTF-16 units), no control characters, and something visible. */
function nameProblem(name: string): string | undefined {
  const length = [...name].length;
  if (length < 1 || length > 64) return "Must be 1-64 characters.";
  if (/[\p{Cc}\p{Cs}]/u.test(name) || !/[\p{L}\p{N}\p{P}\p{S}]/u.test(name))
    return "Must be visible text: no control characters, not only blanks or invisible characters.";
  return undefined;
}

export interface NewApiKey {
  name: string;
  expiresIn?: number;
  scopes?: string[];
}

export function createApiKeyService(db: Db, settings: ApiKeySettings) {
  const quota = settings.rateLimit
    ? createTokenBuckets(settings.rateLimit.requests, settings.rateLimit.periodSeconds * 1000)
    : undefined;
  const creations = createTokenBuckets(KEY_CREATIONS_PER_HOUR, 3_600_000);

  // Two point lookups rather than one join: a join costs bun:sqlite ~10 µs per execution against ~1.5 µs for
  // each of these (measured in bench/README.md); a key's first request in each second pays for them.
  const keyByHash = db
    .select({
      keyId: apiKeys.id,
      keyHash: apiKeys.keyHash,
      userId: apiKeys.userId,
      scopes: apiKeys.scopes,
      expiresAt: apiKeys.expiresAt,
      lastUsedAt: apiKeys.lastUsedAt,
    })
    .from(apiKeys)
    .where(eq(apiKeys.keyHash, sql.placeholder("hash")))
    .prepare();
  const userById = db.select(principalUserColumns()).from(users).where(eq(users.id, sql.placeholder("id"))).prepare();

  type StoredKey = NonNullable<ReturnType<typeof keyByHash.get>>;
  const cache = new Map<string, { stored: StoredKey; principal: ApiKeyPrincipal; fetchedAt: number }>();

  // SQLite's data_version moves when another connection (the CLI) commits a write: then every cached key is
  // dropped, so a key deleted or a user disabled elsewhere fails within DATA_VERSION_CHECK_MS too. Reading it is a
  // statement (a read transaction, ~2 µs: a sixth of a cached key's request, profiled), so it is read at most that
  // often rather than on every request. PostgreSQL has no such counter: other instances announce their
  // revocations instead (db/peers.ts).
  const dataVersion = isPostgres(db) ? undefined : db.$client.prepare<{ data_version: number }, []>("PRAGMA data_version");
  let cachedVersion = -1;
  let versionCheckedAt = -Infinity;
  const peers = peersOf(db);
  peers.listen((revocation) => {
    if (revocation.kind === "user") forgetUser(revocation.id);
    else if (revocation.kind === "key") forgetKey(revocation.id);
  });

  /** The cached entry for this hash while it is fresh (after emptying the cache if another process wrote). */
  function cachedKey(hash: string, now: number): { stored: StoredKey; principal: ApiKeyPrincipal } | undefined {
    if (dataVersion && (now - versionCheckedAt >= DATA_VERSION_CHECK_MS || now < versionCheckedAt)) {
      versionCheckedAt = now;
      const version = dataVersion.get()!.data_version;
      if (version !== cachedVersion) {
        cache.clear();
        cachedVersion = version;
      }
    }
    const cached = cache.get(hash);
    if (cached && now - cached.fetchedAt < CACHE_TTL_MS && !(cached.stored.expiresAt && cached.stored.expiresAt.getTime() <= now)) return cached;
    return undefined;
  }

  /** The live key with this hash and its enabled user, or undefined; from the cache when it is fresh. */
  function* lookUp(hash: string, now: number): Atomic<{ stored: StoredKey; principal: ApiKeyPrincipal } | undefined> {
    const cached = cachedKey(hash, now);
    if (cached) return cached;
    cache.delete(hash);
    const stored = yield* row(keyByHash, { hash });
    // The lookup is by hash already; the constant-time compare keeps the check explicit (OWASP ASVS V11.2).
    if (!stored || !safeEqual(stored.keyHash, hash) || (stored.expiresAt && stored.expiresAt.getTime() <= now)) return undefined;
    const user = yield* row(userById, { id: stored.userId });
    if (!user || user.disabled) return undefined;
    const { disabled: _disabled, ...identity } = user;
    const entry = { stored, principal: { ...identity, keyId: stored.keyId, scopes: stored.scopes }, fetchedAt: now };
    if (cache.size >= CACHE_SWEEP_SIZE) {
      for (const [key, old] of cache) if (now - old.fetchedAt >= CACHE_TTL_MS) cache.delete(key);
      if (cache.size >= CACHE_SWEEP_SIZE) cache.clear();
    }
    cache.set(hash, entry);
    return entry;
  }

  /** `last_used_at` is written at most once per LAST_USED_RESOLUTION_MS per key. */
  const lastUseDue = (stored: StoredKey, now: number) => !stored.lastUsedAt || now - stored.lastUsedAt.getTime() >= LAST_USED_RESOLUTION_MS;

  /** Spends one request of the key's quota (API_KEY_RATE_LIMIT), or refuses with 429. */
  function spend(found: { stored: StoredKey; principal: ApiKeyPrincipal }, now: number): ApiKeyPrincipal {
    if (quota) {
      const decision = quota.take(found.stored.keyId, now);
      if (!decision.allowed) throw rateLimited(decision.retryAfter, "This API key is over its request quota.");
    }
    return found.principal;
  }

  /** Drops a user's cached keys: their roles changed, they were disabled (keys deleted) or deleted. */
  function forgetUser(userId: string): void {
    for (const [hash, entry] of cache) if (entry.stored.userId === userId) cache.delete(hash);
  }

  function forgetKey(keyId: string): void {
    for (const [hash, entry] of cache) if (entry.stored.keyId === keyId) cache.delete(hash);
  }

  function validate(input: NewApiKey, name: string): FieldError[] {
    const details: FieldError[] = [];
    const problem = nameProblem(name);
    if (problem) details.push({ field: "name", message: problem });
    if (input.expiresIn !== undefined && (!Number.isInteger(input.expiresIn) || input.expiresIn < 60 || input.expiresIn > MAX_DURATION_SECONDS))
      details.push({ field: "expires_in", message: "Must be a whole number of seconds from 60 to 315360000." });
    if (input.scopes && (input.scopes.length > MAX_SCOPES || input.scopes.some((scope) => !SCOPE_PATTERN.test(scope))))
      details.push({ field: "scopes", message: `At most ${MAX_SCOPES} scopes of 1-64 characters from A-Z a-z 0-9 : . _ - / *.` });
    return details;
  }

  return {
    /**
     * Mints a key for the signed-in user; the secret is returned once and only its hash is kept. The session that
     * asks is re-checked in the insert's transaction: a key must not outlive a disable the cache has not seen yet.
     */
    create({ userId, sessionId }: { userId: string; sessionId: string }, input: NewApiKey) {
      const name = normalizeKeyName(input.name);
      const details = validate(input, name);
      if (details.length) throw validationFailed(details);
      const allowed = creations.take(userId);
      if (!allowed.allowed) throw rateLimited(allowed.retryAfter);
      const key = generateApiKey();
      const now = Date.now();
      // Serial order with other creations by the same user (the count and the name check stay true until the
      // insert) and with a sign-out or disable (the session re-check).
      return transaction(db, function* (tx) {
          yield* assertSessionLive(tx, sessionId);
          const owned = (yield* row(tx.select({ n: count() }).from(apiKeys).where(eq(apiKeys.userId, userId))))?.n ?? 0;
          if (owned >= settings.maxPerUser)
            throw apiErrors.key_limit_reached(`A user can hold at most ${settings.maxPerUser} API keys.`);
          if (yield* row(tx.select({ id: apiKeys.id }).from(apiKeys).where(and(eq(apiKeys.userId, userId), eq(apiKeys.name, name)))))
            throw apiErrors.key_name_taken("You already have an API key with that name.");
          const created = (yield* row(tx
            .insert(apiKeys)
            .values({
              id: Bun.randomUUIDv7(),
              userId,
              name,
              prefix: displayPrefix(key),
              keyHash: sha256Hex(key),
              scopes: [...new Set(input.scopes ?? [])],
              createdAt: new Date(now),
              expiresAt: input.expiresIn === undefined ? null : new Date(now + input.expiresIn * 1000),
            })
            .returning()))!;
          return {
            key_id: created.id,
            api_key: key,
            name: created.name,
            scopes: created.scopes,
            created_at: created.createdAt.toISOString(),
            expires_at: created.expiresAt?.toISOString() ?? null,
          };
        });
    },

    async list(userId: string) {
      return (await db
        .select()
        .from(apiKeys)
        .where(eq(apiKeys.userId, userId))
        .orderBy(apiKeys.createdAt))
        .map((row) => ({
          key_id: row.id,
          name: row.name,
          scopes: row.scopes,
          prefix: row.prefix,
          created_at: row.createdAt.toISOString(),
          expires_at: row.expiresAt?.toISOString() ?? null,
          last_used_at: row.lastUsedAt?.toISOString() ?? null,
        }));
    },

    /** Another user's key is "not found" too: no existence leak. */
    async delete(userId: string, keyId: string): Promise<void> {
      const deleted = changedRows(await db.delete(apiKeys).where(and(eq(apiKeys.id, keyId), eq(apiKeys.userId, userId))));
      forgetKey(keyId);
      if (deleted !== 1) throw apiErrors.key_not_found("No such API key.");
      await peers.announce({ kind: "key", id: keyId });
    },

    /**
     * Two indexed lookups, trusted for at most CACHE_TTL_MS (forward auth and validate run on every proxied
     * request: 8.5 µs uncached against under 1 µs cached). Deleting a key, or disabling or deleting its user, takes
     * effect on the very next request in this process (the cache entry is dropped: `delete`, `forgetUser`). Made
     * elsewhere: on SQLite within DATA_VERSION_CHECK_MS (the CLI's write moves data_version, which empties the
     * cache); on PostgreSQL when the other instance's announcement arrives (db/peers.ts: milliseconds), and at the
     * latest when the entry's second is over. A malformed or mistyped key is refused before any lookup.
     * `countUse: false` checks the key without spending its quota or moving `last_used_at` (for a route that
     * refuses keys anyway).
     */
    authenticate(key: string, { countUse = true } = {}): Pending<ApiKeyPrincipal> {
      const hash = sha256Hex(key);
      const now = Date.now();
      // A fresh cache entry answers without the data layer's runner (a generator per request, profiled at a fifth
      // of a cached key's request) when there is nothing to write. Its hash matched, so the key is the one stored,
      // well-formed; anything else is checked for shape before any lookup.
      const cached = cachedKey(hash, now);
      if (cached && (!countUse || !lastUseDue(cached.stored, now))) return countUse ? spend(cached, now) : cached.principal;
      if (!isWellFormedApiKey(key)) throw invalidApiKey();
      return run(db, function* () {
        const found = yield* lookUp(hash, now);
        if (!found) throw invalidApiKey();
        if (!countUse) return found.principal;
        const principal = spend(found, now);
        if (lastUseDue(found.stored, now)) {
          found.stored.lastUsedAt = new Date(now);
          yield* changes(db.update(apiKeys).set({ lastUsedAt: new Date(now) }).where(eq(apiKeys.id, found.stored.keyId)));
        }
        return principal;
      });
    },

    forgetUser,
  };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;
