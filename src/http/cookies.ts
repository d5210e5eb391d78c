/** The device cookie (limits/device.ts): set at a successful sign-in, read on the next one (client-ip.ts). */
export const DEVICE_COOKIE = "latchkey_device";

/**
 * A cookie's value from the Cookie header; undefined when absent, or when sent twice (a sibling subdomain can
 * plant a second one for the parent domain: picking either would let it choose who the browser is).
 */
export function readCookie(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  let found: string | undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(";", start);
    if (end === -1) end = header.length;
    const equals = header.indexOf("=", start);
    if (equals !== -1 && equals < end && header.slice(start, equals).trim() === name) {
      if (found !== undefined) return undefined;
      found = header.slice(equals + 1, end).trim();
    }
    start = end + 1;
  }
  return found || undefined;
}
