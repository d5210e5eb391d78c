/** A usage or input error: main prints the message and exits 1 (2 for configuration). */
export class CliError extends Error {}

export interface ParsedArgs {
  positionals: string[];
  options: Record<string, string>;
  flags: Set<string>;
}

/** Splits `a b --email x --admin` into positionals, `--name value` options and bare `--flag`s. */
export function parseArgs(argv: string[], valued: readonly string[]): ParsedArgs {
  const parsed: ParsedArgs = { positionals: [], options: {}, flags: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      parsed.positionals.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (!valued.includes(name)) {
      if (inline !== undefined) throw new CliError(`--${name} takes no value`);
      parsed.flags.add(name);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new CliError(`--${name} needs a value`);
    parsed.options[name] = value;
  }
  return parsed;
}
