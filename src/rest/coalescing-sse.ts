import type { SSEStreamingApi } from "hono/streaming";

/** Past this much unwritten text, a sender waits for the client to take it in (backpressure). */
const HIGH_WATER_CHARS = 64 * 1024;

/**
 * Server-sent events, written as soon as they are ready but together when they
 * are ready together: the events one upstream read produced go out in one
 * write. Each write costs a trip through web streams and a syscall, which was
 * the largest single cost of a streamed answer.
 */
export function coalescingSse(sse: SSEStreamingApi) {
  let pending = "";
  let flushing: Promise<void> | null = null;

  async function flush(): Promise<void> {
    // One turn of the event loop: every event already on its way (microtasks) joins this write.
    await new Promise((resolve) => setImmediate(resolve));
    while (pending) {
      const text = pending;
      pending = "";
      await sse.write(text);
    }
    flushing = null;
  }

  return {
    /** Queues one `data:` event (a single line: JSON or [DONE]). */
    async send(data: string): Promise<void> {
      pending += `data: ${data}\n\n`;
      flushing ??= flush();
      if (pending.length >= HIGH_WATER_CHARS) await flushing;
    },
    /** Resolves once everything sent is written. */
    drained: (): Promise<void> => flushing ?? Promise.resolve(),
  };
}
