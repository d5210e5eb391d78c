/** The device cookie (limits/device.ts): set at a successful sign-in, read on the next one (client-ip.ts). */
export const DEVICE_COOKIE = "latchkey_device";

/**
 * A cookie's value from the Cookie header; undefined when absent, or when sent twice (a sibling subdomain can
 * plant a second one for the parent domain or a longer path beside ours: picking either would let it choose who
 * the browser is). A credential cookie passes `duplicate`, so that a second copy is refused with its error rather
 * than read as no cookie.
 */
export function readCookie(header: string | null, name: string, duplicate?: () => Error): string | undefined {
  if (!header) return undefined;
  let found: string | undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(";", start);
    if (end === -1) end = header.length;
    const equals = header.indexOf("=", start);
    if (equals !== -1 && equals < end && header.slice(start, equals).trim() === name) {
      if (found !== undefined) {
        if (duplicate) throw duplicate();
        return undefined;
      }
      found = header.slice(equals + 1, end).trim();
    }
    start = end + 1;
  }
  return found || undefined;
}
