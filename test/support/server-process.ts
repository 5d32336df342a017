import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { testEnv } from "./env.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

export interface ServerProcess {
  url: string;
  pid: number;
  /** Everything the process printed on stdout so far: its JSON log. */
  stdout(): string;
  /** Everything the process printed on stderr so far: the banner, and anything not logged. */
  stderr(): string;
  stop(): Promise<number | null>;
  /** Ends the process at once, as a crash would: no clean-up runs. */
  kill(): Promise<void>;
}

export interface ExitedProcess {
  code: number | null;
  stdout: string;
  stderr: string;
}

function spawnServer(env: Record<string, string>, nodeArgs: string[] = []) {
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, "--import", "tsx", "src/main.ts"], {
    cwd: root,
    // The test clamd unless a test says otherwise: with FILE_SCANNING=auto a production start refuses to run without one.
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", PORT: "0", LOG_LEVEL: "warn", CLAMD_URL: testEnv.clamdUrl, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = { out: "", err: "" };
  child.stdout!.on("data", (d: Buffer) => (output.out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output.err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output, exited };
}

/** Starts `src/main.ts` as a real process (`nodeArgs` before it, e.g. `--cpu-prof`) and waits for its banner on stderr. */
export async function startServerProcess(env: Record<string, string>, options: { timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<ServerProcess> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const { child, output, exited } = spawnServer(env, options.nodeArgs);

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms\n${output.out}\n${output.err}`)), timeoutMs);
    const check = () => {
      const match = /SentX is running at (\S+)/.exec(output.err);
      if (match && output.err.includes("Ops CLI:")) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stderr!.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}\n${output.out}\n${output.err}`));
    });
  });

  return {
    url,
    pid: child.pid!,
    stdout: () => output.out,
    stderr: () => output.err,
    async stop() {
      child.kill("SIGTERM");
      return exited;
    },
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Runs `src/main.ts` for a start expected to fail and returns how it ended; one that starts, or hangs, is killed and throws. */
export async function runServerProcessToExit(env: Record<string, string>, options: { timeoutMs?: number } = {}): Promise<ExitedProcess> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const { child, output, exited } = spawnServer(env);
  let why = "";
  const stopBecause = (reason: string) => {
    why = reason;
    child.kill("SIGKILL");
  };
  const timer = setTimeout(() => stopBecause(`did not exit in ${timeoutMs} ms`), timeoutMs);
  child.stderr!.on("data", () => {
    if (output.err.includes("SentX is running at")) stopBecause("started, but was expected not to");
  });
  const code = await exited;
  clearTimeout(timer);
  if (why) throw new Error(`server ${why}\n${output.out}\n${output.err}`);
  return { code, stdout: output.out, stderr: output.err };
}

/** The API key a first start shows, alone on its line of the banner; undefined when it shows none. */
export const firstRunKey = (banner: string): string | undefined => /^\s+(sk-[0-9A-Za-z]{32,})\s*$/m.exec(banner)?.[1];

/** A start refused for its configuration: a non-zero exit and one line on stderr matching `names`, with no stack. */
export function expectRefusedStart(exited: ExitedProcess, names: RegExp): void {
  expect(exited.code).not.toBe(0);
  const lines = exited.stderr.trim().split("\n");
  expect(lines, exited.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^SentX did not start: /);
  expect(lines[0]).toMatch(names);
  expect(exited.stderr).not.toMatch(/\n\s+at |node:internal|\.ts:\d+/);
}
