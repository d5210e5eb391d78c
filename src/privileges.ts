import { lstatSync, lchownSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type Config } from "./config";
import { ConfigError } from "./errors";

/**
 * Started as root (a container's default), Latchkey gives DATA_DIR to PUID:PGID and becomes that user before it
 * opens the database or listens: a bind-mounted folder that Docker created root-owned just works, and the server
 * never runs as root. Started as any other user (`docker run --user`, Kubernetes runAsNonRoot, systemd
 * DynamicUser) it changes nothing. PUID=0 keeps root (rootless Podman, where root is the host user).
 * Returns the user it switched to, or undefined when it stayed as it was.
 */
export function dropPrivileges(config: Config): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0 || config.runAs.uid === 0) return undefined;
  const { uid, gid } = config.runAs;
  const who = `PUID=${uid} PGID=${gid}`;
  try {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    giveTree(config.dataDir, uid, gid);
  } catch (error) {
    throw new ConfigError(`DATA_DIR=${config.dataDir}: cannot give it to ${who} (${reason(error)}); or start as that user (--user ${uid}:${gid})`);
  }
  try {
    // Supplementary groups first (root's would otherwise stay), then the group, then the user: after setuid the
    // process may no longer change its groups.
    process.setgroups!([]);
    process.setgid!(gid);
    process.setuid!(uid);
  } catch (error) {
    throw new ConfigError(`${who}: cannot switch to this user (${reason(error)}); or start as that user (--user ${uid}:${gid})`);
  }
  // The switch must be for good: a process that could become root again has dropped nothing.
  if (process.getuid!() !== uid || process.getgid!() !== gid || canBecomeRoot())
    throw new ConfigError(`${who}: the switch to this user did not hold`);
  return { uid, gid };
}

/** chown -R without following symbolic links, touching only what belongs to someone else. */
function giveTree(path: string, uid: number, gid: number): void {
  const stat = lstatSync(path);
  if (stat.uid !== uid || stat.gid !== gid) lchownSync(path, uid, gid);
  if (stat.isDirectory()) for (const entry of readdirSync(path)) giveTree(join(path, entry), uid, gid);
}

function canBecomeRoot(): boolean {
  try {
    process.setuid!(0);
    return true;
  } catch {
    return false;
  }
}

function reason(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}
