import type { SSEStreamingApi } from "hono/streaming";

/** Past this much unwritten text, a sender waits for the client to take it in (backpressure). */
const HIGH_WATER_CHARS = 64 * 1024;

/**
 * Text written as soon as it is ready but together when it is ready together:
 * what one upstream read produced goes out in one write. Each write costs a
 * trip through web streams and a syscall, which was the largest single cost
 * of a streamed answer.
 */
export function coalescingWriter(write: (text: string) => Promise<unknown>) {
  let pending = "";
  let flushing: Promise<void> | null = null;

  async function flush(): Promise<void> {
    // One turn of the event loop: every piece already on its way (microtasks) joins this write.
    await new Promise((resolve) => setImmediate(resolve));
    while (pending) {
      const text = pending;
      pending = "";
      await write(text);
    }
    flushing = null;
  }

  return {
    /** Queues text; waits only when the client is this far behind. */
    async send(text: string): Promise<void> {
      pending += text;
      flushing ??= flush();
      if (pending.length >= HIGH_WATER_CHARS) await flushing;
    },
    /** Resolves once everything sent is written. */
    drained: (): Promise<void> => flushing ?? Promise.resolve(),
  };
}

/** Server-sent events, coalesced as above. */
export function coalescingSse(sse: SSEStreamingApi) {
  const writer = coalescingWriter((text) => sse.write(text));
  return {
    /** Queues one `data:` event (a single line: JSON or [DONE]). */
    send: (data: string): Promise<void> => writer.send(`data: ${data}\n\n`),
    /** Resolves once everything sent is written. */
    drained: writer.drained,
  };
}
