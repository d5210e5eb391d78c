/**
 * Answers about one user or one secret are never stored by a cache (RFC 9111 §5.2.2.5): every such answer says
 * so through these two. `NO_STORE` for header objects built once, `noStore` for a response's `set.headers`.
 */
export const NO_STORE = { "cache-control": "no-store" } as const;

export function noStore(headers: Record<string, unknown>): void {
  headers["cache-control"] = NO_STORE["cache-control"];
}
