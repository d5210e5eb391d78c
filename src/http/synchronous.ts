/**
 * Elysia composes a route `async`, awaiting each hook and the handler, when it guesses that one of them may return
 * a promise: an async function, or any function whose source matches `/(?:return|=>)\s?\S+\(|a(?:sync|wait)/`
 * (`isAsync` in Elysia's compose.ts), which after minification is nearly every function. A bound function shows
 * no source, so a hook or handler passed through here is composed synchronously: no promise and no microtask per
 * request. Only for functions that never return a promise, and that use no context beyond `request` and `set`
 * (Elysia also reads the source to decide which other context fields to build, such as `query` or `server`).
 */
export const synchronous = <F extends (...args: never[]) => unknown>(fn: F): F => fn.bind(undefined) as F;
