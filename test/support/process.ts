/**
 * Starts a binary as a server in a chosen working folder with exactly the environment given (startServer always
 * sets DATA_DIR; this does not), and resolves once it printed its "listening" line.
 */
const spawned = new Set<Bun.Subprocess>();
process.on("exit", () => {
  for (const proc of spawned) proc.kill("SIGKILL");
});

export interface SpawnedServer {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  output(): string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

export async function spawnServer(command: string[], options: { cwd: string; env: Record<string, string> }): Promise<SpawnedServer> {
  const proc = Bun.spawn(command, { cwd: options.cwd, env: options.env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  spawned.add(proc);
  void proc.exited.then(() => spawned.delete(proc));
  let output = "";
  const decoder = new TextDecoder();
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      output += decoder.decode(chunk);
      if (output.includes(" listening on ")) resolveReady();
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const exited = proc.exited.then((code) => {
    throw new Error(`${command[0]} exited with ${code} before listening:\n${output}`);
  });
  await Promise.race([ready, exited]);
  exited.catch(() => {});
  return {
    proc,
    output: () => output,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      proc.kill(signal);
      return proc.exited;
    },
  };
}
