// `npm run bench:uploads`: the server's peak memory while 4 clients each
// upload a 25 MB file at once (SPEC 7: uploads stream to storage; a 25 MB
// upload never sits in memory several times over). The server runs as its
// own process on the embedded default; its peak resident set (VmHWM) is read
// from /proc, the same figure `/usr/bin/time -v` reports as "Maximum resident
// set size". Reports figures; asserts nothing.
//   BENCH_UPLOADS (default 4) concurrent uploads, BENCH_UPLOAD_MB (default 25) each
//   BENCH_POSTGRES=1  the server on PostgreSQL (a fresh database) instead of the embedded PGlite
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createTestDatabase } from "../test/support/db.js";
import { testEnv } from "../test/support/env.js";
import { opsClient } from "../test/support/ops-client.js";
import { TEST_OPS_TOKEN } from "../test/support/platform.js";
import { startServerProcess } from "../test/support/server-process.js";

const uploads = Number(process.env.BENCH_UPLOADS ?? 4);
const megabytes = Number(process.env.BENCH_UPLOAD_MB ?? 25);

/** kB figures from /proc/<pid>/status: VmRSS now, VmHWM the peak so far. */
function memoryOf(pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 };
}

/** A distinct text file of exactly `size` bytes (distinct, so nothing is deduplicated). */
function textFile(size: number, index: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(new ArrayBuffer(size)).fill(0x61);
  bytes.set(new TextEncoder().encode(`upload ${index} ${randomUUID()}\n`));
  return bytes;
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), "sentx-bench-uploads-"));
  const pg = process.env.BENCH_POSTGRES ? await createTestDatabase() : undefined;
  const server = await startServerProcess({
    DATA_DIR: dataDir,
    OPS_TOKEN: TEST_OPS_TOKEN,
    CLAMD_URL: testEnv.clamdUrl,
    SENTX_BOOTSTRAP: "off",
    ...(pg && { DATABASE_URL: pg.url }),
  });
  try {
    const ops = opsClient(server.url);
    const account = await ops.accounts.create.mutate({ email: `bench-${randomUUID()}@example.com` });
    const { key } = await ops.keys.create.mutate({ accountId: account.id, name: "bench" });
    const size = Math.min(megabytes * 1024 * 1024, 25 * 1024 * 1024);
    const files = Array.from({ length: uploads }, (_, i) => textFile(size, i));
    const idle = memoryOf(server.pid);

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
    const after = memoryOf(server.pid);

    console.log(`database: ${pg ? "PostgreSQL" : "embedded PGlite"}`);
    console.log(`uploads: ${uploads} × ${(size / 1024 / 1024).toFixed(0)} MB at once, statuses ${statuses.join(",")}, ${seconds.toFixed(2)} s`);
    console.log(`server memory: ${idle.rssMb.toFixed(0)} MB resident when idle, peak ${after.peakMb.toFixed(0)} MB (VmHWM), ${after.rssMb.toFixed(0)} MB after`);
    console.log(`peak above idle: ${(after.peakMb - idle.rssMb).toFixed(0)} MB for ${((uploads * size) / 1024 / 1024).toFixed(0)} MB uploaded`);
  } finally {
    await server.stop();
    await pg?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
