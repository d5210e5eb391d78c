import { CliError } from "./args";

/**
 * Reads a password from standard input, never from argv (argv is visible in `ps` and shell history).
 * On a terminal it prompts without echo and asks twice; from a pipe it takes the input minus one trailing newline.
 */
export async function readPassword(confirm: boolean): Promise<string> {
  if (!process.stdin.isTTY) {
    const password = (await Bun.stdin.text()).replace(/\r?\n$/, "");
    if (password === "") throw new CliError(`no password on standard input: pipe it in, e.g. printf '%s' "$PASSWORD" | latchkey ...`);
    return password;
  }
  const first = await promptHidden("Password: ");
  if (confirm && (await promptHidden("Repeat password: ")) !== first) throw new Error("the passwords do not match");
  return first;
}

function promptHidden(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding("utf8");
  return new Promise((resolve, reject) => {
    let value = "";
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === "\r" || char === "\n") {
          done();
          return resolve(value);
        }
        if (char === "\u0003") {
          done();
          return reject(new Error("cancelled"));
        }
        if (char === "\u007f" || char === "\b") value = [...value].slice(0, -1).join("");
        else value += char;
      }
    };
    const done = () => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
    };
    stdin.on("data", onData);
  });
}
