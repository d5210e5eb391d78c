import { apiErrors, OAuthError, validationFailed } from "../errors";

/**
 * Route-level `parse` declarations. parseBody (the global parser) does the work and runs first; these only tell
 * the OpenAPI generator which content types a route takes (it lists none for a function parser).
 */
export const JSON_BODY = "json" as const;
export const JSON_OR_FORM_BODY: ["json", "urlencoded"] = ["json", "urlencoded"];

/** Largest request body accepted, checked before it is read in full where Content-Length allows. */
export const MAX_BODY_BYTES = 64 * 1024;

// The rest of the body is never read, so the connection cannot be reused: tell the client to close it.
const tooLarge = () =>
  apiErrors.payload_too_large(`The request body exceeds ${MAX_BODY_BYTES} bytes.`, undefined, { connection: "close" });

/**
 * Parses a request body as JSON, or, for the OAuth2 token endpoint, as a form (RFC 6749 §4.3.2).
 * Other APIs take JSON only: a cross-site HTML form cannot send it without a CORS preflight.
 */
export async function parseBody(request: Request, contentType: string, allowForm: boolean): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const bytes = await readLimited(request);
  if (bytes.byteLength === 0) return {};
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  const text = new TextDecoder().decode(bytes);
  if (type === "application/json" || type.endsWith("+json")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // The token endpoint speaks RFC 6749 errors.
      if (allowForm) throw new OAuthError("invalid_request", "The request body is not valid JSON.");
      throw apiErrors.invalid_json("The request body is not valid JSON.");
    }
    // Validation walks the parsed value recursively: a body nested thousands of levels deep would overflow the
    // stack there (a 500), so depth is bounded here, on the text, before anything walks it.
    if (nestingDepth(text) > MAX_JSON_DEPTH) {
      const message = `Nested deeper than ${MAX_JSON_DEPTH} levels.`;
      if (allowForm) throw new OAuthError("invalid_request", `The request body is ${message.toLowerCase()}`);
      throw validationFailed([{ field: "body", message }]);
    }
    // Every body this API takes is an object: an array, a string or null would slip past an all-optional schema.
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      if (allowForm) throw new OAuthError("invalid_request", "The request body must be a JSON object.");
      throw validationFailed([{ field: "body", message: "Must be a JSON object." }]);
    }
    return parsed;
  }
  if (allowForm && type === "application/x-www-form-urlencoded") return formFields(text);
  throw apiErrors.unsupported_media_type(`Send the body as application/json${allowForm ? " or application/x-www-form-urlencoded" : ""}.`,
  );
}

/**
 * A form's fields; a name given twice keeps all its values (a list), so that no route silently takes one of them:
 * OAuth refuses repeated parameters (RFC 6749 §3.1, §3.2), and a schema expecting text refuses a list.
 */
function formFields(text: string): Record<string, string | string[]> {
  // A Map, then own properties: a field named __proto__ stays a field.
  const fields = new Map<string, string | string[]>();
  for (const [name, value] of new URLSearchParams(text)) {
    const known = fields.get(name);
    fields.set(name, known === undefined ? value : [...(Array.isArray(known) ? known : [known]), value]);
  }
  return Object.fromEntries(fields);
}

/** Deepest nesting of arrays and objects a JSON body may have; the API's own bodies need three. */
export const MAX_JSON_DEPTH = 32;

/** The deepest nesting of `[` and `{` in JSON text (brackets inside strings do not count); one linear pass. */
function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** Reads the body, stopping as soon as it passes the limit (a chunked body has no Content-Length to trust). */
async function readLimited(request: Request): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
