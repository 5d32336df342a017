// `npm run bench:uploads`: the server's peak memory while 4 clients each
// upload a 25 MB file at once. The server runs as its own process on the
// embedded default; its peak resident set (VmHWM) is read from /proc, the
// same figure `/usr/bin/time -v` reports as "Maximum resident set size".
// Reports figures; asserts nothing. (`npm run bench` measures one upload the
// same way, on PostgreSQL and Redis.)
//   BENCH_UPLOADS (default 4) concurrent uploads, BENCH_UPLOAD_MB (default 25) each
//   BENCH_POSTGRES=1  the server on PostgreSQL (a fresh database) instead of the embedded PGlite
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase } from "../test/support/db.js";
import { testEnv } from "../test/support/env.js";
import { opsClient } from "../test/support/ops-client.js";
import { TEST_OPS_TOKEN } from "../test/support/platform.js";
import { startServerProcess } from "../test/support/server-process.js";
import { uploadFiles } from "./upload-load.js";

const uploads = Number(process.env.BENCH_UPLOADS ?? 4);
const megabytes = Number(process.env.BENCH_UPLOAD_MB ?? 25);

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
    const figures = await uploadFiles(server, key, uploads, size);

    console.log(`database: ${pg ? "PostgreSQL" : "embedded PGlite"}`);
    console.log(`uploads: ${uploads} × ${(size / 1024 / 1024).toFixed(0)} MB at once, statuses ${figures.statuses.join(",")}, ${figures.seconds.toFixed(2)} s`);
    console.log(`server memory: ${figures.idleMb.toFixed(0)} MB resident when idle, peak ${figures.peakMb.toFixed(0)} MB (VmHWM), ${figures.afterMb.toFixed(0)} MB after`);
    console.log(`peak above idle: ${(figures.peakMb - figures.idleMb).toFixed(0)} MB for ${((uploads * size) / 1024 / 1024).toFixed(0)} MB uploaded`);
  } finally {
    await server.stop();
    await pg?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
