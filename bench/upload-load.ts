import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { memoryOf, resetPeak } from "./proc-stats.js";

/** A distinct text file of exactly `size` bytes (distinct, so nothing is deduplicated). */
function textFile(size: number, index: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(new ArrayBuffer(size)).fill(0x61);
  bytes.set(new TextEncoder().encode(`upload ${index} ${randomUUID()}\n`));
  return bytes;
}

export interface UploadFigures {
  statuses: number[];
  seconds: number;
  /** MB resident just before the uploads. */
  idleMb: number;
  /** MB resident at the peak during the uploads (VmHWM, reset just before them). */
  peakMb: number;
  /** MB resident once they are answered. */
  afterMb: number;
}

/**
 * `count` clients each upload a file of `size` bytes to POST /v1/files at
 * once, and the server process's memory is read from /proc around it (SPEC 7:
 * uploads stream to storage; a 25 MB upload never sits in memory several times over).
 */
export async function uploadFiles(server: { url: string; pid: number }, key: string, count: number, size: number): Promise<UploadFigures> {
  const files = Array.from({ length: count }, (_, i) => textFile(size, i));
  const idleMb = memoryOf(server.pid).rssMb;
  resetPeak(server.pid);
  const started = performance.now();
  const statuses = await Promise.all(
    files.map(async (bytes, i) => {
      const form = new FormData();
      form.set("purpose", "user_data");
      form.set("file", new Blob([bytes], { type: "text/plain" }), `upload-${i}.txt`);
      const res = await fetch(`${server.url}/v1/files`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: form });
      await res.text();
      return res.status;
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const { peakMb, rssMb: afterMb } = memoryOf(server.pid);
  return { statuses, seconds, idleMb, peakMb, afterMb };
}
