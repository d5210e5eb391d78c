import { tokenResponseHeaders, oauthTokenBody, readAuthorization, readBodyRefreshToken, type Transport } from "./transport";

/** TOKEN_DELIVERY=bearer: `Authorization: Bearer` in, the tokens in the JSON body out; the client stores them. */
export function createBearerTransport(): Transport {
  return {
    readAccessToken: (request) => readAuthorization(request) ?? undefined,
    readRefreshToken: (_request, body) => readBodyRefreshToken(body),
    respond(out, tokens) {
      tokenResponseHeaders(out.set.headers);
      return { ...oauthTokenBody(tokens), user: tokens.user };
    },
    clear(out) {
      delete out.set.headers["token"];
    },
    refuseCrossSiteSignIn() {},
  };
}
