import type { TObject } from "@sinclair/typebox";
import { Elysia } from "elysia";
import { validationFailed } from "../errors";

/**
 * `strictBody: Schema` on a management route (admin, keys, password): a body field the schema does not name is
 * 422 validation_failed naming it, instead of being dropped. A typo such as `"scope"` for `"scopes"`, or a
 * `password` sent to PATCH /users/:id, would otherwise answer 200 and do nothing the caller asked for.
 * Put it after `auth`/`admin` in the route's options: macro hooks run in that order, so 401/403 still come first.
 * (Sign-in routes stay lenient, and /token ignores unknown parameters as RFC 6749 §3.2 requires.)
 */
export const strictBodies = new Elysia({ name: "latchkey/strict-body" }).macro({
  strictBody: (schema: TObject) => {
    const known = new Set(Object.keys(schema.properties));
    return {
      transform({ body }: { body: unknown }) {
        if (!body || typeof body !== "object" || Array.isArray(body)) return;
        const unknown = Object.keys(body).filter((field) => !known.has(field));
        if (unknown.length) throw validationFailed(unknown.map((field) => ({ field, message: "Is not a field this route takes." })));
      },
    };
  },
});
