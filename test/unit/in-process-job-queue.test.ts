import { describe, expect, it } from "vitest";
import { PermanentJobError } from "../../src/domain/jobs/job-queue.js";
import { createInProcessJobQueue } from "../../src/infra/in-process-job-queue.js";
import { eventually } from "../support/eventually.js";

const quickQueue = (failures: unknown[] = []) => createInProcessJobQueue({ onError: (error) => failures.push(error), firstRetryDelayMs: 5 });

describe("the in-process job queue", () => {
  it("retries a failing job until it succeeds, and runs a duplicate id only once", async () => {
    const queue = quickQueue();
    const runs: unknown[] = [];
    queue.handle("flaky", async (payload) => {
      runs.push(payload);
      if (runs.length < 3) throw new Error("not yet");
    });
    await queue.enqueue({ name: "flaky", id: "evt_1", payload: { n: 1 } });
    await queue.enqueue({ name: "flaky", id: "evt_1", payload: { n: 1 } });
    const health = await eventually(() => queue.health(), (h) => h.counts.completed === 1);
    expect(health.counts).toEqual({ waiting: 0, delayed: 0, active: 0, completed: 1, failed: 0 });
    await queue.enqueue({ name: "flaky", id: "evt_1", payload: { n: 1 } });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(runs).toHaveLength(3);
    await queue.stop();
  });

  it("fails a permanent error at once, keeps it for ops, and runs it again on retry", async () => {
    const failures: unknown[] = [];
    const queue = quickQueue(failures);
    let fixed = false;
    queue.handle("strict", async () => {
      if (!fixed) throw new PermanentJobError("contradicts the database");
    });
    await queue.enqueue({ name: "strict", id: "evt_2", payload: null });
    const [failed] = await eventually(() => queue.failed(10), (runs) => runs.length === 1);
    expect(failed).toMatchObject({ queue: "one-off", id: "strict/evt_2", job: "strict", reason: "contradicts the database", attemptsMade: 1 });
    expect(failures).toHaveLength(1);
    fixed = true;
    expect(await queue.retry("strict/evt_2")).toEqual(["strict/evt_2"]);
    await eventually(() => queue.health(), (h) => h.counts.completed === 1);
    expect(await queue.failed(10)).toEqual([]);
    await expect(queue.retry("strict/evt_2")).rejects.toMatchObject({ code: "not_found" });
    await queue.stop();
  });

  it("refuses new jobs once stopped", async () => {
    const queue = quickQueue();
    await queue.stop();
    await expect(queue.enqueue({ name: "any", id: "evt_3", payload: null })).rejects.toMatchObject({ code: "service_unavailable" });
  });
});
