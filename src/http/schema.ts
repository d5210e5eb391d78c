import { t } from "elysia";
import { Type, type IntegerOptions } from "@sinclair/typebox";

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
