import { createHash, randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileRetentionJob } from "../../src/domain/jobs/file-retention.js";
import { blobs, files } from "../../src/domain/schema/index.js";
import { refusal } from "../support/api-errors.js";
import { offsetClock } from "../support/clock.js";
import {
  makeDocx,
  makeGif,
  makeJpeg,
  makeMovHeader,
  makeMp4Header,
  makePdf,
  makePng,
  makeWebmHeader,
  makeWebp,
  makeXlsx,
} from "../support/documents.js";
import {
  blobPath,
  DAY_MS,
  downloaded,
  errorBody,
  expectConsistent,
  fileNotFound,
  type FilesPlatform,
  startFilesPlatform,
  upload,
} from "../support/files.js";

// SPEC 7 through the official SDK against the real server, real PostgreSQL
// and real clamd: the five calls, typing from the bytes, deduplication and
// isolation between accounts. Caps, safety and retention have files of their own.

const clock = offsetClock();
let f: FilesPlatform;
beforeAll(async () => {
  f = await startFilesPlatform({ clock });
});
afterAll(() => f.close());

const invalidFormat = { status: 400, code: "invalid_file_format", type: "invalid_request_error", param: "file" };

/** A raw POST /v1/files, for bodies the SDK would never send. */
const postRaw = (key: string, body: BodyInit, contentType?: string) =>
  fetch(`${f.t.url}/v1/files`, { method: "POST", headers: { authorization: `Bearer ${key}`, ...(contentType && { "content-type": contentType }) }, body });

describe("upload, retrieve, content, list, delete", () => {
  it("accepts every supported type from its bytes, and gives back OpenAI's file object and the exact bytes", async () => {
    const { client } = await f.customer();
    const cases: Array<[Buffer, string, string]> = [
      [makePng(), "a.png", "image/png"],
      [makeJpeg(), "a.jpg", "image/jpeg"],
      [makeWebp(), "a.webp", "image/webp"],
      [makeGif(), "a.gif", "image/gif"],
      [makeMp4Header(), "a.mp4", "video/mp4"],
      [makeWebmHeader(), "a.webm", "video/webm"],
      [makeMovHeader(), "a.mov", "video/quicktime"],
      [await makePdf(["Quarterly report"]), "a.pdf", "application/pdf"],
      [await makeDocx(["Meeting notes"]), "a.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"],
      [await makeXlsx({ Sheet1: [["a", 1]] }), "a.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
      [Buffer.from("name,qty\nbolt,3\n"), "a.csv", "text/csv"],
      [Buffer.from("plain words ✓\n"), "a.txt", "text/plain"],
      [Buffer.from("# Title\n"), "a.md", "text/markdown"],
    ];
    for (const [bytes, name, mime] of cases) {
      const file = await upload(client, bytes, name);
      expect(file, name).toEqual({
        id: expect.stringMatching(/^file-\w+$/),
        object: "file",
        bytes: bytes.length,
        created_at: expect.any(Number),
        expires_at: file.created_at + 30 * 86_400,
        filename: name,
        purpose: "user_data",
        status: "processed",
        status_details: null,
        scan_status: "scanned",
      });
      expect(Math.abs(file.created_at - clock.now().getTime() / 1000)).toBeLessThan(60);
      const [row] = await f.db.select().from(files).where(eq(files.id, file.id));
      expect(row!.mimeType, name).toBe(mime);
      expect(await client.files.retrieve(file.id)).toEqual(file);
      const content = await client.files.content(file.id);
      expect(content.headers.get("content-type"), name).toBe(mime);
      expect(Buffer.from(await content.arrayBuffer()).equals(bytes), name).toBe(true);
    }
    expectConsistent(await f.storage());
  });

  it("keeps a display name, never a path", async () => {
    const { client } = await f.customer();
    const file = await client.files.create({ file: await toFile(Buffer.from("q1\n"), "../../etc/q1.csv"), purpose: "assistants" });
    expect(file).toMatchObject({ filename: "q1.csv", purpose: "assistants" });
    const accented = await upload(client, Buffer.from("cv\n"), "résumé ✓.txt");
    expect(accented.filename).toBe("résumé ✓.txt");
    expect((await client.files.content(accented.id)).headers.get("content-disposition")).toBe(
      `attachment; filename="r_sum_ _.txt"; filename*=UTF-8''${encodeURIComponent("résumé ✓.txt")}`,
    );
  });

  it("lists with OpenAI pagination (limit, after, order, purpose) and the SDK's auto-pagination", async () => {
    const { client, key } = await f.customer();
    const listRaw = async (query: string) =>
      (await fetch(`${f.t.url}/v1/files?${query}`, { headers: { authorization: `Bearer ${key}` } })).json();
    expect(await listRaw("")).toEqual({ object: "list", data: [], first_id: null, last_id: null, has_more: false });

    const created = [];
    for (let i = 0; i < 5; i++) {
      created.push(await upload(client, Buffer.from(`file ${i}\n`), `f${i}.txt`, i === 4 ? "assistants" : "user_data"));
      clock.advance(1_000); // distinct created_at, so the order is unambiguous
    }
    const oldestFirst = created.map((file) => file.id);
    const newestFirst = [...oldestFirst].reverse();

    const page = await client.files.list({ limit: 2 });
    expect(page.data.map((file) => file.id)).toEqual(newestFirst.slice(0, 2));
    expect(page.has_more).toBe(true);
    const next = await client.files.list({ limit: 2, after: page.data[1]!.id });
    expect(next.data.map((file) => file.id)).toEqual(newestFirst.slice(2, 4));
    const last = await client.files.list({ limit: 2, after: next.data[1]!.id });
    expect([last.data.map((file) => file.id), last.has_more]).toEqual([newestFirst.slice(4), false]);

    const all = [];
    for await (const file of client.files.list({ limit: 2 })) all.push(file.id);
    expect(all).toEqual(newestFirst);
    const ascending = [];
    for await (const file of client.files.list({ limit: 2, order: "asc" })) ascending.push(file.id);
    expect(ascending).toEqual(oldestFirst);

    expect((await client.files.list({ order: "asc", after: oldestFirst[2]! })).data.map((file) => file.id)).toEqual(oldestFirst.slice(3));
    expect((await client.files.list({ purpose: "assistants" })).data.map((file) => file.id)).toEqual([oldestFirst[4]]);
    expect(await listRaw("limit=2&order=asc")).toMatchObject({ object: "list", first_id: oldestFirst[0], last_id: oldestFirst[1], has_more: true });

    expect(await refusal(client.files.list({ limit: 0 }))).toMatchObject({ status: 400, code: "invalid_request_error", param: "limit" });
    expect(await refusal(client.files.list({ order: "sideways" as never }))).toMatchObject({ status: 400, param: "order" });
    expect(await refusal(client.files.list({ after: "file-nope" }))).toMatchObject({ status: 400, param: "after" });
  });

  it("deletes: then retrieve, content and delete all answer 404 file_not_found, and the list no longer shows it", async () => {
    const { client } = await f.customer();
    const file = await upload(client, Buffer.from(`short-lived ${randomUUID()}\n`), "gone.txt");
    expect(await client.files.delete(file.id)).toEqual({ id: file.id, object: "file", deleted: true });
    expect(await refusal(client.files.retrieve(file.id))).toEqual(fileNotFound);
    expect(await refusal(client.files.content(file.id))).toEqual(fileNotFound);
    expect(await refusal(client.files.delete(file.id))).toEqual(fileNotFound);
    expect(await refusal(client.files.retrieve("file-doesnotexist"))).toEqual(fileNotFound);
    expect((await client.files.list()).data).toEqual([]);
    const [blob] = await f.db.select().from(blobs).where(eq(blobs.sha256, await f.shaOf(file.id)));
    expect(blob!.refCount).toBe(0);
  });
});

describe("refusals keep nothing", () => {
  /** Bytes that look random but are the same on every run (so no run can stumble on a real magic number). */
  const noise = (size: number) =>
    Buffer.concat(Array.from({ length: Math.ceil(size / 32) }, (_, i) => createHash("sha256").update(`noise ${i}`).digest())).subarray(0, size);

  it("refuses what is not a supported type, judged from the bytes", async () => {
    const { client, accountId } = await f.customer();
    const before = await f.storage();
    const zip = Buffer.from("504b0304140000000000000000000000000000000000000000000000000000", "hex");
    for (const [bytes, name] of [
      [Buffer.concat([Buffer.from("MZ\x90\x00\x03\x00\x00\x00"), Buffer.alloc(120)]), "tool.exe"],
      [Buffer.concat([Buffer.from("MZ\x90\x00\x03\x00\x00\x00"), Buffer.alloc(120)]), "looks-harmless.txt"],
      [zip, "archive.zip"],
      [zip, "archive.docx"],
      [noise(4096), "noise.bin"],
      [noise(4096), "noise.txt"],
      [Buffer.from([0x68, 0x69, 0xc3, 0x28, 0xa0, 0xa1, 0xff, 0xfe]), "broken.txt"],
      [Buffer.from("caf\xc3", "latin1"), "cut-short.md"], // a UTF-8 sequence cut off at the end
      [Buffer.from("text with a \0 NUL"), "nul.txt"],
      [Buffer.alloc(0), "empty.txt"],
    ] as const) {
      expect(await refusal(upload(client, bytes, name)), name).toEqual(invalidFormat);
    }
    expect(await f.fileRows(accountId)).toBe(0);
    expect(await f.settled()).toEqual(before);
  });

  it("refuses a missing or unknown purpose, a missing file part and a body that is not multipart", async () => {
    const { client, key, accountId } = await f.customer();
    const before = await f.storage();
    const post = (body: BodyInit, contentType?: string) => postRaw(key, body, contentType);
    const form = (fields: Record<string, string>, file?: string) => {
      const data = new FormData();
      for (const [name, value] of Object.entries(fields)) data.set(name, value);
      if (file !== undefined) data.set("file", new Blob([file]), "x.txt");
      return data;
    };

    expect(await refusal(client.files.create({ file: await toFile(Buffer.from("x\n"), "x.txt"), purpose: "nope" as never }))).toEqual({
      status: 400,
      code: "invalid_request_error",
      type: "invalid_request_error",
      param: "purpose",
    });
    expect(await errorBody(await post(form({}, "x\n")), 400)).toMatchObject({ code: "invalid_request_error", param: "purpose" });
    expect(await errorBody(await post(form({ purpose: "user_data" })), 400)).toMatchObject({ code: "invalid_request_error", param: "file" });
    const json = await post(JSON.stringify({ purpose: "user_data", file: "eA==" }), "application/json");
    expect(await errorBody(json, 400)).toMatchObject({ code: "invalid_request_error", type: "invalid_request_error" });
    expect(await errorBody(await post("", "multipart/form-data; boundary=x"), 400)).toMatchObject({ code: "invalid_request_error" });
    const twoFiles = form({ purpose: "user_data" }, "one\n");
    twoFiles.append("file", new Blob(["two\n"]), "two.txt");
    expect(await errorBody(await post(twoFiles), 400)).toMatchObject({ code: "invalid_request_error", param: "file" });
    const misnamed = form({ purpose: "user_data" });
    misnamed.set("document", new Blob(["x\n"]), "x.txt");
    expect(await errorBody(await post(misnamed), 400)).toMatchObject({ code: "invalid_request_error", param: "file" });

    expect(await f.fileRows(accountId)).toBe(0);
    expect(await f.settled()).toEqual(before);
  });

  it("answers a malformed multipart body with 400, keeps nothing and keeps serving", async () => {
    const { client, key, accountId } = await f.customer();
    const before = await f.storage();
    const post = (body: string, contentType: string) => postRaw(key, body, contentType);
    const part = (name: string, filename?: string) =>
      `--x\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ""}\r\n\r\n`;

    // No boundary: this was a 500.
    expect(await errorBody(await post("hello", "multipart/form-data"), 400)).toMatchObject({ code: "invalid_request_error" });
    // Bodies that end inside a file part: busboy's error on the part stream was uncaught and ended the server process.
    const cutShort = [`${part("purpose")}user_data\r\n${part("file", "a.txt")}abc`, `${part("file", "a.txt")}abc\r\n${part("file", "b.txt")}de`];
    for (const body of cutShort) {
      expect(await errorBody(await post(body, "multipart/form-data; boundary=x"), 400)).toMatchObject({ code: "invalid_request_error" });
    }
    expect(await f.settled()).toEqual(before);
    expect(await f.fileRows(accountId)).toBe(0);
    await expect(upload(client, Buffer.from("whole\n"), "whole.txt")).resolves.toMatchObject({ status: "processed" });
  });
});

describe("deduplication and isolation", () => {
  it("returns the same id for the same bytes and restarts their 30 days; other accounts get their own id over one copy on disk", async () => {
    const a = await f.customer();
    const b = await f.customer();
    const bytes = Buffer.from(`shared ${randomUUID()}\n`);
    const first = await upload(a.client, bytes, "shared.txt");
    clock.advance(5 * DAY_MS);
    const again = await upload(a.client, bytes, "shared-again.txt");
    expect(again.id).toBe(first.id);
    expect(again.expires_at! - first.expires_at!).toBeGreaterThanOrEqual(5 * 86_400 - 1);
    expect(await a.client.files.retrieve(first.id)).toEqual(again);
    expect(await f.liveFiles(a.client)).toBe(1);

    const theirs = await upload(b.client, bytes, "theirs.txt");
    expect(theirs.id).not.toBe(first.id);
    const sha256 = await f.shaOf(first.id);
    const stored = await f.storage();
    expect(stored.blobs.filter((blob) => blob.sha256 === sha256)).toMatchObject([{ refCount: 2, bytes: bytes.length }]);
    expect(stored.onDisk.filter((path) => path === blobPath(sha256))).toHaveLength(1);
    expectConsistent(stored);

    // Ids never cross accounts: B cannot see, read or delete A's file.
    for (const call of [() => b.client.files.retrieve(first.id), () => b.client.files.content(first.id), () => b.client.files.delete(first.id)]) {
      expect(await refusal(call())).toEqual(fileNotFound);
    }
    expect((await b.client.files.list()).data.map((file) => file.id)).toEqual([theirs.id]);
    expect(await downloaded(a.client, first.id)).toEqual(bytes);

    // A's deletion leaves B's copy whole, even after the sweep.
    await a.client.files.delete(first.id);
    await fileRetentionJob(f.t.platform.services.files, { everyMs: 1_000 }).run();
    expect(await downloaded(b.client, theirs.id)).toEqual(bytes);
    expect((await f.db.select().from(blobs).where(eq(blobs.sha256, sha256)))[0]!.refCount).toBe(1);
    expectConsistent(await f.storage());
  });

  it("keeps one file per account and one copy on disk when the same bytes arrive concurrently", async () => {
    const [a, b, c] = [await f.customer(), await f.customer(), await f.customer()];
    const bytes = Buffer.from(`racing twins ${randomUUID()}\n`);
    const fromA = await Promise.all(Array.from({ length: 5 }, (_, i) => upload(a.client, bytes, `twin${i}.txt`)));
    expect(new Set(fromA.map((file) => file.id)).size).toBe(1);
    const others = await Promise.all([b, c, b, c].map((who) => upload(who.client, bytes, "twin.txt")));
    expect(new Set(others.map((file) => file.id)).size).toBe(2);
    const sha256 = await f.shaOf(fromA[0]!.id);
    const stored = await f.storage();
    expect(stored.files.filter((file) => file.sha256 === sha256)).toHaveLength(3);
    expect(stored.blobs.filter((blob) => blob.sha256 === sha256)).toMatchObject([{ refCount: 3 }]);
    expectConsistent(stored);
  });

  it("gives deleted bytes uploaded again a new id; their bytes go only when the last file on them does", async () => {
    const { client } = await f.customer();
    const bytes = Buffer.from(`again ${randomUUID()}\n`);
    const first = await upload(client, bytes, "again.txt");
    const sha256 = await f.shaOf(first.id);
    await client.files.delete(first.id);

    // Uploaded again before the sweep: a new file on the same, still-present bytes.
    const second = await upload(client, bytes, "again.txt");
    expect(second.id).not.toBe(first.id);
    await fileRetentionJob(f.t.platform.services.files, { everyMs: 1_000 }).run();
    expect(await downloaded(client, second.id)).toEqual(bytes);
    expect((await f.storage()).onDisk).toContain(blobPath(sha256));

    // Deleted for good: the sweep removes the bytes, and a later upload stores them afresh.
    await client.files.delete(second.id);
    await fileRetentionJob(f.t.platform.services.files, { everyMs: 1_000 }).run();
    const swept = await f.storage();
    expect(swept.onDisk).not.toContain(blobPath(sha256));
    expect(swept.blobs.map((blob) => blob.sha256)).not.toContain(sha256);
    const third = await upload(client, bytes, "again.txt");
    expect(await downloaded(client, third.id)).toEqual(bytes);
    expectConsistent(await f.storage());
  });
});
