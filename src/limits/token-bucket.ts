export interface RateDecision {
  allowed: boolean;
  /** Whole seconds until one more request would be allowed (0 when allowed). */
  retryAfter: number;
}

/**
 * In-memory token buckets, one per key: `capacity` requests at once, refilled at `capacity` per `periodMs`.
 * At `maxKeys`, buckets that have refilled completely are forgotten; if that frees nothing (a flood from that
 * many distinct keys), the oldest tenth goes, so memory stays bounded whatever the traffic.
 */
export function createTokenBuckets(capacity: number, periodMs: number, maxKeys = 100_000) {
  const refillPerMs = capacity / periodMs;
  const buckets = new Map<string, { tokens: number; updatedAt: number }>();

  function sweep(now: number) {
    for (const [key, bucket] of buckets)
      if (bucket.tokens + (now - bucket.updatedAt) * refillPerMs >= capacity) buckets.delete(key);
    if (buckets.size < maxKeys) return;
    // A Map iterates in insertion order: the first keys are the oldest.
    let evict = Math.ceil(maxKeys / 10);
    for (const key of buckets.keys()) {
      if (evict-- === 0) break;
      buckets.delete(key);
    }
  }

  return {
    take(key: string, now = Date.now()): RateDecision {
      const bucket = buckets.get(key);
      const tokens = bucket ? Math.min(capacity, bucket.tokens + (now - bucket.updatedAt) * refillPerMs) : capacity;
      if (tokens < 1) {
        if (bucket) Object.assign(bucket, { tokens, updatedAt: now });
        return { allowed: false, retryAfter: Math.max(1, Math.ceil((1 - tokens) / refillPerMs / 1000)) };
      }
      if (!bucket && buckets.size >= maxKeys) sweep(now);
      buckets.set(key, { tokens: tokens - 1, updatedAt: now });
      return { allowed: true, retryAfter: 0 };
    },

    /** How many keys are remembered (for tests of the bound). */
    size: () => buckets.size,
  };
}
