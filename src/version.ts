import pkg from "../package.json";

export const VERSION: string = pkg.version;

/** Set by `make release` (`bun build --define`) to the --target it compiled for. */
declare const LATCHKEY_BUILD_TARGET: string | undefined;
/** What `latchkey --version` names: the release target, or the platform of a local `make build`. */
export const BUILD_TARGET: string =
  typeof LATCHKEY_BUILD_TARGET === "string" ? LATCHKEY_BUILD_TARGET : `bun-${process.platform}-${process.arch}`;

/** Set by the Makefile (`bun build --define`) to `git rev-parse --short HEAD`, or "unknown" outside a git checkout. */
declare const LATCHKEY_COMMIT: string | undefined;
/** The commit this binary was built from: `latchkey --version` and /health name it, so a report says which build. */
export const COMMIT: string = typeof LATCHKEY_COMMIT === "string" && /^[0-9a-f]{4,40}$/.test(LATCHKEY_COMMIT) ? LATCHKEY_COMMIT : "unknown";
