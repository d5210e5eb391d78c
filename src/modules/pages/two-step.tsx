/**
 * The pieces of two-step sign-in shared by the account page and the sign-in's enrolment step (MFA_REQUIRED_ROLES):
 * the authenticator's QR code and key, and the recovery codes.
 */

/** The key in groups of four (as authenticator apps show it), for typing by hand. */
export const keyGroups = (secret: string) => secret.match(/.{1,4}/g) ?? [];

/** A large, centred QR code, and the key in groups of four under "Can't scan?" (open without script: <details>). */
export function AuthenticatorSetup({ secret, qrSvg }: { secret: string; qrSvg: string }) {
  return (
    <>
      <ol>
        <li>Open an authenticator app on your phone (for example Google Authenticator, Microsoft Authenticator, 2FAS or Aegis).</li>
        <li>Scan this QR code with it.</li>
        <li>Type the 6-digit code the app shows.</li>
      </ol>
      <div class="qr">
        <img alt="QR code to scan with your authenticator app" width="240" height="240" src={`data:image/svg+xml;base64,${Buffer.from(qrSvg).toString("base64")}`} />
      </div>
      <details>
        <summary>Can't scan? Type the key instead</summary>
        <p>In the app, choose to enter a setup key, and type:</p>
        <p class="key-groups" id="totp-secret" aria-label={`Setup key: ${keyGroups(secret).join(" ")}`}>
          {keyGroups(secret).map((group) => (
            <span safe>{group}</span>
          ))}
        </p>
        <p class="muted">Time-based, 6 digits, every 30 seconds.</p>
      </details>
    </>
  );
}

/** The recovery codes as a text file, for the download link (a data: URL: no script, nothing kept on the server). */
export function recoveryFile(appName: string, username: string | undefined, codes: string[]): string {
  const text = [`${appName} recovery codes${username ? ` for ${username}` : ""}`, "Each code works once, if you lose your authenticator.", "", ...codes, ""].join("\n");
  return `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`;
}

/** The recovery codes: a grid without bullets, a download, and "I have saved them". */
export function RecoveryCodes(props: { appName: string; username?: string; codes: string[]; next: string }) {
  return (
    <>
      <h1>Save your recovery codes</h1>
      <p>If you lose your phone, each of these codes lets you sign in once instead of the authenticator. Keep them somewhere safe, away from your phone: they are shown only now.</p>
      <ul class="codes" id="recovery-codes" aria-label="Recovery codes">
        {props.codes.map((code) => (
          <li safe>{code}</li>
        ))}
      </ul>
      <p class="actions">
        <a class="button secondary" href={recoveryFile(props.appName, props.username, props.codes)} download={`${props.appName.replace(/[^\w.-]+/g, "-")}-recovery-codes.txt`}>
          Download as a text file
        </a>
        <a class="button" href={props.next}>
          I have saved them
        </a>
      </p>
    </>
  );
}
