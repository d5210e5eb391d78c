/** A usage or input error: main prints the message and exits 1 (2 for configuration). */
export class CliError extends Error {}

/** What a subcommand accepts: exactly `positionals` arguments, `--option value`s and bare `--flag`s. */
export interface ArgSpec {
  usage: string;
  positionals: number;
  options?: readonly string[];
  /** Options that may be given several times (`--redirect-uri a --redirect-uri b`): collected in `lists`. */
  repeatable?: readonly string[];
  flags?: readonly string[];
}

export interface ParsedArgs {
  positionals: string[];
  options: Record<string, string>;
  lists: Record<string, string[]>;
  flags: Set<string>;
}

/**
 * Splits `a b --email x --admin` by `spec`. Anything it does not name is a usage error: a misspelt `--admni`
 * must not quietly create an ordinary user.
 */
export function parseArgs(argv: string[], spec: ArgSpec): ParsedArgs {
  const usage = (problem: string) => new CliError(`${problem}; usage: ${spec.usage}`);
  const parsed: ParsedArgs = { positionals: [], options: {}, lists: {}, flags: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      parsed.positionals.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (spec.flags?.includes(name)) {
      if (inline !== undefined) throw usage(`--${name} takes no value`);
      parsed.flags.add(name);
    } else if (spec.repeatable?.includes(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw usage(`--${name} needs a value`);
      (parsed.lists[name] ??= []).push(value);
    } else if (spec.options?.includes(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw usage(`--${name} needs a value`);
      parsed.options[name] = value;
    } else throw usage(`unknown option --${name}`);
  }
  if (parsed.positionals.length !== spec.positionals)
    throw new CliError(`usage: ${spec.usage}`);
  return parsed;
}
