import type { Config } from "../config";

/** `latchkey healthcheck`: exit 0 when the local server answers /health with 200 (Docker HEALTHCHECK). */
export async function healthcheck(config: Config): Promise<number> {
  const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host === "::" ? "[::1]" : config.host.includes(":") ? `[${config.host}]` : config.host;
  try {
    const response = await fetch(`http://${host}:${config.port}/health`, { signal: AbortSignal.timeout(3000) });
    console.log(`health: ${response.status}`);
    return response.status === 200 ? 0 : 1;
  } catch (error) {
    console.log(`health: unreachable (${(error as Error).message})`);
    return 1;
  }
}
