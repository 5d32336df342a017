import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileRetentionJob } from "../../src/domain/jobs/file-retention.js";
import { blobs, files } from "../../src/domain/schema/index.js";
import { offsetClock } from "../support/clock.js";
import {
  makeDocx,
  makeEicar,
  makeGif,
  makeJpeg,
  makeMovHeader,
  makeMp4Header,
  makePdf,
  makePng,
  makeWebmHeader,
  makeWebp,
  makeXlsx,
  makeZipBomb,
} from "../support/documents.js";
import { testEnv } from "../support/env.js";
import { eventually } from "../support/eventually.js";
import { refusedBaseUrl } from "../support/fake-upstream.js";
import { storedState, textBytes } from "../support/files.js";
import { refusal } from "../support/api-errors.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

// SPEC 7 through the official SDK against the real server, real PostgreSQL and real clamd.

const MiB = 1024 * 1024;
const DAY = 86_400_000;
const clock = offsetClock();
const filesDir = mkdtempSync(join(tmpdir(), "sentx-files-"));
let t: TestPlatform;

beforeAll(async () => {
  t = await startTestPlatform({ clock, env: { FILES_DIR: filesDir } });
});
afterAll(async () => {
  await t.close();
  rmSync(filesDir, { recursive: true, force: true });
});

const upload = async (client: OpenAI, bytes: Buffer, name: string, purpose: "user_data" | "assistants" = "user_data") =>
  client.files.create({ file: await toFile(bytes, name), purpose });

const shaOf = async (id: string) => (await t.platform.services.db.select().from(files).where(eq(files.id, id)))[0]!.sha256;

async function customer() {
  // Room for the many uploads some tests make within a minute.
  const { key, accountId } = await t.createCustomer({ limits: { requestsPerMinute: 1_000 } });
  return { client: t.openai(key), accountId, key };
}

describe("upload, read, list, delete", () => {
  it("accepts every supported type from its bytes, and gives back OpenAI's file object and the exact bytes", async () => {
    const { client } = await customer();
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
      // The bytes decide, not the name.
      [makePng(3, 3), "really-a-png.pdf", "image/png"],
    ];
    for (const [bytes, name, mime] of cases) {
      const file = await upload(client, bytes, name);
      expect(file).toEqual({
        id: expect.stringMatching(/^file-/),
        object: "file",
        bytes: bytes.length,
        created_at: expect.any(Number),
        expires_at: file.created_at + 30 * 86_400,
        filename: name,
        purpose: "user_data",
        status: "processed",
        status_details: null,
      });
      const [row] = await t.platform.services.db.select().from(files).where(eq(files.id, file.id));
      expect(row!.mimeType, name).toBe(mime);
      expect(await client.files.retrieve(file.id)).toEqual(file);
      const content = await client.files.content(file.id);
      expect(content.headers.get("content-type")).toBe(mime);
      expect(Buffer.from(await content.arrayBuffer()).equals(bytes), name).toBe(true);
    }
  });

  it("lists with OpenAI pagination (limit, after, order, purpose) and the SDK's auto-pagination", async () => {
    const { client } = await customer();
    const created = [];
    for (let i = 0; i < 5; i++) {
      created.push(await upload(client, Buffer.from(`file ${i}\n`), `f${i}.txt`, i === 4 ? "assistants" : "user_data"));
      clock.advance(1_000); // distinct created_at, so the order is unambiguous
    }
    const newestFirst = [...created].reverse().map((f) => f.id);

    const page = await client.files.list({ limit: 2 });
    expect(page.data.map((f) => f.id)).toEqual(newestFirst.slice(0, 2));
    expect(page.has_more).toBe(true);
    const next = await client.files.list({ limit: 2, after: page.data[1]!.id });
    expect(next.data.map((f) => f.id)).toEqual(newestFirst.slice(2, 4));

    const all = [];
    for await (const file of client.files.list({ limit: 2 })) all.push(file.id);
    expect(all).toEqual(newestFirst);

    const ascending = await client.files.list({ order: "asc" });
    expect(ascending.data.map((f) => f.id)).toEqual(created.map((f) => f.id));
    const assistants = await client.files.list({ purpose: "assistants" });
    expect(assistants.data.map((f) => f.id)).toEqual([created[4]!.id]);

    const raw = await fetch(`${t.url}/v1/files?limit=2&order=asc`, { headers: { authorization: `Bearer ${client.apiKey}` } });
    expect(await raw.json()).toMatchObject({ object: "list", first_id: created[0]!.id, last_id: created[1]!.id, has_more: true });
    expect(await refusal(client.files.list({ limit: 0 }))).toMatchObject({ status: 400, param: "limit" });
  });

  it("deletes: then retrieve, content and delete all answer 404 file_not_found", async () => {
    const { client } = await customer();
    const file = await upload(client, Buffer.from("short-lived\n"), "gone.txt");
    expect(await client.files.delete(file.id)).toEqual({ id: file.id, object: "file", deleted: true });
    const notFound = { status: 404, code: "file_not_found", type: "not_found_error" };
    expect(await refusal(client.files.retrieve(file.id))).toMatchObject(notFound);
    expect(await refusal(client.files.content(file.id))).toMatchObject(notFound);
    expect(await refusal(client.files.delete(file.id))).toMatchObject(notFound);
    expect((await client.files.list()).data).toEqual([]);
  });
});

describe("refusals keep nothing", () => {
  it("refuses what is not a supported type, judged from the bytes", async () => {
    const { client, accountId } = await customer();
    const invalid = { status: 400, code: "invalid_file_format", type: "invalid_request_error", param: "file" };
    const zip = Buffer.from("504b0304140000000000000000000000000000000000000000000000000000", "hex");
    for (const [bytes, name] of [
      [Buffer.concat([Buffer.from("MZ\x90\x00\x03\x00\x00\x00"), Buffer.alloc(120)]), "tool.exe"],
      [zip, "archive.zip"],
      [Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xff, 0xfe]), "broken.txt"],
      [Buffer.from("text with a \0 NUL"), "nul.txt"],
      [Buffer.alloc(0), "empty.txt"],
    ] as const) {
      expect(await refusal(upload(client, bytes, name)), name).toMatchObject(invalid);
    }
    expect(await storedState(t.platform.services.db, filesDir, accountId)).toMatchObject({ fileRows: 0, staging: [] });
  });

  it("refuses a missing or unknown purpose, a missing file part and a body that is not multipart", async () => {
    const { client, key } = await customer();
    expect(await refusal(client.files.create({ file: await toFile(Buffer.from("x\n"), "x.txt"), purpose: "nope" as never }))).toMatchObject({
      status: 400,
      param: "purpose",
    });
    const form = new FormData();
    form.set("file", new Blob(["x\n"]), "x.txt");
    const noPurpose = await fetch(`${t.url}/v1/files`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: form });
    expect(noPurpose.status).toBe(400);
    expect((await noPurpose.json()).error).toMatchObject({ code: "invalid_request_error", param: "purpose" });
    const noFile = new FormData();
    noFile.set("purpose", "user_data");
    const missing = await fetch(`${t.url}/v1/files`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: noFile });
    expect(missing.status).toBe(400);
    expect((await missing.json()).error.param).toBe("file");
    const json = await fetch(`${t.url}/v1/files`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ purpose: "user_data" }),
    });
    expect(json.status).toBe(400);
    expect((await json.json()).error.type).toBe("invalid_request_error");
  });

  it("refuses the EICAR test file with 422 av_hit and keeps no trace of it", async () => {
    const { client, accountId } = await customer();
    const before = await storedState(t.platform.services.db, filesDir, accountId);
    expect(await refusal(upload(client, makeEicar(), "eicar.txt"))).toMatchObject({ status: 422, code: "av_hit", param: "file" });
    const after = await storedState(t.platform.services.db, filesDir, accountId);
    expect(after.fileRows).toBe(0);
    expect(after.onDisk).toEqual(before.onDisk);
    expect(after.blobs).toEqual(before.blobs);
    expect(after.staging).toEqual([]);
  });

  it("answers 503 and stores nothing when the scanner cannot be reached", async () => {
    const closedPort = `tcp://127.0.0.1:${new URL(await refusedBaseUrl()).port}`;
    const noScanner = await startTestPlatform({ env: { CLAMD_URL: closedPort, FILES_DIR: join(filesDir, "no-scanner") } });
    try {
      const { key, accountId } = await noScanner.createCustomer();
      expect(await refusal(upload(noScanner.openai(key), Buffer.from("hello\n"), "hello.txt"))).toMatchObject({
        status: 503,
        code: "service_unavailable",
        type: "server_error",
      });
      expect(await storedState(noScanner.platform.services.db, join(filesDir, "no-scanner"), accountId)).toMatchObject({
        fileRows: 0,
        onDisk: [],
        staging: [],
      });
    } finally {
      await noScanner.close();
    }
  });

  it("takes exactly 25 MB and refuses one byte more with 413 file_too_large while streaming", async () => {
    const { client, accountId } = await customer();
    const exact = await upload(client, textBytes(25 * MiB, randomUUID()), "exact.txt");
    expect(exact.bytes).toBe(26_214_400);
    expect(await refusal(upload(client, textBytes(25 * MiB + 1, randomUUID()), "over.txt"))).toMatchObject({
      status: 413,
      code: "file_too_large",
      param: "file",
    });
    const state = await storedState(t.platform.services.db, filesDir, accountId);
    expect(state.fileRows).toBe(1);
    expect(state.staging).toEqual([]);
  });

  it("keeps nothing of an upload whose client goes away mid-body", async () => {
    const { key, accountId } = await customer();
    const boundary = "----sentx-abandoned";
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.txt"\r\nContent-Type: text/plain\r\n\r\n`;
    const abort = new AbortController();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode(head));
        controller.enqueue(new Uint8Array(MiB).fill(0x61));
        sent += MiB;
        // Two MB in, the client disappears without ever finishing the form.
        if (sent >= 2 * MiB) setTimeout(() => abort.abort(), 100);
        await new Promise((r) => setTimeout(r, 20));
      },
    });
    const attempt = fetch(`${t.url}/v1/files`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": `multipart/form-data; boundary=${boundary}` },
      body,
      signal: abort.signal,
      duplex: "half",
    } as RequestInit);
    await expect(attempt).rejects.toThrow();
    const state = await eventually(() => storedState(t.platform.services.db, filesDir, accountId), (s) => s.staging.length === 0, 5_000);
    expect(state).toMatchObject({ fileRows: 0, staging: [] });
  });

  it("refuses a zip bomb dressed as a .docx with 400, quickly, and keeps serving", async () => {
    const { client } = await customer();
    const started = performance.now();
    expect(await refusal(upload(client, await makeZipBomb(), "bomb.docx"))).toMatchObject({ status: 400, code: "invalid_file_format" });
    expect(performance.now() - started).toBeLessThan(15_000);
    const reply = await client.chat.completions.create({ model: "sentx-v1", messages: [{ role: "user", content: "still there?" }] });
    expect(reply.choices[0]!.message.content).toContain("still there?");
  });
});

describe("caps (exact under concurrency)", () => {
  it("keeps at most 100 live files: of 10 concurrent uploads at 98, exactly 2 succeed", async () => {
    const { client, accountId } = await customer();
    for (let i = 0; i < 98; i++) await upload(client, Buffer.from(`small ${i}\n`), `s${i}.txt`);
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => upload(client, Buffer.from(`race ${i}\n`), `r${i}.txt`)));
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(2);
    for (const o of outcomes.filter((o) => o.status === "rejected")) {
      expect((o as PromiseRejectedResult).reason).toMatchObject({ status: 409, code: "max_files_reached" });
    }
    expect((await storedState(t.platform.services.db, filesDir, accountId)).fileRows).toBe(100);
    const [first] = (await client.files.list({ limit: 1 })).data;
    await client.files.delete(first!.id);
    await expect(upload(client, Buffer.from("room again\n"), "again.txt")).resolves.toMatchObject({ object: "file" });
  });

  it("keeps at most 500 MB per account: the upload past it is 409 storage_quota_exceeded", async () => {
    const { client } = await customer();
    for (let i = 0; i < 20; i++) await upload(client, textBytes(25 * MiB, `big ${i} ${randomUUID()}`), `big${i}.txt`);
    expect(await refusal(upload(client, Buffer.from("one more\n"), "more.txt"))).toMatchObject({
      status: 409,
      code: "storage_quota_exceeded",
      param: "file",
    });
  }, 120_000);
});

describe("deduplication and isolation", () => {
  it("returns the same id for the same bytes and restarts their 30 days; other accounts get their own id, one copy on disk", async () => {
    const a = await customer();
    const b = await customer();
    const bytes = Buffer.from(`shared ${randomUUID()}\n`);
    const first = await upload(a.client, bytes, "shared.txt");
    clock.advance(5 * DAY);
    const again = await upload(a.client, bytes, "shared-again.txt");
    expect(again.id).toBe(first.id);
    expect(again.expires_at! - first.expires_at!).toBeGreaterThanOrEqual(5 * 86_400 - 1);

    const theirs = await upload(b.client, bytes, "theirs.txt");
    expect(theirs.id).not.toBe(first.id);
    const sha256 = await shaOf(first.id);
    const [blob] = await t.platform.services.db.select().from(blobs).where(eq(blobs.sha256, sha256));
    expect(blob!.refCount).toBe(2);
    expect((await storedState(t.platform.services.db, filesDir, a.accountId)).onDisk.filter((p) => p.endsWith(sha256))).toHaveLength(1);

    // Ids never cross accounts.
    for (const call of [() => b.client.files.retrieve(first.id), () => b.client.files.content(first.id), () => b.client.files.delete(first.id)]) {
      expect(await refusal(call())).toMatchObject({ status: 404, code: "file_not_found" });
    }
    // A's deletion leaves B's copy whole.
    await a.client.files.delete(first.id);
    await fileRetentionJob(t.platform.services.files, { everyMs: 1_000 }).run();
    expect(Buffer.from(await (await b.client.files.content(theirs.id)).arrayBuffer()).equals(bytes)).toBe(true);
  });
});

describe("retention", () => {
  it("makes a file 404 the moment it expires, and the job then removes bytes no live file uses", async () => {
    const a = await customer();
    const b = await customer();
    const lonely = await upload(a.client, Buffer.from(`lonely ${randomUUID()}\n`), "lonely.txt");
    const shared = Buffer.from(`kept ${randomUUID()}\n`);
    const aShared = await upload(a.client, shared, "kept.txt");
    const [lonelySha, sharedSha] = [await shaOf(lonely.id), await shaOf(aShared.id)];

    clock.advance(30 * DAY - 1_000);
    const bShared = await upload(b.client, shared, "kept.txt"); // B's copy lives 30 days from now
    clock.advance(2_000);

    expect(await refusal(a.client.files.retrieve(lonely.id))).toMatchObject({ status: 404, code: "file_not_found" });
    expect(await refusal(a.client.files.content(aShared.id))).toMatchObject({ status: 404 });
    expect((await a.client.files.list()).data.map((f) => f.id)).not.toContain(lonely.id);

    await fileRetentionJob(t.platform.services.files, { everyMs: 1_000 }).run();
    const state = await storedState(t.platform.services.db, filesDir, a.accountId);
    expect(state.blobs.map((blob) => blob.sha256)).not.toContain(lonelySha);
    expect(state.onDisk.some((p) => p.endsWith(lonelySha))).toBe(false);
    expect(state.onDisk.some((p) => p.endsWith(sharedSha))).toBe(true);
    expect(Buffer.from(await (await b.client.files.content(bShared.id)).arrayBuffer()).equals(shared)).toBe(true);
  });

  it("runs through BullMQ by itself when Redis is configured", async () => {
    const ownDir = join(filesDir, "queued");
    const queued = await startTestPlatform({
      clock,
      env: { FILES_DIR: ownDir, REDIS_URL: testEnv.redisUrl, REDIS_PREFIX: `sentx-test:${randomUUID()}:`, FILE_RETENTION_SWEEP_SECONDS: "1" },
    });
    try {
      const { key, accountId } = await queued.createCustomer();
      await upload(queued.openai(key), Buffer.from(`queued ${randomUUID()}\n`), "queued.txt");
      expect((await storedState(queued.platform.services.db, ownDir, accountId)).onDisk).toHaveLength(1);
      clock.advance(31 * DAY);
      const onDisk = await eventually(async () => (await storedState(queued.platform.services.db, ownDir, accountId)).onDisk, (d) => d.length === 0, 15_000);
      expect(onDisk).toEqual([]);
    } finally {
      await queued.close();
    }
  });
});
