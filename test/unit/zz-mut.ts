/**
 * Runs calls in batches without ever waiting to fill one: a call starts a
 * batch at once while fewer than `lanes` batches are running, and otherwise
 * joins the next, which starts the moment a lane frees. A call alone is never
 * delayed; under load, calls share one statement and one commit (group
 * commit), and a hot row is locked once per batch instead of once per call.
 *
 * A failed batch of several is run again one call at a time (when
 * `isolate(error)` says the error may be one call's fault), so one bad call
 * never fails the others.
 */
export function naturalBatches<In, Out>(
  run: (inputs: In[]) => Promise<Out[]>,
  { lanes, maxBatch, isolate }: { lanes: number; maxBatch: number; isolate: (error: unknown) => boolean },
): (input: In) => Promise<Out> {
  const queue: Array<{ input: In; resolve: (out: Out) => void; reject: (error: unknown) => void }> = [];
  let running = 0;

  async function runBatch(batch: typeof queue): Promise<void> {
    try {
      const outs = await run(batch.map((call) => call.input));
      batch.forEach((call, i) => call.resolve(outs[i]!));
    } catch (error) {
      if (batch.length === 1 || !isolate(error)) {
        for (const call of batch) call.reject(error);
        return;
      }
      await runBatch(batch.slice(1));
    }
  }

  function pump(): void {
    while (running < lanes && queue.length > 0) {
      running++;
      void runBatch(queue.splice(0, maxBatch)).finally(() => {
        running--;
        pump();
      });
    }
  }

  return (input) =>
    new Promise<Out>((resolve, reject) => {
      queue.push({ input, resolve, reject });
      pump();
    });
}
