import { Elysia, ValidationError } from "elysia";
import { ApiError, apiErrors, databaseUnavailable, type FieldError } from "../errors";
import { CONTROL_CHARACTER, NO_CONTROL_CHARACTERS } from "./schema";

function fieldErrors(error: ValidationError): FieldError[] {
  // Only paths and messages: Elysia's default body echoes the submitted value, passwords included.
  const seen = new Set<string>();
  const details: FieldError[] = [];
  for (const issue of error.all) {
    const field = ("path" in issue ? issue.path : "").replace(/^\//, "").replaceAll("/", ".") || "body";
    if (seen.has(field)) continue;
    seen.add(field);
    details.push({ field, message: readableMessage(issue as { message: string; value?: unknown; schema?: unknown }) });
  }
  return details;
}

/**
 * TypeBox's messages speak of schemas ("Expected union value"); a person needs to hear that a field is missing,
 * or which values it takes. Neither repeats the submitted value.
 */
function readableMessage(issue: { message: string; value?: unknown; schema?: unknown }): string {
  if (issue.value === undefined) return "Is required.";
  const choices = (issue.schema as { anyOf?: { const?: unknown; pattern?: string }[] }).anyOf;
  // A string refused by PlainText, alone or in a nullable union (http/schema.ts).
  const plain = [issue.schema as { pattern?: string }, ...(choices ?? [])].some((schema) => schema.pattern === NO_CONTROL_CHARACTERS);
  if (plain && typeof issue.value === "string" && CONTROL_CHARACTER.test(issue.value)) return "Must not contain control characters.";
  if (choices?.length && choices.every((choice) => choice.const !== undefined))
    return `Must be one of: ${choices.map((choice) => JSON.stringify(choice.const)).join(", ")}.`;
  return issue.message;
}

/**
 * The methods served at a path, from an app's route table (compiled once, on the first miss): a known path asked
 * with another method is 405 with `Allow` (RFC 9110 §15.5.6), not 404.
 */
export function routeMethods(routes: () => readonly { method: string; path: string }[]) {
  let table: { pattern: RegExp; method: string }[] | undefined;
  const compile = (path: string) =>
    new RegExp(`^${path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/:[^/]+/g, "[^/]+").replace(/\*/g, ".*")}/?$`);
  return (path: string): string[] => {
    table ??= routes().map((route) => ({ pattern: compile(route.path), method: route.method }));
    const methods = new Set(table.filter((route) => route.pattern.test(path)).map((route) => route.method));
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods].sort();
  };
}

/**
 * Turns anything thrown into `{error, message}` JSON with the documented status; never a stack trace.
 * `allowedMethods` (see routeMethods) tells a wrong method on a known path from an unknown path.
 */
export function createErrorHandler(allowedMethods: (path: string) => string[], onDatabaseUnavailable: () => void = () => {}) {
  return new Elysia({ name: "latchkey/errors" }).onError({ as: "global" }, ({ code, error, set, request }) => {
    const cause = code === "PARSE" && (error as Error).cause instanceof ApiError ? (error as Error).cause : error;
    if (cause instanceof ApiError) {
      set.status = cause.status;
      if (cause.headers) Object.assign(set.headers, cause.headers);
      return cause.toBody();
    }
    switch (code) {
      case "VALIDATION":
        set.status = 422;
        return { error: "validation_failed", message: "The request is not valid.", details: fieldErrors(error as ValidationError) };
      case "NOT_FOUND": {
        const allowed = allowedMethods(new URL(request.url).pathname);
        if (allowed.length > 0 && !allowed.includes("ALL")) {
          set.status = 405;
          set.headers.allow = allowed.join(", ");
          return { error: "method_not_allowed", message: `This path answers ${allowed.join(", ")}.` };
        }
        set.status = 404;
        return { error: "not_found", message: "No such route." };
      }
      case "PARSE":
        set.status = 400;
        return { error: "invalid_json", message: "The request body could not be parsed." };
      case "INVALID_COOKIE_SIGNATURE":
      case "INVALID_FILE_TYPE":
        set.status = 400;
        return { error: "bad_request", message: "The request is not valid." };
    }
    const unavailable = databaseUnavailable(error);
    if (unavailable !== undefined) {
      onDatabaseUnavailable();
      // Logged once per failed request, without the query (its parameters may be secrets' hashes).
      console.error(JSON.stringify({ level: "error", event: "database_unavailable", path: new URL(request.url).pathname, error: unavailable }));
      set.status = 503;
      set.headers["retry-after"] = "5";
      return apiErrors.database_unavailable("The database did not answer; try again shortly.").toBody();
    }
    console.error(
      JSON.stringify({ level: "error", event: "internal_error", method: request.method, path: new URL(request.url).pathname, error: String(error), stack: (error as Error)?.stack }),
    );
    set.status = 500;
    return { error: "internal_error", message: "Something went wrong on the server." };
  });
}
