import Bowser from "bowser";

/** One column: its heading (also each cell's label on a phone) and how its cells lay out. */
export interface Column {
  label: string;
  /** `wrap`: free text that may wrap between words (never inside one); `end`: actions, to the right. */
  kind?: "wrap" | "end";
}

/**
 * The one table of every page. Cells stay on one line (dates, addresses, buttons); a long value is cut with an
 * ellipsis (`Cut`, the full value in its title). On a phone each row becomes a block of labelled lines: every
 * cell carries its column's heading in data-label, which the stylesheet shows before the value.
 */
export function DataTable<Row>(props: { columns: Column[]; rows: Row[]; cells: (row: Row) => JSX.Element[]; empty?: string; label?: string }) {
  if (!props.rows.length) return props.empty ? <p class="muted" safe>{props.empty}</p> : "";
  return (
    <div class="table-box">
      <table aria-label={props.label}>
        <thead>
          <tr>
            {props.columns.map((column) => (
              <th scope="col" safe>
                {column.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row) => (
            <tr>
              {props.cells(row).map((cell, index) => {
                const column = props.columns[index]!;
                // Our own components' markup.
                const safeCell = cell;
                return (
                  <td data-label={column.label || undefined} class={column.kind}>
                    {safeCell}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A value on one line, cut with an ellipsis past the column's width; the whole value in its title. */
export function Cut({ text, class: extra }: { text: string; class?: string }) {
  return (
    <span class={extra ? `cut ${extra}` : "cut"} title={text} safe>
      {text}
    </span>
  );
}

/** The exact time as people read it, in UTC (no script to localise it). */
export const exactTime = (date: Date | string) => new Date(date).toISOString().slice(0, 16).replace("T", " ") + " UTC";

const UNITS: [number, string][] = [
  [365 * 86400, "year"],
  [30 * 86400, "month"],
  [7 * 86400, "week"],
  [86400, "day"],
  [3600, "hour"],
  [60, "minute"],
];

/** "3 minutes ago", "in 2 days", "just now": how long from `now`. */
export function relativeTime(date: Date | string, now = Date.now()): string {
  const seconds = Math.round((new Date(date).getTime() - now) / 1000);
  const span = Math.abs(seconds);
  if (span < 60) return "just now";
  const [size, unit] = UNITS.find(([size]) => span >= size)!;
  const count = Math.floor(span / size);
  const amount = `${count} ${unit}${count === 1 ? "" : "s"}`;
  return seconds < 0 ? `${amount} ago` : `in ${amount}`;
}

/** A time as "3 minutes ago", the exact time on hover (title) and in the datetime attribute; `never` when none. */
export function When({ date, never = "never" }: { date: Date | string | null | undefined; never?: string }) {
  if (!date) return <span class="muted" safe>{never}</span>;
  const iso = new Date(date).toISOString();
  return (
    <time datetime={iso} title={exactTime(date)} safe>
      {relativeTime(date)}
    </time>
  );
}

/** "Chrome on Linux", "Safari on iOS", from a User-Agent header (bowser); "Unknown device" when it says nothing. */
export function deviceName(userAgent: string | null | undefined): string {
  if (!userAgent) return "Unknown device";
  const parsed = Bowser.parse(userAgent.slice(0, 512));
  const browser = parsed.browser.name?.replace(/^Chrome Headless$/, "Chrome");
  const os = parsed.os.name;
  if (browser && os) return `${browser} on ${os}`;
  if (browser || os) return (browser || os)!;
  // A program, not a browser (curl/8.5, okhttp): its first product token.
  const product = /^[\w.-]+/.exec(userAgent)?.[0];
  return product ? product.slice(0, 40) : "Unknown device";
}

/** A device, readable, the raw User-Agent in its title. */
export function Device({ userAgent }: { userAgent: string | null | undefined }) {
  return (
    <span class="cut" title={userAgent ?? undefined} safe>
      {deviceName(userAgent)}
    </span>
  );
}
