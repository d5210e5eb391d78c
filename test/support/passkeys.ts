import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";

/**
 * A software WebAuthn authenticator for API ceremonies without a browser: an ES256 key pair made with node:crypto,
 * attestation "none" and assertions built by hand (W3C WebAuthn Level 3 §6.1 authenticator data, §6.5.4 none
 * attestation, §6.3.3 assertion signature), the CBOR written by the small encoder below.
 */

type Cbor = number | string | Uint8Array | CborMap | { [key: string]: Cbor };
interface CborMap extends Map<number | string, Cbor> {}

function head(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length]);
  if (length < 0x100) return Buffer.from([(major << 5) | 24, length]);
  if (length < 0x10000) return Buffer.from([(major << 5) | 25, length >> 8, length & 0xff]);
  const out = Buffer.alloc(5);
  out[0] = (major << 5) | 26;
  out.writeUInt32BE(length, 1);
  return out;
}

/** CBOR (RFC 8949) of integers, text, byte strings and maps: all a COSE key and an attestation object need. */
function cbor(value: Cbor): Buffer {
  if (typeof value === "number") return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === "string") {
    const bytes = Buffer.from(value, "utf8");
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([key, item]) => [cbor(key), cbor(item)])]);
}

const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString("base64url");
const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest();

/** Authenticator data flags (§6.1). */
const UP = 0x01;
const UV = 0x04;
const BE = 0x08;
const BS = 0x10;
const AT = 0x40;

export interface CeremonyOverrides {
  /** The origin the client data names (default: the authenticator's). */
  origin?: string;
  /** The RP ID whose hash the authenticator data carries (default: the authenticator's). */
  rpId?: string;
  /** User verification for this ceremony (default: the authenticator's). */
  userVerified?: boolean;
  /** The signature counter to send (default: the next one). */
  counter?: number;
}

export class SoftwareAuthenticator {
  private readonly key: { privateKey: KeyObject; publicKey: KeyObject };
  readonly credentialId = randomBytes(16);
  /** The user handle the registration options gave (base64url), sent back with each assertion. */
  userHandle: string | undefined;
  counter = 0;

  constructor(
    readonly options: { rpId: string; origin: string; userVerified?: boolean; synced?: boolean; aaguid?: string; countsSignatures?: boolean },
  ) {
    this.key = generateKeyPairSync("ec", { namedCurve: "P-256" });
  }

  get id(): string {
    return b64url(this.credentialId);
  }

  /** The authenticator data both ceremonies start with (§6.1): the RP ID's hash, the flags, the signature counter. */
  private authDataHead(overrides: CeremonyOverrides, attested: boolean): Buffer {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(this.nextCounter(overrides.counter));
    return Buffer.concat([sha256(overrides.rpId ?? this.options.rpId), Buffer.from([this.flags(overrides.userVerified ?? this.options.userVerified ?? true, attested)]), counter]);
  }

  /** What a PublicKeyCredential's JSON form says besides its response, the same for both ceremonies. */
  private envelope() {
    return { id: this.id, rawId: this.id, type: "public-key", clientExtensionResults: {}, authenticatorAttachment: "platform" } as const;
  }

  private flags(userVerified: boolean, attested: boolean): number {
    return UP | (userVerified ? UV : 0) | (this.options.synced ? BE | BS : 0) | (attested ? AT : 0);
  }

  private nextCounter(override: number | undefined): number {
    if (override !== undefined) return override;
    if (this.options.countsSignatures === false) return 0;
    return ++this.counter;
  }

  private clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }

  /** navigator.credentials.create() answering `options`, in its JSON form. */
  register(options: { challenge: string; user: { id: string } }, overrides: CeremonyOverrides = {}) {
    this.userHandle = options.user.id;
    const jwk = this.key.publicKey.export({ format: "jwk" });
    // COSE_Key (RFC 9053 §7.1.1): kty EC2, alg ES256, crv P-256, x, y.
    const coseKey = new Map<number, Cbor>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x!, "base64url")],
      [-3, Buffer.from(jwk.y!, "base64url")],
    ]);
    const aaguid = Buffer.from((this.options.aaguid ?? "00000000-0000-0000-0000-000000000000").replace(/-/g, ""), "hex");
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    const authData = Buffer.concat([this.authDataHead(overrides, true), aaguid, idLength, this.credentialId, cbor(coseKey)]);
    const attestationObject = cbor({ fmt: "none", attStmt: {}, authData });
    return {
      ...this.envelope(),
      response: {
        clientDataJSON: b64url(this.clientData("webauthn.create", options.challenge, overrides.origin ?? this.options.origin)),
        attestationObject: b64url(attestationObject),
        transports: ["internal"],
      },
    };
  }

  /** navigator.credentials.get() answering `options`, in its JSON form. */
  assert(options: { challenge: string }, overrides: CeremonyOverrides = {}) {
    const authData = this.authDataHead(overrides, false);
    const clientDataJSON = this.clientData("webauthn.get", options.challenge, overrides.origin ?? this.options.origin);
    // ES256: ECDSA P-256 over authenticatorData || SHA-256(clientDataJSON), DER-encoded (§6.3.3, §6.5.5).
    const signature = sign("sha256", Buffer.concat([authData, sha256(clientDataJSON)]), this.key.privateKey);
    return {
      ...this.envelope(),
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        ...(this.userHandle === undefined ? {} : { userHandle: this.userHandle }),
      },
    };
  }
}
