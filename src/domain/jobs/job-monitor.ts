import { DomainError } from "../errors.js";

// SPEC 12's "queue health, retry failed", over whatever runs the jobs: BullMQ
// through Redis (shared by every instance), or timers in this process.

export interface QueueHealth {
  queue: string;
  /** bullmq: one queue for every instance; in-process: this instance's own jobs only. */
  runner: "bullmq" | "in-process";
  /** Runs by state, as the runner counts them (BullMQ's states, or what an in-process runner can tell). */
  counts: Record<string, number>;
}

export interface FailedJobRun {
  queue: string;
  /** Names the run to retry. */
  id: string;
  job: string;
  reason: string;
  failedAt: Date | null;
  attemptsMade: number;
}

export interface JobMonitor {
  readonly queue: string;
  health(): Promise<QueueHealth>;
  /** The most recent failed runs still kept, newest first. */
  failed(limit: number): Promise<FailedJobRun[]>;
  /** Runs failed runs again: the one with this id, or every one. Returns the ids retried. */
  retry(runId?: string): Promise<string[]>;
}

export interface RetryRequest {
  /** Every queue when absent. */
  queue?: string | undefined;
  /** One run of `queue`; every failed run when absent. */
  id?: string | undefined;
}

export function createJobOperations(monitors: JobMonitor[]) {
  function monitorsFor(queue: string | undefined): JobMonitor[] {
    if (queue === undefined) return monitors;
    const monitor = monitors.find((m) => m.queue === queue);
    if (!monitor) throw new DomainError("not_found", `No queue ${queue}; there are: ${monitors.map((m) => m.queue).join(", ")}.`, "queue");
    return [monitor];
  }

  return {
    stats: (): Promise<QueueHealth[]> => Promise.all(monitors.map((m) => m.health())),

    async failed(query: { queue?: string | undefined; limit: number }): Promise<FailedJobRun[]> {
      const runs = (await Promise.all(monitorsFor(query.queue).map((m) => m.failed(query.limit)))).flat();
      return runs.sort((a, b) => (b.failedAt?.getTime() ?? 0) - (a.failedAt?.getTime() ?? 0)).slice(0, query.limit);
    },

    async retry(request: RetryRequest): Promise<{ retried: Array<{ queue: string; id: string }> }> {
      const retried = [];
      for (const monitor of monitorsFor(request.queue)) {
        for (const id of await monitor.retry(request.id)) retried.push({ queue: monitor.queue, id });
      }
      return { retried };
    },
  };
}

export type JobOperations = ReturnType<typeof createJobOperations>;
