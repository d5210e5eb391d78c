import { tokenResponseHeaders, oauthTokenBody, readAuthorization, readBodyRefreshToken, type Transport } from "./transport";

/**
 * TOKEN_DELIVERY=header: the access token travels in a `Token` header both ways (or `Authorization: Bearer` in),
 * and every authenticated answer carries a fresh one (a sliding session for clients that cannot refresh).
 */
export function createHeaderTransport(): Transport {
  return {
    readAccessToken(request) {
      const authorization = readAuthorization(request);
      if (authorization !== null) return authorization;
      const token = request.headers.get("token");
      return token ? { token, viaCookie: false } : undefined;
    },
    readRefreshToken: (_request, body) => readBodyRefreshToken(body),
    respond(out, tokens) {
      tokenResponseHeaders(out.set.headers);
      out.set.headers["token"] = tokens.access.token;
      return { ...oauthTokenBody(tokens), user: tokens.user };
    },
    clear(out) {
      delete out.set.headers["token"];
    },
    slide(headers, access) {
      tokenResponseHeaders(headers);
      headers["token"] = access.token;
    },
    refuseCrossSiteSignIn() {},
  };
}
