import { accessSync, closeSync, constants, existsSync, fchownSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, realpathSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { type Config } from "./config";
import { ConfigError } from "./errors";
import { JWT_SECRET_FILE } from "./secrets";

/**
 * Started as root with PUID set (the image sets PUID=1000 PGID=1000), Latchkey becomes PUID:PGID before it opens
 * the database or listens; without PUID it stays root (main says so), since a default uid would hand the secrets to
 * whoever that uid is on the host (issue 22). Started as any other user (`docker run --user`, Kubernetes
 * runAsNonRoot, systemd) it changes nothing; PUID=0 keeps root (rootless Podman, where root is the host user).
 *
 * The server (`giveDataDir`) first gives DATA_DIR itself and the files Latchkey keeps there, by exact name, to that
 * user: never a walk, never through a link (a local user who swaps a name for a symbolic link gets nothing of
 * root's), and never a folder holding anything else. A CLI command changes no ownership: it only becomes the user,
 * so a `docker exec ... latchkey user add` leaves no root-owned WAL file the server could not write.
 * Returns the user it switched to, or undefined when it stayed as it was.
 */
export function dropPrivileges(config: Config, giveDataDir: boolean): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0 || config.runAs === undefined || config.runAs.uid === 0) return undefined;
  const { uid, gid } = config.runAs;
  const who = `PUID=${uid} PGID=${gid}`;
  if (giveDataDir) giveAway(config, uid, gid, who);
  // Seen as root: the user may not even see it behind a closed folder, which is what the check below reports.
  const dataDirExists = existsSync(config.dataDir);
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
  if (dataDirExists) {
    try {
      accessSync(config.dataDir, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch (error) {
      throw new ConfigError(
        `DATA_DIR=${config.dataDir}: uid ${uid} (${who}) cannot use it (${reason(error)}): ` +
          (giveDataDir
            ? "a folder above it is closed to that user (root's home folder is 0700); choose a DATA_DIR that user can reach, such as /var/lib/latchkey, or unset PUID to run as root"
            : "start the server once with this PUID (it gives DATA_DIR to that user), or unset PUID to run the command as root"),
      );
    }
  }
  return { uid, gid };
}

/**
 * Folders that are never anyone's DATA_DIR: giving one of them to PUID would hand over the system. The list is of
 * exact paths (after resolving links): /data, /srv/latchkey or /var/lib/latchkey are fine.
 */
const SYSTEM_FOLDERS = new Set(
  [
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
    "/usr/bin", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/local", "/usr/local/bin", "/usr/local/lib", "/usr/sbin", "/usr/share",
    "/var/backups", "/var/cache", "/var/lib", "/var/local", "/var/log", "/var/mail", "/var/opt", "/var/spool", "/var/tmp", "/run/user",
  ],
);

/** A file system's own folder at the root of a mounted volume: left as it is, not refused. */
const LOST_AND_FOUND = "lost+found";

/** The names Latchkey creates in DATA_DIR: the generated secret and, when DATABASE_PATH leaves it there, the database. */
function knownNames(config: Config): Set<string> {
  const names = new Set([JWT_SECRET_FILE]);
  if (dirname(config.databasePath) === resolve(config.dataDir)) {
    const database = basename(config.databasePath);
    // The database, its write-ahead log, its shared-memory index and a rollback journal.
    for (const suffix of ["", "-wal", "-shm", "-journal"]) names.add(`${database}${suffix}`);
  }
  return names;
}

/**
 * DATA_DIR and Latchkey's own files in it, to uid:gid. The folder is opened once without following a link, and
 * every name is reached through that open folder (/proc/self/fd/N/name) and opened with O_NOFOLLOW, then changed
 * with fchown: a name swapped for a link, or a folder swapped for another, between the look and the change is
 * refused or changes nothing outside.
 */
function giveAway(config: Config, uid: number, gid: number, who: string): void {
  const dir = config.dataDir;
  const problem = (detail: string) => new ConfigError(`DATA_DIR=${dir} ${detail}`);
  const systemFolder = () => problem(`is a system folder: ${who} would be given it; choose a folder of Latchkey's own, such as /var/lib/latchkey`);
  if (SYSTEM_FOLDERS.has(existsSync(dir) ? realpathSync(dir) : resolve(dir))) throw systemFolder();
  let folder: number;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    folder = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (error) {
    // O_NOFOLLOW with O_DIRECTORY: ENOTDIR for a link (ELOOP without O_DIRECTORY).
    if (lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink()) throw problem("is a symbolic link: set DATA_DIR to the folder it points to");
    throw problem(`cannot be created or opened (${reason(error)})`);
  }
  try {
    const through = `/proc/self/fd/${folder}`;
    // Again on the folder actually opened: a folder above DATA_DIR swapped for a link after the first look.
    if (SYSTEM_FOLDERS.has(readlinkSync(through))) throw systemFolder();
    const known = knownNames(config);
    const names = readdirSync(through);
    const unknown = names.filter((name) => !known.has(name) && name !== LOST_AND_FOUND).sort();
    if (unknown.length > 0)
      throw problem(
        `holds files Latchkey does not know: ${unknown.slice(0, 10).join(", ")}${unknown.length > 10 ? ` and ${unknown.length - 10} more` : ""}; ` +
          `it gives DATA_DIR to ${who}, so DATA_DIR must be a folder of its own: move them out or choose another folder`,
      );
    // Every name is opened and checked before anything changes owner: a refusal leaves everything as it was.
    const files: number[] = [];
    try {
      for (const name of names.filter((entry) => known.has(entry))) {
        try {
          files.push(openSync(`${through}/${name}`, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "ELOOP") throw problem(`holds ${name} as a symbolic link: Latchkey creates it as a plain file; remove the link`);
          throw problem(`holds ${name}, which cannot be opened (${reason(error)})`);
        }
        if (!fstatSync(files.at(-1)!).isFile()) throw problem(`holds ${name}, which is not a plain file: remove it`);
      }
      for (const fd of [folder, ...files]) give(fd, uid, gid);
    } finally {
      for (const fd of files) closeSync(fd);
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw problem(`cannot be given to ${who} (${reason(error)}); or start as that user (--user ${uid}:${gid})`);
  } finally {
    closeSync(folder);
  }
}

/** fchown, only when someone else owns it. */
function give(fd: number, uid: number, gid: number): void {
  const stat = fstatSync(fd);
  if (stat.uid !== uid || stat.gid !== gid) fchownSync(fd, uid, gid);
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
