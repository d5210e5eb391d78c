/** Parameters of OAuth requests (queries and forms), shared by the browser endpoints and the token-side ones. */

export type Params = Record<string, string | undefined>;

/** Only string values of a query or form (a repeated parameter is an error: OAuth 2.0 §3.1). */
export function paramsOf(...sources: unknown[]): Params | undefined {
  const params: Params = {};
  for (const source of sources) {
    if (!source || typeof source !== "object") continue;
    for (const [name, value] of Object.entries(source)) {
      if (typeof value !== "string") return undefined;
      params[name] = value;
    }
  }
  return params;
}
