import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import {
  type AttachmentFiles,
  documentTextOf,
  MAX_ATTACHED_DOCUMENT_CHARACTERS,
  MAX_ATTACHED_MEDIA_BYTES,
  MAX_INLINE_IMAGE_BYTES,
  resolveAttachments,
} from "../../src/domain/inference/attachments.js";
import { type Capability, modelSchema } from "../../src/domain/inference/model-table.js";
import type { ChatMessage, ContentPart } from "../../src/domain/inference/provider.js";
import type { FileRecord } from "../../src/domain/schema/index.js";
import { makeGif, makeJpeg, makeMp4Header, makePng, makeWebp } from "../support/documents.js";

// The attachment rules of SPEC 2 on their own, over an in-memory Files port
// that keeps the real port's contract: a live file of the caller's account,
// else file_not_found.

const ME = "acct_me";
const NOW = Date.now();
const DAY_MS = 86_400_000;
const PDF = "application/pdf";

const png = makePng(3, 1);
const jpeg = makeJpeg();
const mp4 = makeMp4Header();

const record = (id: string, fields: Partial<FileRecord> & Pick<FileRecord, "mimeType" | "sha256">): FileRecord => ({
  id,
  accountId: ME,
  filename: `${id}.bin`,
  purpose: "user_data",
  bytes: 0,
  extractedText: null,
  extractedTextTruncated: false,
  status: "processed",
  scanStatus: "scanned",
  createdAt: new Date(NOW - DAY_MS),
  expiresAt: new Date(NOW + 29 * DAY_MS),
  deletedAt: null,
  ...fields,
});

const blobs = new Map([
  ["sha-png", png],
  ["sha-jpeg", jpeg],
  ["sha-mp4", mp4],
]);
const stored = [
  record("file-pdf", { mimeType: PDF, sha256: "sha-pdf", filename: "report.pdf", extractedText: "Page one\n\nPage two" }),
  record("file-csv", { mimeType: "text/csv", sha256: "sha-csv", filename: "stock.csv", extractedText: "item,qty\nbolt,3" }),
  record("file-long", { mimeType: PDF, sha256: "sha-long", filename: "long.pdf", extractedText: "The beginning", extractedTextTruncated: true }),
  record("file-png", { mimeType: "image/png", sha256: "sha-png" }),
  record("file-jpeg", { mimeType: "image/jpeg", sha256: "sha-jpeg" }),
  record("file-mp4", { mimeType: "video/mp4", sha256: "sha-mp4", filename: "clip.mp4" }),
  record("file-theirs", { mimeType: PDF, sha256: "sha-pdf", accountId: "acct_them", extractedText: "theirs" }),
  record("file-deleted", { mimeType: PDF, sha256: "sha-pdf", status: "deleted", deletedAt: new Date(NOW - 1000) }),
  record("file-expired", { mimeType: PDF, sha256: "sha-pdf", expiresAt: new Date(NOW - 1000) }),
];

const files: AttachmentFiles = {
  async get(accountId, fileId) {
    const file = stored.find((f) => f.id === fileId);
    const live = file && file.accountId === accountId && file.status === "processed" && file.expiresAt.getTime() > NOW;
    if (!live) throw new DomainError("file_not_found", `No such file: ${fileId}.`, "file_id");
    return file;
  },
  async readBytes(file) {
    const bytes = blobs.get(file.sha256);
    if (!bytes) throw new Error(`no bytes stored for ${file.sha256}`);
    return bytes;
  },
};

const model = (capabilities: Capability[] = ["vision", "files"]) =>
  modelSchema.parse({ id: "m", upstreams: [{ provider: "demo" }], capabilities });

const user = (...content: unknown[]): ChatMessage => ({ role: "user", content: content as ContentPart[] });
const resolve = (messages: ChatMessage[], options: { capabilities?: Capability[]; port?: AttachmentFiles } = {}) =>
  resolveAttachments(messages, { accountId: ME, model: model(options.capabilities), files: options.port ?? files });
const partsOf = async (message: ChatMessage, capabilities?: Capability[]) =>
  (await resolve([message], { capabilities }))[0]!.content as Array<Record<string, any>>;

const inputFile = (file_id: string) => ({ type: "input_file", file_id });
const openAiFile = (file_id: string) => ({ type: "file", file: { file_id } });
const text = (value: string) => ({ type: "text", text: value });
const image = (url: string) => ({ type: "image_url", image_url: { url } });
const dataUrl = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString("base64")}`;
const block = (name: string, mime: string, body: string) => ({ type: "text", text: `<<<file "${name}" (${mime})>>>\n${body}\n<<<end of file>>>` });

/** The DomainError the attempt failed with, as its code and param. */
async function refusal(attempt: Promise<unknown>) {
  const error = await attempt.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  return { code: (error as DomainError).code, param: (error as DomainError).param };
}

/**
 * The base64 of `bytes` zero bytes, written out instead of encoded, so a
 * 10 MiB image costs the test one string and no buffer.
 */
const zerosBase64 = (bytes: number): string =>
  "A".repeat(Math.floor(bytes / 3) * 4) + ["", "AA==", "AAA="][bytes % 3];

/** A PNG of exactly `size` decoded bytes: a real PNG, padded with zeros after its end. */
function pngDataUrlOfSize(size: number): string {
  const head = Buffer.concat([png, Buffer.alloc((3 - (png.length % 3)) % 3)]); // base64 of a multiple of 3 bytes has no padding
  return `data:image/png;base64,${head.toString("base64")}${zerosBase64(size - head.length)}`;
}

describe("messages without attachments", () => {
  it("are returned as they came: string and null content, text parts, parts of other types", async () => {
    const messages: ChatMessage[] = [
      { role: "system", content: "be brief" },
      { role: "user", content: "hello" },
      { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] },
      { role: "tool", content: "42", tool_call_id: "c1" },
      user(text("look"), { type: "input_audio", input_audio: { data: "QUJD", format: "wav" } }),
    ];
    const before = structuredClone(messages);
    const resolved = await resolve(messages);
    resolved.slice(0, 4).forEach((message, i) => expect(message).toBe(messages[i]));
    expect(resolved).toEqual(before);
    expect(messages).toEqual(before); // nothing is resolved in place
  });
});

describe("Files API references", () => {
  it("turn documents and text files into delimited text, in both part forms", async () => {
    expect(await partsOf(user(inputFile("file-pdf"), openAiFile("file-csv")))).toEqual([
      block("report.pdf", PDF, "Page one\n\nPage two"),
      block("stock.csv", "text/csv", "item,qty\nbolt,3"),
    ]);
  });

  it("tell the model when only the beginning of a document's text was kept", async () => {
    const [part] = await partsOf(user(inputFile("file-long")));
    expect(part).toEqual(block("long.pdf", `${PDF}; only the beginning of its text`, "The beginning"));
    expect(documentTextOf(part as ContentPart)).toBe("The beginning");
  });

  it("turn images into data URLs of the stored bytes and type, and video too when the model takes video", async () => {
    expect(await partsOf(user(openAiFile("file-png"), inputFile("file-jpeg"), inputFile("file-mp4")), ["video"])).toEqual([
      image(dataUrl("image/png", png)),
      image(dataUrl("image/jpeg", jpeg)),
      { type: "video_url", video_url: { url: dataUrl("video/mp4", mp4) } },
    ]);
  });

  it("keep every part in its place, across messages", async () => {
    const inline = image(dataUrl("image/gif", makeGif()));
    const resolved = await resolve([
      { role: "system", content: "be brief" },
      user(text("first"), inputFile("file-pdf")),
      { role: "assistant", content: "ok" },
      user(openAiFile("file-png"), text("second"), inline, openAiFile("file-csv")),
    ]);
    expect(resolved.map((m) => m.role)).toEqual(["system", "user", "assistant", "user"]);
    expect(resolved[1]!.content).toEqual([text("first"), block("report.pdf", PDF, "Page one\n\nPage two")]);
    expect(resolved[3]!.content).toEqual([
      image(dataUrl("image/png", png)),
      text("second"),
      inline,
      block("stock.csv", "text/csv", "item,qty\nbolt,3"),
    ]);
  });

  it("refuse video for a model without the video capability, naming the part", async () => {
    const messages = [user(text("a")), { role: "assistant", content: "b" } as const, user(text("watch"), inputFile("file-mp4"))];
    expect(await refusal(resolve(messages, { capabilities: ["vision", "files", "tools"] }))).toEqual({
      code: "unsupported_attachment",
      param: "messages[2].content[1]",
    });
  });

  it.each(["file-nope", "file-theirs", "file-deleted", "file-expired"])("404 %s with the path of the part that named it", async (id) => {
    for (const part of [inputFile(id), openAiFile(id)]) {
      const messages = [user(text("a")), user(text("b"), inputFile("file-pdf"), part)];
      expect(await refusal(resolve(messages))).toEqual({ code: "file_not_found", param: "messages[1].content[2]" });
    }
  });

  it("let any other failure of the Files port through unchanged", async () => {
    const outage = new Error("connection refused");
    const down: AttachmentFiles = { ...files, get: () => Promise.reject(outage) };
    await expect(resolve([user(inputFile("file-pdf"))], { port: down })).rejects.toBe(outage);
  });

  it("refuse parts without a usable id (unsupported_attachment)", async () => {
    for (const part of [{ type: "file", file: { file_data: "QUJD", filename: "a.pdf" } }, { type: "file" }, inputFile(""), { type: "input_file", file_id: 7 }]) {
      expect(await refusal(resolve([user(part)])), JSON.stringify(part)).toEqual({ code: "unsupported_attachment", param: "messages[0].content[0]" });
    }
  });
});

/** The files port, counting its calls per file id. */
function countingPort(records: FileRecord[], bytesOf: (file: FileRecord) => Buffer = () => png) {
  const gets = new Map<string, number>();
  const reads = new Map<string, number>();
  const bump = (counts: Map<string, number>, id: string) => counts.set(id, (counts.get(id) ?? 0) + 1);
  const port: AttachmentFiles = {
    async get(_, fileId) {
      bump(gets, fileId);
      const file = records.find((f) => f.id === fileId);
      if (!file) throw new DomainError("file_not_found", "No such file.", "file_id");
      return file;
    },
    async readBytes(file) {
      bump(reads, file.id);
      return bytesOf(file);
    },
  };
  return { port, gets, reads };
}

describe("what references may add, counted per reference, each file read once", () => {
  const MiB = 1024 * 1024;
  const bigImage = (id: string, bytes: number) => record(id, { mimeType: "image/png", sha256: `sha-${id}`, bytes });
  const bigText = (id: string, characters: number) =>
    record(id, { mimeType: "text/plain", sha256: `sha-${id}`, filename: `${id}.txt`, extractedText: "x".repeat(characters) });

  it("looks each distinct file up and reads it once, however often it is named, and gives every reference the same part", async () => {
    const { port, gets, reads } = countingPort(stored.filter((f) => ["file-png", "file-pdf"].includes(f.id)));
    const [first, second] = await resolve(
      [user(inputFile("file-png"), openAiFile("file-png"), inputFile("file-pdf")), user(openAiFile("file-pdf"), inputFile("file-png"))],
      { port },
    );
    expect(Object.fromEntries(gets)).toEqual({ "file-png": 1, "file-pdf": 1 });
    expect(Object.fromEntries(reads)).toEqual({ "file-png": 1 }); // a document's text comes with its record
    const pngPart = image(dataUrl("image/png", png));
    const pdfPart = block("report.pdf", PDF, "Page one\n\nPage two");
    expect(first!.content).toEqual([pngPart, pngPart, pdfPart]);
    expect(second!.content).toEqual([pdfPart, pngPart]);
  });

  it(`takes images and video up to ${MAX_ATTACHED_MEDIA_BYTES / MiB} MiB in all, and refuses the reference that passes it before reading any`, async () => {
    const half = bigImage("file-half", MAX_ATTACHED_MEDIA_BYTES / 2);
    const within = countingPort([half]);
    await resolve([user(inputFile("file-half"), inputFile("file-half"))], { port: within.port });
    expect(within.reads.get("file-half")).toBe(1);

    const over = countingPort([half, bigImage("file-byte", 1)]);
    const error = await resolve([user(text("look"), inputFile("file-half")), user(openAiFile("file-half"), inputFile("file-byte"))], { port: over.port }).catch(
      (e: DomainError) => e,
    );
    expect(error).toMatchObject({ code: "invalid_request_error", param: "messages[1].content[1]" });
    expect((error as DomainError).message).toContain("32.0 MiB");
    expect(over.reads.size).toBe(0);
  });

  it(`takes documents' text up to ${MAX_ATTACHED_DOCUMENT_CHARACTERS} characters in all, counting a document named twice twice`, async () => {
    const million = bigText("file-million", MAX_ATTACHED_DOCUMENT_CHARACTERS / 2);
    const { port, gets } = countingPort([million, bigText("file-one", 1)]);
    await resolve([user(inputFile("file-million"), openAiFile("file-million"))], { port });
    expect(await refusal(resolve([user(inputFile("file-million"), openAiFile("file-million"), inputFile("file-one"))], { port }))).toEqual({
      code: "invalid_request_error",
      param: "messages[0].content[2]",
    });
    expect(gets.get("file-million")).toBe(2); // once per request
  });

  it("refuses an earlier bad part before a later reference over the budget, and reads nothing either way", async () => {
    const { port, reads } = countingPort([bigImage("file-huge", MAX_ATTACHED_MEDIA_BYTES + 1)]);
    expect(await refusal(resolve([user(inputFile("file-nope"), inputFile("file-huge"))], { port }))).toEqual({
      code: "file_not_found",
      param: "messages[0].content[0]",
    });
    expect(await refusal(resolve([user(inputFile("file-huge"), inputFile("file-nope"))], { port }))).toEqual({
      code: "invalid_request_error",
      param: "messages[0].content[0]",
    });
    expect(reads.size).toBe(0);
  });
});

describe("inline data: images", () => {
  it.each([
    ["image/png", png],
    ["image/jpeg", jpeg],
    ["image/jpg", jpeg], // the common alias
    ["image/webp", makeWebp()],
    ["image/gif", makeGif()],
    ["IMAGE/PNG", png],
  ] as const)("pass %s through unchanged when the bytes are that type", async (mime, bytes) => {
    const part = { type: "image_url", image_url: { url: dataUrl(mime, bytes), detail: "low" } };
    expect((await partsOf(user(text("look"), part)))[1]).toBe(part);
  });

  it("read ;BASE64 and DATA: case-insensitively, as data URLs are", async () => {
    const url = `DATA:image/png;BASE64,${png.toString("base64")}`;
    expect(await partsOf(user(image(url)))).toEqual([image(url)]);
  });

  it("accept a data URL with parameters before ;base64", async () => {
    const url = `data:image/png;name=dot.png;base64,${png.toString("base64")}`;
    expect(await partsOf(user(image(url)))).toEqual([image(url)]);
  });

  it.each([
    ["a length that is not a multiple of 4", "data:image/png;base64,iVBORw0KGgoA"],
    ["characters outside base64", `data:image/png;base64,${png.toString("base64").slice(0, -4)}*A==`],
    ["base64url characters", "data:image/png;base64,iVBO-w0_"],
    ["padding in the middle", "data:image/png;base64,iV==BORw"],
    ["too much padding", "data:image/png;base64,iVBOR==="],
    ["no ;base64", `data:image/png,${png.toString("base64")}`],
    ["no comma", "data:image/png;base64"],
    ["no data", "data:image/png;base64,"],
    ["a GIF declared as png", dataUrl("image/png", makeGif())],
    ["a PNG declared as jpeg", dataUrl("image/jpeg", png)],
    ["a PNG declared as nothing", dataUrl("", png)],
    ["a PNG declared as a video", dataUrl("video/mp4", png)],
    ["a PDF", dataUrl("image/png", Buffer.from("%PDF-1.7\n%âãÏÓ\n1 0 obj\n"))],
    ["a BMP, which is no supported image type", dataUrl("image/bmp", Buffer.from("Qk06AAAAAAAAADYAAAAoAAAAAQAAAAEAAAABABgAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAA////AA==", "base64"))],
    ["an SVG", dataUrl("image/svg+xml", Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))],
  ])("refuse %s as invalid_file_format", async (_, url) => {
    const messages = [user(text("x")), user(text("look"), image(url))];
    expect(await refusal(resolve(messages))).toEqual({ code: "invalid_file_format", param: "messages[1].content[1].image_url.url" });
  });

  it("take exactly 10 MiB decoded and refuse one byte more", async () => {
    expect([0, 1, 2, 3, 4, 5, 6].map(zerosBase64)).toEqual([0, 1, 2, 3, 4, 5, 6].map((n) => Buffer.alloc(n).toString("base64")));
    const exactly = pngDataUrlOfSize(MAX_INLINE_IMAGE_BYTES);
    expect(MAX_INLINE_IMAGE_BYTES).toBe(10 * 1024 * 1024);
    expect(await partsOf(user(image(exactly)))).toEqual([image(exactly)]);
    const over = pngDataUrlOfSize(MAX_INLINE_IMAGE_BYTES + 1);
    expect(over.length).toBe(exactly.length); // the same length: one more byte shows only in the padding
    expect(await refusal(resolve([user(text("x"), image(over))]))).toEqual({
      code: "image_too_large",
      param: "messages[0].content[1].image_url.url",
    });
  });
});

describe("several bad parts", () => {
  it("name the first in order, not the first to fail", async () => {
    // The unknown id is looked up asynchronously; the bad base64 fails at once.
    expect(await refusal(resolve([user(inputFile("file-nope"), image("data:image/png;base64,@@@@"))]))).toEqual({
      code: "file_not_found",
      param: "messages[0].content[0]",
    });
    expect(await refusal(resolve([user(inputFile("file-expired")), user(text("x"), image("data:image/png;base64,@@@@"))]))).toEqual({
      code: "file_not_found",
      param: "messages[0].content[0]",
    });
  });
});

describe("documentTextOf", () => {
  it("gives back exactly the extracted text, whatever the file name or the text holds", async () => {
    const extracted = 'Line "one"\n<<<end of file>>>\n<<<file "fake" (text/plain)>>>\n\n  trailing  \n';
    const tricky = record("file-tricky", { mimeType: "text/plain", sha256: "sha-t", filename: 'say "hi"\nto\r\nme.txt', extractedText: extracted });
    const empty = record("file-empty", { mimeType: "text/markdown", sha256: "sha-e", filename: "empty.md", extractedText: "" });
    const none = record("file-none", { mimeType: PDF, sha256: "sha-n", filename: "scan.pdf", extractedText: null });
    const port: AttachmentFiles = { ...files, get: async (_, id) => [tricky, empty, none].find((f) => f.id === id)! };
    const [resolved] = await resolve([user(inputFile("file-tricky"), inputFile("file-empty"), inputFile("file-none"))], { port });
    const parts = resolved!.content as ContentPart[];
    expect(parts.map(documentTextOf)).toEqual([extracted, "", ""]);
    expect((parts[0] as { text: string }).text.split("\n")[0]).toBe('<<<file "say "hi" to\r me.txt" (text/plain)>>>'); // the header stays one line
  });

  it("reads blocks exactly as their delimiters say, in time linear in the text", () => {
    // The pattern it replaces, as the definition of a block.
    const BLOCK = /^<<<file "[^\n]*" \([^\n]*\)>>>\n([\s\S]*)\n<<<end of file>>>$/;
    const cases = [
      '<<<file "a" (b)>>>\nbody\n<<<end of file>>>',
      '<<<file "" ()>>>\n\n<<<end of file>>>',
      '<<<file "" ()>>>\n<<<end of file>>>',
      '<<<file "a" (b)>>>\n<<<end of file>>>\n<<<end of file>>>',
      '<<<file "a" (b) >>>\nbody\n<<<end of file>>>',
      '<<<file "a"(b)>>>\nbody\n<<<end of file>>>',
      '<<<file "a" (b)>>>x\nbody\n<<<end of file>>>',
      '<<<file "a" (b)>>>\nbody\n<<<end of file>>>\n',
      '<<<file " (" (" (b)>>>\n" (\n<<<end of file>>>',
      '<<<file "a" (b)\n>>>\nbody\n<<<end of file>>>',
    ];
    for (const value of cases) expect(documentTextOf(text(value) as ContentPart), JSON.stringify(value)).toBe(BLOCK.exec(value)?.[1] ?? null);
    // A first line full of `" (` took the pattern quadratic time: seconds at this size.
    const hostile = text(`<<<file "${'" ('.repeat(30_000)}\n<<<end of file>>>`) as ContentPart;
    const started = performance.now();
    expect(documentTextOf(hostile)).toBeNull();
    expect(performance.now() - started).toBeLessThan(100);
  });

  it("is null for the caller's own text and for other parts", () => {
    for (const part of [
      text("hello"),
      text('<<<file "a.txt" (text/plain)>>>\nno end marker'),
      text('<<<file "a.txt" (text/plain)>>> one line <<<end of file>>>'),
      image(dataUrl("image/png", png)),
      inputFile("file-pdf"),
    ]) {
      expect(documentTextOf(part as ContentPart), JSON.stringify(part)).toBeNull();
    }
  });
});
