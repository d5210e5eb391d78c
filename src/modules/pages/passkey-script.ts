/**
 * A Bun macro (imported `with { type: "macro" }`): bundles browser/passkey.ts with @simplewebauthn/browser when
 * the server is built, so the binary carries the script as a string; nothing is fetched from a CDN or at run time.
 * (Bun.build cannot run inside a macro: the bundler waits for it. So the CLI bundles, in a child process.)
 */
export function bundlePasskeyScript(): string {
  const built = Bun.spawnSync([process.execPath, "build", `${import.meta.dir}/browser/passkey.ts`, "--target=browser", "--format=iife", "--minify"]);
  if (built.exitCode !== 0) throw new Error(`passkey.js did not build: ${built.stderr.toString()}`);
  return built.stdout.toString();
}
