import { randomUUID } from "node:crypto";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refusal } from "../support/api-errors.js";
import { makeEicar, makeZipBomb } from "../support/documents.js";
import { eventually } from "../support/eventually.js";
import { freePort } from "../support/ports.js";
import { downloaded, expectConsistent, type FilesPlatform, MiB, startFilesPlatform, textBytes, upload } from "../support/files.js";

// SPEC 7 through the SDK on the real server, PostgreSQL and clamd: what is
// refused for safety (viruses, no scanner, size, zip bombs, abandoned bodies)
// leaves nothing behind: no file row, no blob row, no bytes, nothing staged.

let f: FilesPlatform;
beforeAll(async () => {
  f = await startFilesPlatform();
});
afterAll(() => f.close());

describe("antivirus", () => {
  it("refuses the EICAR test file with 422 av_hit and keeps no trace of it", async () => {
    const { client, accountId } = await f.customer();
    const before = await f.storage();
    expect(await refusal(upload(client, makeEicar(), "eicar.txt"))).toEqual({
      status: 422,
      code: "av_hit",
      type: "invalid_request_error",
      param: "file",
    });
    expect(await f.fileRows(accountId)).toBe(0);
    expect(await f.settled()).toEqual(before);
  });

  it("answers 503 and stores nothing when the scanner cannot be reached", async () => {
    const closedPort = `tcp://127.0.0.1:${await freePort()}`;
    const noScanner = await startFilesPlatform({ env: { CLAMD_URL: closedPort } });
    try {
      const { client, accountId } = await noScanner.customer();
      const error = await upload(client, Buffer.from("hello\n"), "hello.txt").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect(error).toMatchObject({ status: 503, code: "service_unavailable", type: "server_error" });
      // A fixed message: no host, port or clamd wording reaches the client.
      expect((error as Error).message).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|clamd|tcp:/);
      expect(await noScanner.fileRows(accountId)).toBe(0);
      expect(await noScanner.settled()).toEqual({ files: [], blobs: [], onDisk: [], staging: [] });
    } finally {
      await noScanner.close();
    }
  });
});

describe("scanning turned off", () => {
  it("stores unscanned files only when the operator said so in so many words, and warns loudly", async () => {
    const closedPort = `tcp://127.0.0.1:${await freePort()}`;
    const warnings: string[] = [];
    const unscanned = await startFilesPlatform({
      env: { CLAMD_URL: closedPort, FILE_SCANNING: "off" },
      logger: { info() {}, error() {}, warn: (_obj, msg) => void warnings.push(msg ?? "") },
    });
    try {
      expect(warnings.some((w) => w.includes("WITHOUT a virus scan"))).toBe(true);
      const { client } = await unscanned.customer();
      await expect(upload(client, Buffer.from("never scanned\n"), "plain.txt")).resolves.toMatchObject({ object: "file" });
    } finally {
      await unscanned.close();
    }
  });
});

describe("size", () => {
  it("takes exactly 25 MB and refuses one byte more with 413 file_too_large, keeping nothing of it", async () => {
    const { client, accountId } = await f.customer();
    const bytes = textBytes(25 * MiB, randomUUID());
    const exact = await upload(client, bytes, "exact.txt");
    expect(exact.bytes).toBe(26_214_400);
    expect((await downloaded(client, exact.id)).equals(bytes)).toBe(true);

    const before = await f.storage();
    expect(await refusal(upload(client, textBytes(25 * MiB + 1, randomUUID()), "over.txt"))).toEqual({
      status: 413,
      code: "file_too_large",
      type: "invalid_request_error",
      param: "file",
    });
    expect(await f.settled()).toEqual(before);
    expect(await f.fileRows(accountId)).toBe(1);
    expectConsistent(before);
  });
});

describe("hostile and abandoned uploads", () => {
  it("refuses a zip bomb dressed as a .docx with 400, quickly, and keeps serving", async () => {
    const { client } = await f.customer();
    const bomb = await makeZipBomb();
    const before = await f.storage();
    const started = performance.now();
    expect(await refusal(upload(client, bomb, "bomb.docx"))).toMatchObject({ status: 400, code: "invalid_file_format", param: "file" });
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(await f.settled()).toEqual(before);
    const reply = await client.chat.completions.create({ model: "sentx-v1", messages: [{ role: "user", content: "still there?" }] });
    expect(reply.choices[0]!.message.content).toContain("still there?");
  });

  it("keeps nothing of an upload whose client goes away mid-body", async () => {
    const { client, key, accountId } = await f.customer();
    const before = await f.storage();
    const boundary = "----sentx-abandoned";
    const head =
      `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.txt"\r\nContent-Type: text/plain\r\n\r\n`;
    const abort = new AbortController();
    let sentHead = false;
    // A form that never ends: a MB at a time until the client gives up.
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (!sentHead) controller.enqueue(new TextEncoder().encode(head));
        sentHead = true;
        controller.enqueue(new Uint8Array(MiB).fill(0x61));
        await new Promise((r) => setTimeout(r, 10));
      },
    });
    const attempt = fetch(`${f.t.url}/v1/files`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": `multipart/form-data; boundary=${boundary}` },
      body,
      signal: abort.signal,
      duplex: "half",
    } as RequestInit);
    attempt.catch(() => {}); // awaited below; aborting must not count as unhandled meanwhile

    // The upload is really under way (bytes staged on disk) before the client disappears.
    const midway = await eventually(() => f.storage(), (s) => s.staging.length === 1, 5_000);
    expect(midway.staging).toHaveLength(1);
    abort.abort();
    await expect(attempt).rejects.toThrow();

    expect(await f.settled()).toEqual(before);
    expect(await f.fileRows(accountId)).toBe(0);
    // The server is unharmed: the same account uploads right after.
    await expect(upload(client, Buffer.from("after the abort\n"), "ok.txt")).resolves.toMatchObject({ object: "file", status: "processed" });
    expectConsistent(await f.storage());
  });
});
