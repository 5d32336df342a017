import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refusal } from "../support/api-errors.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { makeEicar } from "../support/documents.js";
import { testEnv } from "../support/env.js";
import { upload } from "../support/files.js";
import { freePort } from "../support/ports.js";
import {
  expectRefusedStart,
  firstRunKey,
  runServerProcessToExit,
  type ServerProcess,
  startServerProcess,
} from "../support/server-process.js";

// SPEC 7's FILE_SCANNING=auto, the default, through the real process: it scans
// when clamd answers; the embedded default on loopback without clamd stores
// uploads flagged unscanned and says so; production without clamd does not
// start, unless the operator sets FILE_SCANNING=off.

/** SentX's addition to OpenAI's file object. */
type ScannedFile = OpenAI.FileObject & { scan_status: "scanned" | "unscanned" };

const folders: string[] = [];
const databases: TestDatabase[] = [];
let noClamd: string;
beforeAll(async () => {
  noClamd = `tcp://127.0.0.1:${await freePort()}`;
});
afterAll(async () => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  await Promise.all(databases.map((database) => database.drop()));
});

const embedded = (env: Record<string, string> = {}) => {
  const folder = mkdtempSync(join(tmpdir(), "sentx-scanning-"));
  folders.push(folder);
  return { DATA_DIR: folder, ...env };
};
const production = async (env: Record<string, string> = {}) => {
  const database = await createTestDatabase({ maxConnections: 1 });
  databases.push(database);
  return { ...embedded(env), DATABASE_URL: database.url, SENTX_BOOTSTRAP: "on" };
};

/** Runs `use` against a started server with the SDK on its first-start key, then stops it cleanly. */
async function withServer(env: Record<string, string>, use: (server: ServerProcess, client: OpenAI) => Promise<void>): Promise<void> {
  const server = await startServerProcess(env);
  try {
    const key = firstRunKey(server.stderr());
    expect(key, server.stderr()).toBeDefined();
    await use(server, new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key!, maxRetries: 0 }));
  } finally {
    expect(await server.stop()).toBe(0);
  }
}

const logLines = (server: ServerProcess) =>
  server
    .stdout()
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { msg: string; fileId?: string });

describe("embedded default on loopback, no clamd answering", () => {
  it("stores uploads flagged unscanned in the file object and the log, and the banner warns", async () => {
    await withServer(embedded({ CLAMD_URL: noClamd }), async (server, client) => {
      expect(server.stderr()).toMatch(/WARNING: no virus scanner answers at tcp:\/\/127\.0\.0\.1:\d+ — uploads are stored WITHOUT a virus scan/);

      const stored = (await upload(client, Buffer.from("never scanned\n"), "plain.txt")) as ScannedFile;
      expect(stored).toMatchObject({ object: "file", status: "processed", scan_status: "unscanned" });
      expect(await client.files.retrieve(stored.id)).toMatchObject({ id: stored.id, scan_status: "unscanned" });
      expect((await client.files.list()).data).toEqual([expect.objectContaining({ id: stored.id, scan_status: "unscanned" })]);

      const logged = logLines(server);
      expect(logged).toContainEqual(expect.objectContaining({ msg: expect.stringMatching(/^no clamd answers: uploads are stored WITHOUT a virus scan/) }));
      expect(logged).toContainEqual(expect.objectContaining({ fileId: stored.id, msg: "upload stored WITHOUT a virus scan: the scanner did not answer" }));
    });
  }, 120_000);
});

describe("production without clamd", () => {
  it("refuses to start with auto when DATABASE_URL is set, in one line saying how to go on", async () => {
    const exited = await runServerProcessToExit(await production({ CLAMD_URL: noClamd }));
    expectRefusedStart(exited, /FILE_SCANNING=auto and no clamd answers at CLAMD_URL=tcp:\/\/127\.0\.0\.1:\d+, on a production start \(DATABASE_URL is set\).*FILE_SCANNING=off/);
  }, 60_000);

  it("refuses to start with auto when HOST is not loopback, even on the embedded database", async () => {
    const exited = await runServerProcessToExit(embedded({ CLAMD_URL: noClamd, HOST: "0.0.0.0" }));
    expectRefusedStart(exited, /FILE_SCANNING=auto and no clamd answers .*\(HOST=0\.0\.0\.0 is not a loopback address\)/);
  }, 60_000);

  it("starts with FILE_SCANNING=off said in so many words, warns, and flags every upload unscanned", async () => {
    await withServer(await production({ CLAMD_URL: noClamd, FILE_SCANNING: "off" }), async (server, client) => {
      expect(server.stderr()).toContain("WARNING: FILE_SCANNING=off — uploaded files are stored WITHOUT a virus scan");
      const stored = (await upload(client, Buffer.from("operator said off\n"), "plain.txt")) as ScannedFile;
      expect(stored.scan_status).toBe("unscanned");
      expect(logLines(server)).toContainEqual(expect.objectContaining({ fileId: stored.id, msg: "upload stored WITHOUT a virus scan: FILE_SCANNING=off" }));
    });
  }, 120_000);
});

describe("clamd answering", () => {
  it.each([
    ["the embedded default", () => Promise.resolve(embedded({ CLAMD_URL: testEnv.clamdUrl }))],
    ["production", () => production({ CLAMD_URL: testEnv.clamdUrl })],
  ])("%s with auto scans every upload: clean ones are flagged scanned, EICAR is refused", async (_name, env) => {
    await withServer(await env(), async (server, client) => {
      expect(server.stderr()).toContain(`virus scanner: clamd at ${testEnv.clamdUrl}`);
      expect(server.stderr()).not.toContain("WITHOUT a virus scan");
      const stored = (await upload(client, Buffer.from("scanned and clean\n"), "clean.txt")) as ScannedFile;
      expect(stored.scan_status).toBe("scanned");
      expect(await refusal(upload(client, makeEicar(), "eicar.txt"))).toMatchObject({ status: 422, code: "av_hit" });
    });
  }, 120_000);
});
