import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

export interface HelperProcess {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts `node <args>` and waits until its stdout matches `ready`; rejects if it
 * exits first. The server's own stdout is drained afterwards, so that a chatty
 * one never blocks on a full pipe.
 */
export async function startNodeProcess(
  args: string[],
  ready: RegExp,
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ readyLine: RegExpExecArray; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? root,
    env: { ...process.env, NODE_ENV: "production", ...options.env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const readyLine = await new Promise<RegExpExecArray>((resolve, reject) => {
    let out = "";
    const read = (data: Buffer) => {
      out += data.toString();
      const match = ready.exec(out);
      if (!match) return;
      child.stdout.off("data", read).resume();
      resolve(match);
    };
    child.stdout.on("data", read);
    void exited.then(() => reject(new Error(`node ${args.join(" ")} exited before it was ready:\n${out}`)));
  });
  return {
    readyLine,
    pid: child.pid!,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Starts one of bench/'s servers (fast-upstream.ts, bare-proxy.ts) as a process and waits for its `listening on <url>` line. */
export async function startHelperProcess(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<HelperProcess> {
  const { readyLine, ...server } = await startNodeProcess(["--import", "tsx", `bench/${script}`, ...args], /listening on (\S+)/, { env });
  return { url: readyLine[1]!, ...server };
}
