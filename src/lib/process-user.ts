import { readFileSync } from "node:fs";

/**
 * The user this process runs as, for messages about files it cannot read or write: "root", or "uid 1000 (debian)"
 * with the name from /etc/passwd when it has one. A message that says who could not read a file says what to fix.
 */
export function processUser(): string {
  const uid = process.getuid?.();
  if (uid === undefined) return "this user";
  if (uid === 0) return "root";
  let name: string | undefined;
  try {
    name = readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .map((line) => line.split(":"))
      .find((fields) => fields[2] === String(uid))?.[0];
  } catch {
    name = undefined;
  }
  return name ? `uid ${uid} (${name})` : `uid ${uid}`;
}

/**
 * Why a file could not be read, and the fix: a file this user may not read is named with the user, so a root-owned
 * 0600 file given to a server running as uid 1000 says so instead of a bare EACCES.
 */
export function unreadable(path: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "does not exist";
  if (code === "EACCES" || code === "EPERM")
    return `cannot be read by ${processUser()}, the user Latchkey runs as: make it readable by that user (chown or chmod ${path}), or keep it where that user can reach it`;
  return `cannot be read (${code ?? (error as Error).message})`;
}
