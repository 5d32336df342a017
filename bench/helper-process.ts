import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

export interface HelperProcess {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts one of bench/'s servers (fast-upstream.ts, bare-proxy.ts) as a process and waits for its `listening on <url>` line. */
export async function startHelperProcess(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<HelperProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", `bench/${script}`, ...args], {
    cwd: root,
    env: { ...process.env, NODE_ENV: "production", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (data: Buffer) => {
      out += data.toString();
      const match = /listening on (\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    void exited.then(() => reject(new Error(`bench/${script} exited before listening:\n${out}`)));
  });
  return {
    url,
    pid: child.pid!,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
