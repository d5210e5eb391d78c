/** A value now or later: the data layer answers at once on SQLite and later on PostgreSQL (db/atomic.ts). */
export type Pending<T> = T | Promise<T>;

/** `then` that stays synchronous when the value is already there: the hot paths keep SQLite's answer synchronous. */
export function whenReady<T, U>(value: Pending<T>, next: (value: T) => U): Pending<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}
