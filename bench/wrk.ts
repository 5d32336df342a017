// Throughput and latency come from wrk rather than autocannon: wrk is C on
// epoll and drives well over 10,000 requests/s from one core, so on the load's
// one core it is never what limits the bare proxy; autocannon is a Node
// program and would top out near the rate of the Node proxy it measures.
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const script = fileURLToPath(new URL("chat-load.lua", import.meta.url));

export interface WrkRun {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Socket errors and timeouts. */
  errors: number;
  /** Answers with a status above 399. */
  non2xx: number;
}

export interface WrkLoad {
  url: string;
  body: string;
  /** Connection i uses keys[i % keys.length]. */
  keys: string[];
  connections: number;
  seconds: number;
  /** Added to every request (Portkey's routing headers). */
  headers?: Record<string, string>;
}

// One `name: value` a line: Lua has no JSON parser, and a header line cannot hold a newline.
const headerLines = (headers: Record<string, string> = {}) =>
  Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}`)
    .join("\n");

export function runWrk(load: WrkLoad): Promise<WrkRun> {
  // A key per connection needs a thread per connection (wrk hands out requests
  // per thread); one shared key needs one thread, which leaves more of the load
  // core to the upstream. The requests on the wire are the same either way.
  const threads = load.keys.length > 1 ? load.connections : 1;
  const args = ["-t", String(threads), "-c", String(load.connections), "-d", `${load.seconds}s`, "--timeout", "30s", "-s", script, load.url];
  return new Promise((resolve, reject) => {
    execFile("wrk", args, { env: { ...process.env, BENCH_KEYS: load.keys.join(","), BENCH_BODY: load.body, BENCH_HEADERS: headerLines(load.headers) } }, (error, stdout, stderr) => {
      const line = /^BENCH_RESULT (.+)$/m.exec(stdout)?.[1];
      if (error || !line) return reject(new Error(`wrk failed: ${error?.message ?? "no result line"}\n${stdout}\n${stderr}`));
      const r = JSON.parse(line) as { requests: number; durationUs: number; p50Us: number; p99Us: number; errors: number; non2xx: number };
      const seconds = r.durationUs / 1e6;
      resolve({
        requests: r.requests,
        seconds,
        requestsPerSecond: r.requests / seconds,
        p50Ms: r.p50Us / 1000,
        p99Ms: r.p99Us / 1000,
        errors: r.errors,
        non2xx: r.non2xx,
      });
    });
  });
}

/** "wrk 4.1.0 …", or null when wrk is not installed (`wrk -v` exits 1 even when it is). */
export function wrkVersion(): string | null {
  const probe = spawnSync("wrk", ["-v"], { encoding: "utf8" });
  return probe.error ? null : probe.stdout.split("\n")[0]!.replace(/\s+Copyright.*/, "");
}

/** wrk from Debian: installed when missing and running as root, as scripts/test.sh installs services. */
export function ensureWrk(): void {
  if (wrkVersion()) return;
  if (process.getuid?.() !== 0) throw new Error("the benchmark needs wrk: sudo apt-get install wrk");
  console.log("installing wrk (apt-get)…");
  execFileSync("apt-get", ["update", "-q"], { stdio: "ignore" });
  execFileSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", "wrk"], { stdio: "ignore", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
}
