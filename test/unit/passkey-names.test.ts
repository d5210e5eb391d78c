/** A new passkey's default name from its authenticator's AAGUID (issue 25): the well-known ones, else "Passkey". */
import { expect, test } from "bun:test";
import { authenticatorName } from "../../src/modules/passkeys/authenticators";

test("the well-known authenticators are named as their owners know them", () => {
  const known: [string, string][] = [
    ["fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "iCloud Keychain"],
    ["ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", "Google Password Manager"],
    ["bada5566-a7aa-401f-bd96-45619a55120d", "1Password"],
    ["d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"],
    ["531126d6-e717-415c-9320-3d9aa6981239", "Dashlane"],
    ["0ea242b4-43c4-4a1b-8b17-dd6d0b6baec6", "Keeper"],
    ["fdb141b2-5d84-443e-8a35-4698c205a502", "KeePassXC"],
    ["08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"],
    ["9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "Windows Hello"],
    ["adce0002-35bc-c60a-648b-0b25f1f05503", "Chrome on Mac"],
    ["53414d53-554e-4700-0000-000000000000", "Samsung Pass"],
    ["ee882879-721c-4913-9775-3dfcce97072a", "YubiKey 5"],
    ["2fc0579f-8113-47ea-b116-bb5a8db9202a", "YubiKey 5"],
    ["a25342c0-3cdc-4414-8e46-f4807fca511c", "YubiKey 5"],
  ];
  expect(known.map(([aaguid]) => [aaguid, authenticatorName(aaguid)])).toEqual(known);
});

test("an AAGUID is matched whatever its case", () => {
  expect(authenticatorName("FBFC3007-154E-4ECC-8C0B-6E020557D7BD")).toBe("iCloud Keychain");
});

test("an authenticator that does not say (all zeros), an unknown one, or nonsense: \"Passkey\"", () => {
  for (const aaguid of ["00000000-0000-0000-0000-000000000000", "01020304-0506-0708-0102-030405060708", "", "constructor", "__proto__", "toString"])
    expect({ aaguid, name: authenticatorName(aaguid) }).toEqual({ aaguid, name: "Passkey" });
});
