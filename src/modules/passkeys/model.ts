import { t } from "elysia";
import { JsonInteger, PlainText } from "../../http/schema";

// The JSON forms of PublicKeyCredential (W3C WebAuthn Level 3 §5.1.8, §5.1.9: toJSON()); browsers add members
// over time (publicKey, publicKeyAlgorithm, ...), which are allowed and ignored.
const base64url = (description: string) => t.String({ description: `${description} (base64url)`, maxLength: 16384 });
const credentialFields = {
  id: base64url("The credential id"),
  rawId: base64url("The credential id again"),
  type: t.Literal("public-key"),
  clientExtensionResults: t.Record(t.String(), t.Unknown()),
  authenticatorAttachment: t.Optional(t.String()),
};

export const RegistrationCredential = t.Object(
  {
    ...credentialFields,
    response: t.Object(
      {
        clientDataJSON: base64url("The client data"),
        attestationObject: base64url("The attestation object"),
        transports: t.Optional(t.Array(t.String(), { maxItems: 16 })),
      },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: true, description: "What navigator.credentials.create() answered, as JSON (@simplewebauthn/browser's startRegistration)" },
);

export const AuthenticationCredential = t.Object(
  {
    ...credentialFields,
    response: t.Object(
      {
        clientDataJSON: base64url("The client data"),
        authenticatorData: base64url("The authenticator data"),
        signature: base64url("The signature"),
        userHandle: t.Optional(base64url("The user handle")),
      },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: true, description: "What navigator.credentials.get() answered, as JSON (@simplewebauthn/browser's startAuthentication)" },
);

const PasskeyName = PlainText({ minLength: 1, maxLength: 64, description: "1-64 characters" });

export const RegisterVerifyBody = t.Object({
  credential: RegistrationCredential,
  name: t.Optional(PlainText({ maxLength: 64, description: "Default: the authenticator's name when its AAGUID is known (\"iCloud Keychain\", \"1Password\", ...), else \"Passkey\"" })),
});

export const LoginVerifyBody = t.Object({ credential: AuthenticationCredential });

export const RenameBody = t.Object({ name: PasskeyName });

export const PasskeyParams = t.Object({ id: PlainText({ maxLength: 64 }) });

export const Passkey = t.Object({
  id: t.String(),
  name: t.String(),
  aaguid: t.String({ description: "The authenticator model (all zeros when it does not say)" }),
  backup_eligible: t.Boolean({ description: "A synced passkey (a password manager or platform keychain)" }),
  backed_up: t.Boolean({ description: "The passkey is currently backed up (synced)" }),
  transports: t.Array(t.String()),
  created_at: t.String({ format: "date-time" }),
  last_used_at: t.Nullable(t.String({ format: "date-time" })),
});

export const PasskeyList = t.Object({ passkeys: t.Array(Passkey) });

/** PublicKeyCredentialCreationOptionsJSON / RequestOptionsJSON: hand them to the browser as they are. */
export const CeremonyOptions = t.Object(
  { challenge: t.String({ description: "base64url; the options work once, for 5 minutes" }), timeout: t.Optional(JsonInteger({ description: "Milliseconds the browser may wait" })) },
  { additionalProperties: true, description: "WebAuthn options in their JSON form (W3C WebAuthn Level 3 §5.4, §5.5)" },
);
