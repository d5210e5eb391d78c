/** "a, b,,c" → ["a", "b", "c"]: a comma-separated field (roles on the admin forms and the CLI), trimmed, empties dropped. */
export const commaList = (raw: string | undefined) =>
  (raw ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
