import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import {
  type AttachmentFiles,
  documentTextOf,
  MAX_INLINE_IMAGE_BYTES,
  resolveAttachments,
} from "../../src/domain/inference/attachments.js";
import { modelSchema } from "../../src/domain/inference/model-table.js";
import type { ChatMessage } from "../../src/domain/inference/provider.js";
import type { FileRecord } from "../../src/domain/schema/index.js";
import { makeGif, makeJpeg, makePng } from "../support/documents.js";

// The attachment rules of SPEC 2 on their own, over an in-memory Files port.

const record = (id: string, mimeType: string, extractedText: string | null, filename = `${id}.bin`): FileRecord => ({
  id,
  accountId: "acct_me",
  sha256: "0".repeat(64),
  filename,
  purpose: "user_data",
  bytes: 4,
  mimeType,
  extractedText,
  status: "processed",
  createdAt: new Date(0),
  expiresAt: new Date(0),
  deletedAt: null,
});

const stored = new Map<string, FileRecord>([
  ["file-doc", record("file-doc", "application/pdf", "Page one\n\nPage two", 'say "hi"\nplease.pdf')],
  ["file-img", record("file-img", "image/png", null)],
  ["file-vid", record("file-vid", "video/mp4", null)],
]);
const files: AttachmentFiles = {
  async get(accountId, fileId) {
    const file = stored.get(fileId);
    if (!file || accountId !== "acct_me") throw new DomainError("file_not_found", `No such file: ${fileId}.`, "file_id");
    return file;
  },
  readBytes: async () => Buffer.from("BYTE"),
};

const model = (capabilities: Array<"vision" | "files" | "video" | "tools"> = ["vision", "files"]) =>
  modelSchema.parse({ id: "m", upstreams: [{ provider: "demo" }], capabilities });

const user = (...content: unknown[]): ChatMessage[] => [{ role: "user", content: content as ChatMessage["content"] }];
const resolve = (messages: ChatMessage[], capabilities?: Array<"vision" | "files" | "video" | "tools">) =>
  resolveAttachments(messages, { accountId: "acct_me", model: model(capabilities), files });
const image = (url: string) => ({ type: "image_url", image_url: { url } });
const dataUrl = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString("base64")}`;

async function refusal(attempt: Promise<unknown>) {
  const error = await attempt.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(DomainError);
  return { code: (error as DomainError).code, param: (error as DomainError).param };
}

describe("resolveAttachments", () => {
  it("turns each kind of file reference into what the model reads, in order, and leaves plain text alone", async () => {
    const messages: ChatMessage[] = [
      { role: "system", content: "be brief" },
      ...user({ type: "text", text: "look" }, { type: "input_file", file_id: "file-doc" }, { type: "file", file: { file_id: "file-img" } }),
    ];
    const [system, resolved] = await resolve(messages, ["video"]);
    expect(system).toBe(messages[0]);
    const parts = resolved!.content as Array<Record<string, any>>;
    expect(parts[0]).toEqual({ type: "text", text: "look" });
    expect(documentTextOf(parts[1] as never)).toBe("Page one\n\nPage two");
    expect(parts[1]!.text).toContain('"say "hi" please.pdf" (application/pdf)');
    expect(parts[2]).toEqual({ type: "image_url", image_url: { url: "data:image/png;base64,QllURQ==" } });
    const [video] = await resolve(user({ type: "input_file", file_id: "file-vid" }), ["video"]);
    expect((video!.content as unknown[])[0]).toEqual({ type: "video_url", video_url: { url: "data:video/mp4;base64,QllURQ==" } });
  });

  it("refuses video for a model without the capability, and names the part", async () => {
    expect(await refusal(resolve(user({ type: "text", text: "x" }, { type: "input_file", file_id: "file-vid" })))).toEqual({
      code: "unsupported_attachment",
      param: "messages[0].content[1]",
    });
  });

  it("404s unknown ids with the part's path, and refuses file URLs and parts without an id", async () => {
    expect(await refusal(resolve(user({ type: "input_file", file_id: "file-nope" })))).toEqual({ code: "file_not_found", param: "messages[0].content[0]" });
    expect(await refusal(resolve(user({ type: "file", file: { file_url: "https://x/y.pdf" } })))).toEqual({
      code: "unsupported_url_scheme",
      param: "messages[0].content[0]",
    });
    expect((await refusal(resolve(user({ type: "file", file: { file_data: "QUJD" } })))).code).toBe("unsupported_attachment");
  });

  it("accepts real inline images of the declared type, image/jpg as jpeg too", async () => {
    for (const [mime, bytes] of [["image/png", makePng()], ["image/jpeg", makeJpeg()], ["image/jpg", makeJpeg()], ["image/gif", makeGif()]] as const) {
      const messages = user(image(dataUrl(mime, bytes)));
      expect(await resolve(messages)).toEqual(messages);
    }
  });

  it("refuses bad base64, a missing ;base64, bytes that contradict the type, and non-images", async () => {
    const param = "messages[0].content[0].image_url.url";
    for (const url of [
      "data:image/png;base64,AAA", // length not a multiple of 4
      "data:image/png;base64,AA*A",
      `data:image/png,${makePng().toString("base64")}`,
      dataUrl("image/png", makeGif()),
      dataUrl("image/png", Buffer.from("%PDF-1.7 not an image")),
    ]) {
      expect(await refusal(resolve(user(image(url)))), url).toEqual({ code: "invalid_file_format", param });
    }
  });

  it("takes an inline image of exactly 10 MB and refuses one byte more", async () => {
    const exactly = Buffer.alloc(MAX_INLINE_IMAGE_BYTES);
    makePng().copy(exactly);
    await expect(resolve(user(image(dataUrl("image/png", exactly))))).resolves.toBeTruthy();
    const over = Buffer.alloc(MAX_INLINE_IMAGE_BYTES + 1);
    makePng().copy(over);
    expect(await refusal(resolve(user(image(dataUrl("image/png", over)))))).toEqual({
      code: "image_too_large",
      param: "messages[0].content[0].image_url.url",
    });
  });
});
