import type { Readable } from "node:stream";

/** How upload bytes arrive: a Node stream (a request body, a file) or any async iterable of bytes. */
export type ByteSource = Readable | AsyncIterable<Uint8Array>;

/**
 * Yields a source's chunks one pull at a time, and rejects with the signal's
 * reason as soon as it aborts, even while the source is stalled mid-read (a
 * client that stops sending must not hold a scan or an upload open). Leaving
 * early releases the source: a Readable is destroyed, a generator returned.
 */
export async function* readChunks(source: ByteSource, signal?: AbortSignal): AsyncGenerator<Uint8Array, void, undefined> {
  const iterator: AsyncIterator<unknown> = source[Symbol.asyncIterator]();
  let exhausted = false;
  try {
    for (;;) {
      signal?.throwIfAborted();
      const step = signal ? await nextUnlessAborted(iterator, signal) : await iterator.next();
      if (step.done) {
        exhausted = true;
        return;
      }
      yield toBytes(step.value);
    }
  } finally {
    // Not awaited: a stalled source would hold us here; a late failure has no one left to tell.
    if (!exhausted) Promise.resolve().then(() => iterator.return?.()).catch(() => {});
  }
}

function nextUnlessAborted(iterator: AsyncIterator<unknown>, signal: AbortSignal): Promise<IteratorResult<unknown>> {
  // A fresh listener per pull: racing every pull against one long-lived promise would pile up reactions on it.
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    iterator
      .next()
      .then(resolve, reject)
      .finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  // A Readable with an encoding set yields strings; count and hash their bytes, not their characters.
  if (typeof chunk === "string") return Buffer.from(chunk);
  throw new TypeError(`A byte source yielded ${typeof chunk}, not bytes`);
}
