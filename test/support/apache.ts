/**
 * Apache httpd with Debian's mod_auth_openidc, as a real relying party on loopback: its own config folder, run in
 * the foreground (`apache2 -f <conf> -DFOREGROUND`). As root it serves as nobody:nogroup (httpd refuses to serve
 * as root), so its files are made world-readable. The config is README's worked example with the test's ports.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { atSuiteEnd } from "./suite-end";

export const APACHE = process.env.APACHE_PATH ?? "/usr/sbin/apache2";
const MODULES = "/usr/lib/apache2/modules";

export interface ApacheRelyingParty {
  /** http://localhost:<port>: another host than Latchkey's 127.0.0.1 to the browser, so their cookies stay apart. */
  url: string;
  /** The redirect URI registered with Latchkey; with ?logout=backchannel, the back-channel logout URI. */
  redirectUri: string;
  /** Apache's error log (mod_auth_openidc logs there). */
  log(): string;
  stop(): Promise<void>;
}

const running = new Set<Bun.Subprocess>();
atSuiteEnd(() => {
  for (const proc of running) proc.kill("SIGKILL");
});

/** The protected page: who signed in and their claims, as mod_auth_openidc passes them to the app (SSI reads them). */
const PROTECTED_PAGE = `<!doctype html><title>Apache</title>
<h1 id="user"><!--#echo var="REMOTE_USER" --></h1>
<p id="email"><!--#echo var="OIDC_CLAIM_email" --></p>
<p id="groups"><!--#echo var="OIDC_CLAIM_groups" --></p>
`;

export async function startApache(options: { issuer: string; clientId: string; clientSecret: string; port: number }): Promise<ApacheRelyingParty> {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-apache-"));
  const url = `http://localhost:${options.port}`;
  const redirectUri = `${url}/protected/redirect_uri`;
  mkdirSync(join(dir, "htdocs/protected"), { recursive: true });
  writeFileSync(join(dir, "htdocs/protected/index.shtml"), PROTECTED_PAGE);
  writeFileSync(join(dir, "htdocs/signed-out.html"), "<!doctype html><title>Signed out</title><h1>Signed out of Apache</h1>\n");
  const root = process.getuid?.() === 0;
  for (const path of [dir, join(dir, "htdocs"), join(dir, "htdocs/protected")]) chmodSync(path, 0o755);
  const config = [
    `ServerRoot "${dir}"`,
    "ServerName localhost",
    `Listen 127.0.0.1:${options.port}`,
    `PidFile "${dir}/httpd.pid"`,
    `DefaultRuntimeDir "${dir}"`,
    `ErrorLog "${dir}/error.log"`,
    "LogLevel warn auth_openidc:info",
    ...["mpm_event", "authz_core", "authz_user", "authn_core", "mime", "include", "auth_openidc"].map((name) => `LoadModule ${name}_module ${MODULES}/mod_${name}.so`),
    ...(root ? ["User nobody", "Group nogroup"] : []),
    `DocumentRoot "${dir}/htdocs"`,
    "TypesConfig /dev/null",
    "AddType text/html .shtml .html",
    "AddOutputFilter INCLUDES .shtml",
    `<Directory "${dir}/htdocs">`,
    "  Options +Includes",
    "  Require all granted",
    "</Directory>",
    "",
    "# The relying party (README: OpenID Connect, Apache mod_auth_openidc).",
    `OIDCProviderMetadataURL ${options.issuer}/.well-known/openid-configuration`,
    `OIDCClientID ${options.clientId}`,
    `OIDCClientSecret ${options.clientSecret}`,
    `OIDCRedirectURI ${redirectUri}`,
    `OIDCCryptoPassphrase ${crypto.randomUUID()}`,
    'OIDCScope "openid profile email groups"',
    "OIDCRemoteUserClaim preferred_username",
    "<Location /protected>",
    "  AuthType openid-connect",
    "  Require valid-user",
    "</Location>",
    "",
  ].join("\n");
  writeFileSync(join(dir, "httpd.conf"), config);
  const proc = Bun.spawn([APACHE, "-f", join(dir, "httpd.conf"), "-DFOREGROUND"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  running.add(proc);
  const log = () => {
    try {
      return readFileSync(join(dir, "error.log"), "utf8");
    } catch {
      return "";
    }
  };
  // Ready once it answers; if it exits first, its output says why.
  const exited = proc.exited.then(async (code) => {
    throw new Error(`apache2 exited with ${code}: ${await new Response(proc.stderr).text()}\n${log()}`);
  });
  exited.catch(() => {});
  const answers = async () => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await fetch(`http://127.0.0.1:${options.port}/signed-out.html`);
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`apache2 did not answer within 30 s (${(error as Error).message}):\n${log()}`);
        await Bun.sleep(50);
      }
    }
  };
  await Promise.race([answers(), exited]);
  return {
    url,
    redirectUri,
    log,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
      running.delete(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
