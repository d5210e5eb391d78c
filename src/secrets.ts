import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Config } from "./config";
import { ConfigError } from "./errors";
import { hmacBase64url, randomToken } from "./lib/crypto";

export interface Secrets {
  /** HS256 key for access JWTs: JWT_SECRET's bytes, so other apps holding JWT_SECRET can verify tokens too. */
  readonly jwtKey: Uint8Array;
  /** Derives a rotated refresh token from its parent; separate from jwtKey (one key, one purpose). */
  readonly refreshRotationKey: Uint8Array;
  /** Signs the pages' per-form CSRF tokens. */
  readonly formKey: Uint8Array;
  /** HMAC key for emailed codes: a 6-digit code under plain SHA-256 would fall to a million guesses offline. */
  readonly codeKey: Uint8Array;
  /** AES-256-GCM key for what must be read back: TOTP secrets and queued mail (whose bodies carry codes). */
  readonly dataKey: Uint8Array;
  /** Signs device cookies (limits/device.ts). */
  readonly deviceKey: Uint8Array;
}

export const JWT_SECRET_FILE = "jwt_secret";

export function deriveSecrets(jwtSecret: string): Secrets {
  return Object.freeze({
    jwtKey: new TextEncoder().encode(jwtSecret),
    refreshRotationKey: Buffer.from(hmacBase64url(jwtSecret, "latchkey/refresh-rotation/v1"), "base64url"),
    formKey: Buffer.from(hmacBase64url(jwtSecret, "latchkey/form-csrf/v1"), "base64url"),
    codeKey: Buffer.from(hmacBase64url(jwtSecret, "latchkey/one-time-codes/v1"), "base64url"),
    dataKey: Buffer.from(hmacBase64url(jwtSecret, "latchkey/data-encryption/v1"), "base64url"),
    deviceKey: Buffer.from(hmacBase64url(jwtSecret, "latchkey/device-cookie/v1"), "base64url"),
  });
}

/** JWT_SECRET if set; otherwise the one generated at first start in DATA_DIR (mode 0600) and reused after. */
export function loadSecrets(config: Config): Secrets {
  if (config.jwtSecret !== undefined) return deriveSecrets(config.jwtSecret);
  const path = join(config.dataDir, JWT_SECRET_FILE);
  try {
    if (!existsSync(path)) {
      mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
      try {
        // "wx": if another process created it meanwhile, keep theirs.
        writeFileSync(path, `${randomToken(32)}\n`, { mode: 0o600, flag: "wx" });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
    }
    chmodSync(path, 0o600);
    return deriveSecrets(readFileSync(path, "utf8").trim());
  } catch (error) {
    throw new ConfigError(
      `DATA_DIR=${config.dataDir}: cannot create or read ${JWT_SECRET_FILE} there (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
}
