export interface HashParams {
  readonly memoryCost: number;
  readonly timeCost: number;
}

/** Longest accepted password, in UTF-8 bytes: bounds the hashing work an attacker can ask for. */
export const PASSWORD_MAX_BYTES = 1024;

/**
 * The size rule, on the password exactly as sent (before normalising, so a huge input is never normalised),
 * and the same everywhere a password is set or checked: one that could be set can always be typed to sign in.
 */
export function passwordTooLong(password: string): boolean {
  return password.length > PASSWORD_MAX_BYTES || Buffer.byteLength(password) > PASSWORD_MAX_BYTES;
}

/**
 * NFKC so that the same password typed on another keyboard or OS still matches (NIST SP 800-63B §5.1.1.2);
 * never case-folded or truncated.
 */
export function normalizePassword(password: string): string {
  return password.normalize("NFKC");
}

/** argon2id through Bun's async API, which hashes off the event loop. */
export function createPasswordHasher(params: HashParams) {
  const options = { algorithm: "argon2id", memoryCost: params.memoryCost, timeCost: params.timeCost } as const;
  let dummyHash: Promise<string> | undefined;
  const prepareDummyHash = () => (dummyHash ??= Bun.password.hash(crypto.randomUUID(), options));
  return {
    /** Computes the dummy hash ahead of the first unknown-name login, which would otherwise take longer. */
    prepareDummyHash,
    /** True when a stored hash is not argon2id or was made with less memory or time than configured now. */
    needsRehash(hash: string): boolean {
      const match = /^\$argon2id\$v=\d+\$m=(\d+),t=(\d+),p=\d+\$/.exec(hash);
      return !match || Number(match[1]) < params.memoryCost || Number(match[2]) < params.timeCost;
    },
    hash: (password: string) => Bun.password.hash(normalizePassword(password), options),
    verify: async (password: string, hash: string) => {
      try {
        return await Bun.password.verify(normalizePassword(password), hash);
      } catch {
        return false;
      }
    },
    /**
     * Verifies against a hash of the same cost when the account does not exist, so that an unknown name
     * takes as long as a wrong password (OWASP ASVS V2.2 / Authentication Cheat Sheet: no enumeration by timing).
     */
    burn: async (password: string) => {
      await Bun.password.verify(normalizePassword(password), await prepareDummyHash());
    },
  };
}

export type PasswordHasher = ReturnType<typeof createPasswordHasher>;
