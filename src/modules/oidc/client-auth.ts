/** Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3.1). */
import { OAuthError } from "../../errors";
import type { OidcClient, OidcClients } from "./clients";
import type { Params } from "./params";

/**
 * client_secret_basic, client_secret_post, or none for a public client (client_id only). Unknown client, a wrong
 * or missing secret, or a secret from a public client: 401 invalid_client (with a Basic challenge when Basic was
 * tried, RFC 6749 §5.2).
 */
export function clientAuthentication(clients: OidcClients) {
  return async function authenticateClient(request: Request, body: Params): Promise<OidcClient> {
    const header = request.headers.get("authorization");
    let clientId = body.client_id;
    let secret = body.client_secret;
    const basic = header ? /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header.trim()) : null;
    const invalidClient = (message: string) =>
      new OAuthError("invalid_client", message, 401, basic ? { "WWW-Authenticate": 'Basic realm="latchkey"' } : undefined);
    if (basic) {
      if (secret !== undefined) throw new OAuthError("invalid_request", "Use one client authentication method, not two.");
      const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon === -1) throw invalidClient("Malformed Basic credentials.");
      try {
        const fromHeader = decodeURIComponent(decoded.slice(0, colon).replaceAll("+", " "));
        if (clientId !== undefined && clientId !== fromHeader) throw new OAuthError("invalid_request", "client_id differs from the Basic credentials.");
        clientId = fromHeader;
        secret = decodeURIComponent(decoded.slice(colon + 1).replaceAll("+", " "));
      } catch (error) {
        if (error instanceof OAuthError) throw error;
        throw invalidClient("Malformed Basic credentials.");
      }
    }
    const client = clientId ? await clients.find(clientId) : undefined;
    if (!client) throw invalidClient("Unknown client or wrong client secret.");
    if (client.public) {
      if (secret) throw invalidClient("A public client has no secret.");
      return client;
    }
    if (!secret || !clients.secretMatches(client, secret)) throw invalidClient("Unknown client or wrong client secret.");
    return client;
  };
}

export type ClientAuthentication = ReturnType<typeof clientAuthentication>;
