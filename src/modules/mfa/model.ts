import { t } from "elysia";
import { JsonInteger } from "../../http/schema";

/** Recovery codes made at a time (each single use); a new set replaces the old. */
export const RECOVERY_CODE_COUNT = 10;

export const SecondFactorsBody = t.Object(
  {
    totp: t.Boolean({ description: "A confirmed TOTP authenticator" }),
    recovery_codes_left: JsonInteger({ description: "Unused recovery codes" }),
  },
  { description: "The user's second factors" },
);
export type SecondFactors = typeof SecondFactorsBody.static;
