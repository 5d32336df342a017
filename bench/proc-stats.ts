// What the benchmark reads about processes and the machine, from /proc:
// resident memory, CPU time, the cores' busy time, and core pinning.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";

const clockTicksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

/** MB figures from /proc/<pid>/status: VmRSS now, VmHWM the peak since start or the last resetPeak. */
export function memoryOf(pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 };
}

/** Starts a new peak: VmHWM drops to the current VmRSS (Linux ≥ 4.0), so each scenario gets a peak of its own. */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

/** User plus system CPU seconds the process has used (all its threads). */
export function cpuSecondsOf(pid: number): number {
  // The command name in parentheses may hold spaces; the fields after it do not.
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

/** Busy and total jiffies of each core, from /proc/stat. */
function coreTimes(): Array<{ busy: number; total: number }> {
  return readFileSync("/proc/stat", "utf8")
    .split("\n")
    .filter((line) => /^cpu\d+ /.test(line))
    .map((line) => {
      const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number) as number[];
      const busy = user! + nice! + system! + irq! + softirq! + steal!;
      return { busy, total: busy + idle! + iowait! };
    });
}

/** Call before a measurement; the returned function gives each core's busy share (0–1) since then. */
export function coreBusyMeter(): () => number[] {
  const before = coreTimes();
  return () => coreTimes().map((now, i) => (now.busy - before[i]!.busy) / Math.max(1, now.total - before[i]!.total));
}

export const coreCount = cpus().length;

/** Binds every thread of the process to one core; a no-op on a single-core machine, where there is nothing to separate. */
export function pinToCore(pid: number, core: number): void {
  if (coreCount > 1) execFileSync("taskset", ["-a", "-p", "-c", String(core), String(pid)], { stdio: "ignore" });
}

export function machine() {
  const model = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "unknown";
  return { cores: coreCount, cpuModel: model, memoryGb: totalmem() / 2 ** 30, node: process.version };
}
