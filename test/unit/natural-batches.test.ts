import { describe, expect, it } from "vitest";
import { naturalBatches } from "../../src/domain/natural-batches.js";

// A `run` the test finishes by hand: it records every batch it is given, and
// each batch stays running until the test settles it, so the test decides
// exactly which batches are in flight when the next calls arrive.

interface Running {
  inputs: string[];
  finish(): void;
  fail(error: unknown): void;
}

function handRun(answer: (input: string) => string = (input) => `answer:${input}`) {
  const started: Running[] = [];
  const run = (inputs: string[]) =>
    new Promise<string[]>((resolve, reject) => {
      started.push({ inputs: [...inputs], finish: () => resolve(inputs.map(answer)), fail: reject });
    });
  return { started, run, batches: () => started.map((batch) => batch.inputs) };
}

/** Lets every pending promise callback run (a finished batch frees its lane in a `.finally`). */
const settled = () => new Promise((resolve) => setImmediate(resolve));

const noIsolation = { isolate: () => false };

describe("naturalBatches", () => {
  it("runs a call alone at once, in a batch of its own", async () => {
    const { run, started, batches } = handRun();
    const call = naturalBatches(run, { lanes: 2, maxBatch: 10, ...noIsolation });

    const answer = call("a");
    // Not even a microtask later: nothing waits to fill a batch.
    expect(batches()).toEqual([["a"]]);
    started[0]!.finish();
    expect(await answer).toBe("answer:a");
  });

  it("queues calls made while every lane is busy and runs them together, in call order, when a lane frees", async () => {
    const { run, started, batches } = handRun();
    const call = naturalBatches(run, { lanes: 2, maxBatch: 10, ...noIsolation });

    const answers = ["a", "b", "c", "d", "e"].map(call);
    expect(batches()).toEqual([["a"], ["b"]]);
    await settled();
    expect(batches()).toHaveLength(2); // c, d and e wait for a lane

    started[1]!.finish();
    await settled();
    expect(batches()).toEqual([["a"], ["b"], ["c", "d", "e"]]);

    // A call made now waits again: a and c-d-e hold the two lanes.
    const late = call("f");
    await settled();
    expect(batches()).toHaveLength(3);
    started[0]!.finish();
    await settled();
    expect(batches()[3]).toEqual(["f"]);

    started[2]!.finish();
    started[3]!.finish();
    expect(await Promise.all([...answers, late])).toEqual(["a", "b", "c", "d", "e", "f"].map((x) => `answer:${x}`));
  });

  it("never runs more than `lanes` batches at once, however the batches end", async () => {
    let running = 0;
    let mostAtOnce = 0;
    const call = naturalBatches(
      async (inputs: number[]) => {
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
        running--;
        return inputs;
      },
      { lanes: 3, maxBatch: 4, ...noIsolation },
    );

    const calls: Array<Promise<number>> = [];
    for (let i = 0; i < 60; i++) {
      calls.push(call(i));
      if (i % 7 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(mostAtOnce).toBe(3);
  });

  it("splits a queue longer than maxBatch into batches of at most maxBatch, oldest calls first", async () => {
    const { run, started, batches } = handRun();
    const call = naturalBatches(run, { lanes: 1, maxBatch: 2, ...noIsolation });

    const answers = ["a", "b", "c", "d", "e"].map(call);
    for (let i = 0; i < 3; i++) {
      started[i]!.finish();
      await settled();
    }

    expect(batches()).toEqual([["a"], ["b", "c"], ["d", "e"]]);
    expect(await Promise.all(answers)).toEqual(["a", "b", "c", "d", "e"].map((x) => `answer:${x}`));
  });

  it("gives each caller the answer at its own index in the batch", async () => {
    const { run, started, batches } = handRun((input) => input.toUpperCase());
    const call = naturalBatches(run, { lanes: 1, maxBatch: 10, ...noIsolation });

    const first = call("first");
    const [x, y, z] = ["x", "y", "z"].map(call);
    started[0]!.finish();
    await settled();
    expect(batches()[1]).toEqual(["x", "y", "z"]);
    started[1]!.finish();

    expect(await Promise.all([first, x, y, z])).toEqual(["FIRST", "X", "Y", "Z"]);
  });

  describe("when a batch of several fails", () => {
    const bad = new Error("bad input");
    /** Fails any batch that holds "bad"; `isolate` says whether the error may be one call's fault. */
    function failingOnBad(isolate: (error: unknown) => boolean) {
      const batches: string[][] = [];
      const seen: unknown[] = [];
      let blockFirst: () => void = () => {};
      const call = naturalBatches(
        async (inputs: string[]) => {
          batches.push([...inputs]);
          // The first batch holds its lane until the test lets it go, so the others queue behind it.
          if (batches.length === 1) await new Promise<void>((resolve) => (blockFirst = resolve));
          if (inputs.includes("bad")) throw bad;
          return inputs.map((input) => `ok:${input}`);
        },
        {
          lanes: 1,
          maxBatch: 10,
          isolate: (error) => {
            seen.push(error);
            return isolate(error);
          },
        },
      );
      const outcomes = Promise.allSettled(["first", "b", "bad", "c"].map(call));
      blockFirst();
      return { batches, seen, outcomes };
    }

    it("re-runs each call alone when isolate accepts the error, so only the bad call rejects", async () => {
      const { batches, seen, outcomes } = failingOnBad(() => true);

      expect(await outcomes).toEqual([
        { status: "fulfilled", value: "ok:first" },
        { status: "fulfilled", value: "ok:b" },
        { status: "rejected", reason: bad },
        { status: "fulfilled", value: "ok:c" },
      ]);
      expect(batches).toEqual([["first"], ["b", "bad", "c"], ["b"], ["bad"], ["c"]]);
      // Asked once, for the batch of several: the lone bad call's failure is its own.
      expect(seen).toEqual([bad]);
    });

    it("rejects every call of the batch with the error when isolate refuses it, without re-running any", async () => {
      const { batches, seen, outcomes } = failingOnBad(() => false);

      const [first, ...rest] = await outcomes;
      expect(first).toEqual({ status: "fulfilled", value: "ok:first" });
      for (const outcome of rest) expect(outcome).toEqual({ status: "rejected", reason: bad });
      expect((rest[0] as PromiseRejectedResult).reason).toBe(bad);
      expect(batches).toEqual([["first"], ["b", "bad", "c"]]);
      expect(seen).toEqual([bad]);
    });
  });
});
