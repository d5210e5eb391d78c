import { createPublicKey, type JsonWebKey } from "node:crypto";
import { and, eq, gt, isNull, ne, notInArray, or } from "drizzle-orm";
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import { changes, rows, run, transaction, type Atomic } from "../db/atomic";
import type { Pending } from "../lib/pending";
import type { Db } from "../db/client";
import { peersOf } from "../db/peers";
import { signingKeys } from "../db/tables";
import { randomToken } from "../lib/crypto";
import { hmacKey, hs256Kid, publicKey, type VerificationKey } from "./verifier";
import type { JwtAlg } from "../lib/jwt-algs";

/** How long the loaded key set is trusted before the database is asked again (a rotation by the CLI or another instance). */
const RELOAD_AFTER_MS = 1000;

export type AsymmetricAlg = Exclude<JwtAlg, "HS256">;

export interface KeyRingSettings {
  /** JWT_SECRET's bytes: the HS256 key. */
  hs256Secret: Uint8Array;
  /** The algorithms this configuration signs with (JWT_ALG, OIDC_ID_TOKEN_ALG). */
  algs: readonly JwtAlg[];
  /** How long a retired key stays in the JWKS and verifies (seconds): keyRetention's. */
  maxTokenTtl: number;
}

/**
 * How long a retired key stays published (seconds): as long as a token it signed may still be presented. An
 * access token lives ACCESS_TOKEN_TTL; but a relying party keeps the ID token of a session as long as the session
 * refreshes (REFRESH_TOKEN_TTL) and sends it back as id_token_hint to log out (RP-Initiated Logout 1.0 §2), which
 * must still verify after a rotation.
 */
export const keyRetention = (config: { accessTokenTtl: number; refreshTokenTtl: number }) => Math.max(config.accessTokenTtl, config.refreshTokenTtl);

/** A public key as served in the JWKS. */
export type PublicJwk = JWK & { kid: string; alg: string; kty: string; use: "sig" };

export interface SigningKey {
  kid: string;
  alg: JwtAlg;
  key: CryptoKey | Uint8Array;
}

export interface KeyInfo {
  kid: string;
  alg: string;
  created_at: string;
  retired_at: string | null;
  live_until: string | null;
}

type KeyRow = typeof signingKeys.$inferSelect;

const liveRows = (db: Db, now: number) =>
  rows(db.select().from(signingKeys).where(or(isNull(signingKeys.liveUntil), gt(signingKeys.liveUntil, new Date(now)))));

/** A fresh key pair of `alg` as a row (private JWK included); RSA keys are 2048-bit, ES256 P-256, EdDSA Ed25519. */
async function newKeyRow(alg: AsymmetricAlg) {
  const pair = await generateKeyPair(alg, { extractable: true, ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}) });
  const kid = `${alg.toLowerCase()}-${randomToken(12)}`;
  return { kid, alg, publicJwk: { ...(await exportJWK(pair.publicKey)) }, privateJwk: { ...(await exportJWK(pair.privateKey)) } };
}

/**
 * Retires the current keys of `algs` and creates their successors (for `latchkey keys rotate` and the admin API).
 * A running server picks the new ones up within RELOAD_AFTER_MS. HS256 has no key to rotate here (its key is
 * JWT_SECRET): it is skipped. Returns the new keys' ids.
 */
export async function rotateSigningKeys(db: Db, algs: readonly JwtAlg[], maxTokenTtl: number): Promise<string[]> {
  const fresh = await Promise.all(algs.filter((alg): alg is AsymmetricAlg => alg !== "HS256").map(newKeyRow));
  const now = Date.now();
  // Serial order with another rotation: one current key per algorithm (the partial unique index says so too).
  await transaction(db, function* (tx) {
    for (const row of fresh) {
      yield* changes(
        tx
          .update(signingKeys)
          .set({ retiredAt: new Date(now), liveUntil: new Date(now + maxTokenTtl * 1000) })
          .where(and(eq(signingKeys.alg, row.alg), isNull(signingKeys.retiredAt))),
      );
      yield* changes(tx.insert(signingKeys).values(row));
    }
  });
  // Other instances re-read their key set now rather than at their next unknown kid.
  await peersOf(db).announce({ kind: "signing_keys", id: "rotated" });
  return fresh.map((row) => row.kid);
}

/** Every key ever used (current ones first, then the most recently retired), without key material: `latchkey keys list`, the admin API. */
export async function listSigningKeys(db: Db): Promise<KeyInfo[]> {
  return (await db.select().from(signingKeys))
    // Current keys first, then by retirement, newest first.
    .sort((a, b) => (b.retiredAt?.getTime() ?? Infinity) - (a.retiredAt?.getTime() ?? Infinity) || b.createdAt.getTime() - a.createdAt.getTime())
    .map((row) => ({
      kid: row.kid,
      alg: row.alg,
      created_at: row.createdAt.toISOString(),
      retired_at: row.retiredAt?.toISOString() ?? null,
      live_until: row.liveUntil?.toISOString() ?? null,
    }));
}

/**
 * The server's signing and verification keys, read from signing_keys. At start it retires the current keys of
 * algorithms the configuration no longer signs with (switching JWT_ALG logs nobody out: their tokens verify until
 * they expire) and records the HS256 key when it is in use. Asymmetric keys are generated on first need.
 * Verification keys are imported once per kid and looked up by a Map; the set is re-read at most once a second.
 */
export function createKeyRing(db: Db, settings: KeyRingSettings) {
  const hsKid = hs256Kid(settings.hs256Secret);
  const maxTtlMs = settings.maxTokenTtl * 1000;
  let verification = new Map<string, VerificationKey>();
  let current = new Map<JwtAlg, KeyRow>();
  const signers = new Map<string, Promise<CryptoKey | Uint8Array>>();
  let jwks: { keys: PublicJwk[] } = { keys: [] };
  let loadedAt = 0;

  function* retireUnconfigured(tx: Db): Atomic<void> {
    const now = Date.now();
    // Keys of algorithms no longer configured, and the HS256 row of an earlier JWT_SECRET (its tokens cannot verify anyway).
    yield* changes(
      tx
        .update(signingKeys)
        .set({ retiredAt: new Date(now), liveUntil: new Date(now + maxTtlMs) })
        .where(and(isNull(signingKeys.retiredAt), or(notInArray(signingKeys.alg, [...settings.algs]), and(eq(signingKeys.alg, "HS256"), ne(signingKeys.kid, hsKid))))),
    );
    if (settings.algs.includes("HS256"))
      yield* changes(tx.insert(signingKeys).values({ kid: hsKid, alg: "HS256" }).onConflictDoUpdate({ target: signingKeys.kid, set: { retiredAt: null, liveUntil: null } }));
  }

  function* loading(): Atomic<void> {
    const now = Date.now();
    const rows = yield* liveRows(db, now);
    const next = new Map<string, VerificationKey>();
    const nextCurrent = new Map<JwtAlg, KeyRow>();
    const keys: PublicJwk[] = [];
    for (const row of rows) {
      const alg = row.alg as JwtAlg;
      const liveUntil = row.liveUntil?.getTime() ?? null;
      if (row.retiredAt === null) nextCurrent.set(alg, row);
      if (alg === "HS256") {
        if (row.kid === hsKid) next.set(row.kid, hmacKey(hsKid, settings.hs256Secret, liveUntil));
        continue;
      }
      if (!row.publicJwk) continue;
      const known = verification.get(row.kid);
      next.set(
        row.kid,
        known && known.liveUntil === liveUntil ? known : publicKey(row.kid, alg, createPublicKey({ key: row.publicJwk as JsonWebKey, format: "jwk" }), liveUntil),
      );
      keys.push({ ...(row.publicJwk as JWK), kty: String(row.publicJwk.kty), kid: row.kid, alg, use: "sig" });
    }
    verification = next;
    current = nextCurrent;
    for (const kid of signers.keys()) if (!next.has(kid)) signers.delete(kid);
    jwks = { keys };
    loadedAt = now;
  }

  /**
   * Re-reads the key set: at once on SQLite; on PostgreSQL the answer arrives later, and the request that asked
   * goes on with the set it had (an unknown kid is refused this once; rotations are rare, and other instances
   * keep their tokens verifiable for their whole life).
   */
  function load(): Pending<void> {
    const loaded = run(db, loading);
    if (loaded instanceof Promise) loaded.catch((error: Error) => console.error(`latchkey: cannot read the signing keys (${error.message})`));
    return loaded;
  }

  peersOf(db).listen((revocation) => {
    if (revocation.kind === "signing_keys") void load();
  });

  const reloadIfStale = () => {
    if (Date.now() - loadedAt >= RELOAD_AFTER_MS) void load();
  };

  /**
   * Start-up: retire what the configuration dropped (each statement idempotent: instances starting together
   * agree), then read the set. Done when this returns on SQLite; the server awaits `ready` before it listens.
   */
  const ready = Promise.resolve(
    run(db, function* (db) {
      yield* retireUnconfigured(db);
      yield* loading();
    }),
  );

  return {
    /**
     * The key a token's `kid` names, or undefined. No kid means the HS256 key (tokens from before kids). An
     * unknown kid re-reads the set at most once a second (a key another instance just created).
     */
    verificationKey(kid: string | undefined): VerificationKey | undefined {
      const key = verification.get(kid ?? hsKid);
      if (key || kid === undefined || Date.now() - loadedAt < RELOAD_AFTER_MS) return key;
      return load() instanceof Promise ? undefined : verification.get(kid);
    },

    /** The current key of `alg`, generated (and stored) on first need. */
    async signingKey(alg: JwtAlg): Promise<SigningKey> {
      reloadIfStale();
      if (alg === "HS256") return { kid: hsKid, alg, key: settings.hs256Secret };
      let row = current.get(alg);
      if (!row) {
        const fresh = await newKeyRow(alg);
        // Another process may have created one meanwhile: the partial unique index keeps one current key per alg.
        await db.insert(signingKeys).values(fresh).onConflictDoNothing();
        await run(db, loading);
        row = current.get(alg)!;
      }
      let key = signers.get(row.kid);
      if (!key) {
        key = importJWK(row.privateJwk as JWK, alg) as Promise<CryptoKey>;
        signers.set(row.kid, key);
      }
      return { kid: row.kid, alg, key: await key };
    },

    /** The public keys that may still have live tokens (RFC 7517 JWK Set); empty when nothing is asymmetric. */
    jwks(): { keys: PublicJwk[] } {
      reloadIfStale();
      return jwks;
    },

    /** Re-reads the key set now (after a rotation through this process's admin API). */
    reload: async () => run(db, loading),

    ready,
  };
}

export type KeyRing = ReturnType<typeof createKeyRing>;
