import pkg from "../package.json";

export const VERSION: string = pkg.version;

/** Set by `make release` (`bun build --define`) to the --target it compiled for. */
declare const LATCHKEY_BUILD_TARGET: string | undefined;
/** What `latchkey --version` names: the release target, or the platform of a local `make build`. */
export const BUILD_TARGET: string =
  typeof LATCHKEY_BUILD_TARGET === "string" ? LATCHKEY_BUILD_TARGET : `bun-${process.platform}-${process.arch}`;
