import type { SSEStreamingApi } from "hono/streaming";
import { describe, expect, it } from "vitest";
import { coalescingSse } from "../../src/rest/coalescing-sse.js";

/** A stream whose writes are recorded and complete when the test says so. */
function recordingStream() {
  const writes: string[] = [];
  const waiting: Array<() => void> = [];
  const sse = {
    write: (text: string) =>
      new Promise<void>((resolve) => {
        writes.push(text);
        waiting.push(resolve);
      }),
  } as unknown as SSEStreamingApi;
  const completeWrites = () => waiting.splice(0).forEach((resolve) => resolve());
  return { sse, writes, completeWrites };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("coalesced server-sent events", () => {
  it("writes the events that are ready together in one write, in order, as SSE", async () => {
    const { sse, writes, completeWrites } = recordingStream();
    const events = coalescingSse(sse);
    await events.send('{"n":1}');
    await events.send('{"n":2}');
    await events.send("[DONE]");
    expect(writes).toEqual([]);
    await tick();
    expect(writes).toEqual(['data: {"n":1}\n\ndata: {"n":2}\n\ndata: [DONE]\n\n']);
    completeWrites();
    await events.drained();
  });

  it("sends what arrives during a write in the next write, and drains only when all is written", async () => {
    const { sse, writes, completeWrites } = recordingStream();
    const events = coalescingSse(sse);
    await events.send("a");
    await tick();
    await events.send("b");
    await events.send("c");
    let drained = false;
    void events.drained().then(() => (drained = true));
    completeWrites();
    await tick();
    expect(writes).toEqual(["data: a\n\n", "data: b\n\ndata: c\n\n"]);
    expect(drained).toBe(false);
    completeWrites();
    await tick();
    expect(drained).toBe(true);
  });

  it("makes a sender wait once 64 KB are unwritten, so a slow client holds the stream back", async () => {
    const { sse, writes, completeWrites } = recordingStream();
    const events = coalescingSse(sse);
    let returned = false;
    void events.send("x".repeat(70_000)).then(() => (returned = true));
    await tick();
    await tick();
    expect(writes).toHaveLength(1);
    expect(returned).toBe(false);
    completeWrites();
    await tick();
    expect(returned).toBe(true);
  });
});
