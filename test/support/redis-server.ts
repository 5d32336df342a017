import { type ChildProcess, spawn } from "node:child_process";
import { Redis } from "ioredis";
import { eventually } from "./eventually.js";
import { testEnv } from "./env.js";
import { freePort } from "./ports.js";

async function answersPing(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * A Redis of the test's own, on a fixed port, that the test can take away
 * (SIGKILL, like a crash) and bring back, to see what the platform does.
 */
export async function startOwnRedis() {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;

  async function start(): Promise<void> {
    child = spawn(testEnv.redisServer, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore",
    });
    if (!(await eventually(() => answersPing(url), Boolean, 10_000))) throw new Error(`redis-server did not start on ${url}`);
  }

  async function kill(): Promise<void> {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    await exited;
  }

  /** Freezes the server: connections stay open, nothing is answered (a hung Redis). */
  const freeze = () => void child?.kill("SIGSTOP");
  const thaw = () => void child?.kill("SIGCONT");

  await start();
  return { url, start, kill, freeze, thaw };
}
