import { eq } from "drizzle-orm";
import type OpenAI from "openai";
import { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { files } from "../../src/domain/schema/index.js";
import { offsetClock } from "../support/clock.js";
import { makeJpeg, makePdf, makePng } from "../support/documents.js";
import { DAY_MS, errorBody, expectConsistent, type FilesPlatform, startFilesPlatform } from "../support/files.js";

// SPEC 7 through the real server, PostgreSQL and clamd: the bytes decide a
// file's type, and a Content-Type or a file name that says otherwise is
// refused with 400 invalid_file_format, keeping nothing of the upload. What
// declares nothing, or agrees with the bytes under a usual alias, is taken.

const clock = offsetClock();
let f: FilesPlatform;
beforeAll(async () => {
  f = await startFilesPlatform({ clock });
});
afterAll(() => f.close());

/** SPEC 8's whole error for a mismatch: what was declared, what the bytes are, and what to do. */
const mismatch = (message: string) => ({
  type: "invalid_request_error",
  code: "invalid_file_format",
  param: "file",
  message: `${message} Send the file with a name and Content-Type that match its content.`,
});

/** An upload through the SDK, with the part's Content-Type set, or left to the SDK (application/octet-stream). */
const upload = async (client: OpenAI, bytes: Buffer, name: string, type?: string) =>
  client.files.create({ file: await toFile(bytes, name, type ? { type } : {}), purpose: "user_data" });

/** A raw POST /v1/files with a file part holding `bytes`, so the error body is seen exactly as sent. */
const post = (key: string, bytes: Buffer, name: string, type?: string) => {
  const form = new FormData();
  form.set("purpose", "user_data");
  form.set("file", new Blob([new Uint8Array(bytes)], type ? { type } : {}), name);
  return fetch(`${f.t.url}/v1/files`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: form });
};

const refusal = async (response: Response) => errorBody(response, 400);

const mimeTypeOf = async (fileId: string) => (await f.db.select({ mimeType: files.mimeType }).from(files).where(eq(files.id, fileId)))[0]!.mimeType;

describe("a declaration that contradicts the bytes is refused, and nothing of it is kept", () => {
  it("refuses a file name whose extension names another type than the bytes", async () => {
    const { key, accountId } = await f.customer();
    const before = await f.storage();
    const cases: Array<[Buffer, string, string]> = [
      [Buffer.from("just some words\n"), "fake.png", "The file name says .png, but the bytes are UTF-8 text."],
      [makePng(), "fake.pdf", "The file name says .pdf, but the bytes are image/png (.png)."],
      [makeJpeg(), "photo.png", "The file name says .png, but the bytes are image/jpeg (.jpg)."],
      [await makePdf(["Quarterly report"]), "report.docx", "The file name says .docx, but the bytes are application/pdf (.pdf)."],
      [makePng(), "notes.txt", "The file name says .txt, but the bytes are image/png (.png)."],
      [makePng(), "data.json", "The file name says .json, but the bytes are image/png (.png)."],
      // Formats SentX does not take but can recognise: text is no executable, a PNG no zip.
      [Buffer.from("echo hello\n"), "setup.exe", "The file name says .exe, but the bytes are UTF-8 text."],
      [makePng(), "photos.zip", "The file name says .zip, but the bytes are image/png (.png)."],
    ];
    for (const [bytes, name, message] of cases) {
      expect(await refusal(await post(key, bytes, name)), name).toEqual(mismatch(message));
    }
    expect(await f.fileRows(accountId)).toBe(0);
    expect(await f.settled()).toEqual(before);
  });

  it("refuses a multipart Content-Type that names another type than the bytes, whatever the name says", async () => {
    const { key, accountId } = await f.customer();
    const before = await f.storage();
    const cases: Array<[Buffer, string, string, string]> = [
      [makePng(), "image.png", "application/pdf", "The file's Content-Type says application/pdf, but the bytes are image/png (.png)."],
      [makePng(), "scan", "image/jpeg", "The file's Content-Type says image/jpeg, but the bytes are image/png (.png)."],
      [makePng(), "scan", "text/csv", "The file's Content-Type says text/csv, but the bytes are image/png (.png)."],
      [Buffer.from("a,b\n1,2\n"), "table.csv", "image/png", "The file's Content-Type says image/png, but the bytes are UTF-8 text."],
      [Buffer.from("a,b\n1,2\n"), "table", "application/zip", "The file's Content-Type says application/zip, but the bytes are UTF-8 text."],
    ];
    for (const [bytes, name, type, message] of cases) {
      expect(await refusal(await post(key, bytes, name, type)), `${name} as ${type}`).toEqual(mismatch(message));
    }
    expect(await f.fileRows(accountId)).toBe(0);
    expect(await f.settled()).toEqual(before);
  });

  it("refuses a misnamed copy of bytes the account already has, without restarting that file's retention", async () => {
    const { client, key } = await f.customer();
    const png = makePng(5, 5);
    const kept = await upload(client, png, "kept.png");
    clock.advance(DAY_MS);
    expect(await refusal(await post(key, png, "kept.pdf"))).toEqual(mismatch("The file name says .pdf, but the bytes are image/png (.png)."));
    expect(await client.files.retrieve(kept.id)).toEqual(kept);
    expect(await f.liveFiles(client)).toBe(1);
    expectConsistent(await f.settled());
  });
});

describe("a declaration that agrees with the bytes, or says nothing, is taken", () => {
  it("takes the usual aliases and any text name for text, but not a neighbouring type", async () => {
    const { client, key } = await f.customer();
    // Distinct bytes each: the same bytes twice would be deduplicated into the first file.
    const cases: Array<[Buffer, string, string | undefined, string]> = [
      [makeJpeg(), "photo.jpeg", "image/jpg", "image/jpeg"],
      [Buffer.concat([makeJpeg(), Buffer.from([0])]), "photo.JPG", "image/jpeg", "image/jpeg"],
      [makePng(), "shot.png", "image/png", "image/png"],
      [makePng(4, 4), "shot", undefined, "image/png"], // no extension, and the SDK's application/octet-stream
      [makePng(6, 6), "scan.backup", "application/octet-stream", "image/png"], // an extension that names no known format
      [Buffer.from('{"a": 1}\n'), "data.json", "application/json", "text/plain"],
      [Buffer.from("# Notes\n"), "notes.md", "text/markdown", "text/markdown"],
      [Buffer.from("a,b\n"), "table.csv", "text/csv", "text/csv"],
      [Buffer.from("a\tb\n"), "table.txt", "text/tab-separated-values", "text/plain"],
      [Buffer.from('<?xml version="1.0"?><feed/>\n'), "feed.xml", "application/xml", "text/plain"],
      [Buffer.from("print('hi')\n"), "script.py", "text/x-python", "text/plain"],
      [Buffer.from("no name, no type\n"), "untitled", undefined, "text/plain"],
    ];
    for (const [bytes, name, type, mime] of cases) {
      const file = await upload(client, bytes, name, type);
      expect(file, name).toMatchObject({ object: "file", status: "processed", filename: name });
      expect(await mimeTypeOf(file.id), name).toBe(mime);
    }
    // image/jpg is image/jpeg, but image/png is not.
    expect(await refusal(await post(key, makeJpeg(), "photo.jpg", "image/png"))).toEqual(
      mismatch("The file's Content-Type says image/png, but the bytes are image/jpeg (.jpg)."),
    );
    expectConsistent(await f.settled());
  });

  it("reads a file part sent without a Content-Type as undeclared (multipart's text/plain default), so its name alone is checked", async () => {
    const { key } = await f.customer();
    const bare = (name: string, bytes: Buffer) =>
      fetch(`${f.t.url}/v1/files`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "multipart/form-data; boundary=x" },
        body: Buffer.concat([
          Buffer.from('--x\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'),
          Buffer.from(`--x\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n\r\n`),
          bytes,
          Buffer.from("\r\n--x--\r\n"),
        ]),
      });
    const png = makePng(7, 7);
    const taken = await bare("plain-client.png", png);
    expect(taken.status).toBe(200);
    expect(await mimeTypeOf(((await taken.json()) as { id: string }).id)).toBe("image/png");
    expect(await refusal(await bare("plain-client.pdf", makePng(8, 8)))).toEqual(
      mismatch("The file name says .pdf, but the bytes are image/png (.png)."),
    );
    expectConsistent(await f.settled());
  });
});
