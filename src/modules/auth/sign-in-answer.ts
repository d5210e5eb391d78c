import type { Delivery } from "../../delivery";
import type { IssuedTokens, TokenUser, TokenWriter } from "../../delivery/transport";
import { noStore } from "../../http/cache";
import type { LoginChallenge } from "./second-step";

/**
 * What a sign-in route answers, whatever proved the first factor (a password, a passkey): 202 with the second
 * step's challenge (never cached), or the delivery mode's token response.
 */
export function signInAnswer<User extends TokenUser>(
  delivery: Delivery,
  out: TokenWriter & { set: { status?: number | string } },
  result: IssuedTokens<User> | LoginChallenge,
) {
  if ("challenge_id" in result) {
    out.set.status = 202;
    noStore(out.set.headers);
    return result;
  }
  return delivery.respond(out, result);
}
