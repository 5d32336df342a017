import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createInProcessScheduler } from "../../src/domain/jobs/in-process-scheduler.js";

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

const noErrors = () => {
  throw new Error("no job should fail here");
};

describe("in-process scheduler", () => {
  it("runs a job every interval, the first time after one interval", async () => {
    const scheduler = createInProcessScheduler({ onError: noErrors });
    const run = vi.fn(async () => {});
    scheduler.schedule({ name: "tick", everyMs: 1_000, run });

    await vi.advanceTimersByTimeAsync(999);
    expect(run).toHaveBeenCalledTimes(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(run).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(run).toHaveBeenCalledTimes(4);
    await scheduler.stop();
  });

  it("never overlaps a job with itself: a slow run delays the next", async () => {
    const scheduler = createInProcessScheduler({ onError: noErrors });
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    scheduler.schedule({
      name: "slow",
      everyMs: 100,
      run: async () => {
        runs++;
        maxActive = Math.max(maxActive, ++active);
        await new Promise((resolve) => setTimeout(resolve, 250));
        active--;
      },
    });

    await vi.advanceTimersByTimeAsync(1_000);
    expect(maxActive).toBe(1);
    // Each cycle is 100 ms of waiting plus 250 ms of running.
    expect(runs).toBe(3);
    const stopped = scheduler.stop(); // the third run ends at 1,050 ms
    await vi.advanceTimersByTimeAsync(50);
    await stopped;
  });

  it("reports a failing run to onError and keeps the schedule", async () => {
    const onError = vi.fn();
    const scheduler = createInProcessScheduler({ onError });
    const failure = new Error("database down");
    const run = vi.fn().mockRejectedValueOnce(failure).mockResolvedValue(undefined);
    scheduler.schedule({ name: "flaky", everyMs: 100, run });

    await vi.advanceTimersByTimeAsync(200);
    expect(onError).toHaveBeenCalledExactlyOnceWith(failure, "flaky");
    expect(run).toHaveBeenCalledTimes(2);
    await scheduler.stop();
  });

  it("stop() waits for a run in progress and cancels the rest", async () => {
    const scheduler = createInProcessScheduler({ onError: noErrors });
    let finished = false;
    const run = vi.fn(async () => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      finished = true;
    });
    scheduler.schedule({ name: "long", everyMs: 100, run });
    await vi.advanceTimersByTimeAsync(150);
    expect(run).toHaveBeenCalledTimes(1);

    const stopped = scheduler.stop();
    await vi.advanceTimersByTimeAsync(500);
    await stopped;
    expect(finished).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(run).toHaveBeenCalledTimes(1);
    expect(() => scheduler.schedule({ name: "late", everyMs: 1, run })).toThrow(/stopped/);
  });

  it("refuses two jobs of one name", async () => {
    const scheduler = createInProcessScheduler({ onError: noErrors });
    scheduler.schedule({ name: "dup", everyMs: 100, run: async () => {} });
    expect(() => scheduler.schedule({ name: "dup", everyMs: 100, run: async () => {} })).toThrow(/already scheduled/);
    await scheduler.stop();
  });
});
