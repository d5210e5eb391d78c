import { t } from "elysia";
import { validationFailed } from "../errors";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

/**
 * `limit` as a query string, parsed here rather than by a `t.Integer` query schema: in a `bun build --minify`
 * binary Elysia's query coercion lets `t.Integer({ minimum, maximum })` through unchecked and as a string
 * (limit=0 arrives as "0"), while the same app run from source answers 422.
 */
export const PageLimitQuery = t.Optional(
  t.String({ maxLength: 3, description: `Page size from 1 to ${MAX_PAGE_SIZE}; default ${DEFAULT_PAGE_SIZE}` }),
);

export function pageLimit(raw: string | undefined): number {
  if (raw === undefined || raw === "") return DEFAULT_PAGE_SIZE;
  const value = /^\d{1,3}$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= 1 && value <= MAX_PAGE_SIZE))
    throw validationFailed([{ field: "limit", message: `Must be a whole number from 1 to ${MAX_PAGE_SIZE}.` }]);
  return value;
}
