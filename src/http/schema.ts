import { t } from "elysia";
import { Type, type IntegerOptions, type StringOptions } from "@sinclair/typebox";

/* Schema pieces every module's routes share (the error catalogue is in http/error-catalogue.ts). */

/** OpenAPI security requirements, naming the schemes declared in modules/system. */
export const SESSION_SECURITY: Record<string, string[]>[] = [{ bearer: [] }, { cookie: [] }];
export const SESSION_OR_KEY_SECURITY: Record<string, string[]>[] = [...SESSION_SECURITY, { apiKey: [] }];

/**
 * A JSON integer and nothing else. Elysia's own `t.Integer` is a number-or-numeric-string union (it is built for
 * query strings and path parameters, elysiajs/elysia#1532), so in a JSON body it lets "3600", "1e3" or "0x100"
 * through and documents `anyOf: [string, integer]` with a default of 0. TypeBox's Integer (Elysia's required peer
 * dependency, the type `t.Integer` wraps) is checked as is: a string is 422 validation_failed.
 */
export const JsonInteger = (options?: IntegerOptions) => Type.Integer(options);

/** A 204 response: no body. modules/system removes the `content` the OpenAPI generator gives a void schema. */
export const NoContent = (description: string) => t.Void({ description });

/**
 * No control characters (C0, DEL and C1): PostgreSQL refuses NUL in text and jsonb (a 500 where SQLite stored it),
 * and no name, address, identifier or scope needs any (issue 22). Written with \u escapes so that TypeBox's
 * checker (a RegExp without the u flag) and OpenAPI readers take the same pattern; errors.ts words its message.
 */
export const NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";

/** The same rule for strings checked in code: OAuth parameters, the token endpoint's form. */
export const CONTROL_CHARACTER = /[\u0000-\u001F\u007F-\u009F]/;

/** Free text (a form's textarea, admin metadata) keeps tabs and line breaks; every other control character is refused. */
export const CONTROL_IN_FREE_TEXT = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;

/**
 * Every string a request hands to the database or stores: the same 422 validation_failed naming the field on
 * both engines. Passwords are the exception: they are only hashed, never stored or queried as text.
 */
export const PlainText = (options?: StringOptions) => Type.String({ ...options, pattern: NO_CONTROL_CHARACTERS });
