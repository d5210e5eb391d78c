import { parseArgs as parseNodeArgs } from "node:util";

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

type NodeOptions = Record<string, { type: "string" | "boolean"; multiple?: boolean }>;

/**
 * Splits `a b --email x --admin` by `spec` with node:util's parseArgs in strict mode: anything the spec does not
 * name is a usage error (a misspelt `--admni` must not quietly create an ordinary user), and so is an option
 * whose value is missing or looks like another option (`--email --admin`). Node's messages are reworded to
 * name the option and end with the command's usage.
 */
export function parseArgs(argv: string[], spec: ArgSpec): ParsedArgs {
  const options: NodeOptions = {};
  for (const name of spec.options ?? []) options[name] = { type: "string" };
  for (const name of spec.repeatable ?? []) options[name] = { type: "string", multiple: true };
  for (const name of spec.flags ?? []) options[name] = { type: "boolean" };
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  try {
    parsed = parseNodeArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new CliError(`${usageProblem(error)}; usage: ${spec.usage}`);
  }
  if (parsed.positionals.length !== spec.positionals) throw new CliError(`usage: ${spec.usage}`);
  const result: ParsedArgs = { positionals: parsed.positionals, options: {}, lists: {}, flags: new Set() };
  for (const [name, value] of Object.entries(parsed.values)) {
    if (value === true) result.flags.add(name);
    else if (Array.isArray(value)) result.lists[name] = value.filter((item): item is string => typeof item === "string");
    else if (typeof value === "string") result.options[name] = value;
  }
  return result;
}

/** Node's parse error as one short phrase about the option it names. */
function usageProblem(error: unknown): string {
  const { code, message } = error as { code?: string; message: string };
  const option = /'(-[^' ]+)/.exec(message)?.[1] ?? "an option";
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option ${option}`;
  if (message.includes("does not take an argument")) return `${option} takes no value`;
  if (message.includes("ambiguous")) return `${option} needs a value (one that starts with - is written ${option}=-…)`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") return `${option} needs a value`;
  return message.split("\n")[0]!;
}
