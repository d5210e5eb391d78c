/** Parses "3600", "10s", "15m", "1h", "30d" into whole seconds; returns undefined for anything else. */
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Ten years: the longest duration accepted anywhere, so that every computed time stays a valid date. */
export const MAX_DURATION_SECONDS = 3650 * 86400;

export function parseDuration(raw: string): number | undefined {
  const match = /^(\d{1,9})([smhd]?)$/.exec(raw.trim());
  if (!match) return undefined;
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2] || "s"]!;
  return seconds <= MAX_DURATION_SECONDS ? seconds : undefined;
}
