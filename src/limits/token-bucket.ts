export interface RateDecision {
  allowed: boolean;
  /** Whole seconds until one more request would be allowed (0 when allowed). */
  retryAfter: number;
}

/**
 * In-memory token buckets, one per key: `capacity` requests at once, refilled at `capacity` per `periodMs`.
 * Buckets that have refilled completely are forgotten, so memory follows the active keys only.
 */
export function createTokenBuckets(capacity: number, periodMs: number, maxKeys = 100_000) {
  const refillPerMs = capacity / periodMs;
  const buckets = new Map<string, { tokens: number; updatedAt: number }>();

  function sweep(now: number) {
    for (const [key, bucket] of buckets)
      if (bucket.tokens + (now - bucket.updatedAt) * refillPerMs >= capacity) buckets.delete(key);
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
  };
}
