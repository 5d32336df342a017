import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import { fileTypeByMime, SUPPORTED_FILE_TYPES, sniffFileType, sniffImageBytes } from "../../src/domain/files/file-types.js";
import {
  deflatedPart,
  expectInvalidFileFormat,
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
  makeZipBomb,
  useTempDir,
  zipArchive,
} from "../support/documents.js";

const tmp = useTempDir();

/** Writes `bytes` under `filename` and sniffs them. */
async function sniff(filename: string, bytes: Uint8Array | string) {
  return sniffFileType(await tmp.write(filename, bytes), filename);
}

/** Sniffing must fail with invalid_file_format, saying why and listing what is supported. */
async function expectInvalid(filename: string, bytes: Uint8Array | string, message: RegExp) {
  const error = await expectInvalidFileFormat(sniff(filename, bytes), message);
  expect(error.message).toContain("Supported types: png, jpg, webp, gif, mp4, webm, mov, pdf, docx, xlsx, csv, txt, md.");
}

describe("SUPPORTED_FILE_TYPES (SPEC 7)", () => {
  it("is exactly SPEC 7's list, each with its category", () => {
    expect(SUPPORTED_FILE_TYPES.map((t) => `${t.ext}:${t.category}`)).toEqual([
      "png:image", "jpg:image", "webp:image", "gif:image",
      "mp4:video", "webm:video", "mov:video",
      "pdf:document", "docx:document", "xlsx:document",
      "csv:text", "txt:text", "md:text",
    ]);
  });
});

describe("fileTypeByMime (a stored file's mime_type back to its row)", () => {
  it("finds every supported MIME type and refuses any other as a bug", () => {
    for (const type of SUPPORTED_FILE_TYPES) expect(fileTypeByMime(type.mime)).toBe(type);
    expect(() => fileTypeByMime("application/zip")).toThrow("application/zip is not a supported file type");
    expect(() => fileTypeByMime("application/zip")).not.toThrow(DomainError);
  });
});

describe("sniffFileType: binary types from their bytes", () => {
  it.each([
    ["image.png", () => makePng(4, 3), "image/png", "png", "image"],
    ["photo.jpg", makeJpeg, "image/jpeg", "jpg", "image"],
    ["anim.gif", makeGif, "image/gif", "gif", "image"],
    ["pic.webp", makeWebp, "image/webp", "webp", "image"],
    ["clip.mp4", makeMp4Header, "video/mp4", "mp4", "video"],
    ["clip.webm", makeWebmHeader, "video/webm", "webm", "video"],
    ["clip.mov", makeMovHeader, "video/quicktime", "mov", "video"],
    ["report.pdf", () => makePdf(["Hello"]), "application/pdf", "pdf", "document"],
    ["letter.docx", () => makeDocx(["Hello"]), "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", "document"],
    ["sheet.xlsx", () => makeXlsx({ S: [[1, 2]] }), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", "document"],
  ])("%s → %s", async (filename, make, mime, ext, category) => {
    expect(await sniff(filename, await make())).toEqual({ mime, ext, category });
  });

  it("trusts the bytes, not the name: a PNG named .pdf is a PNG, a PDF named .txt is a PDF", async () => {
    expect(await sniff("not-really.pdf", makePng())).toMatchObject({ mime: "image/png" });
    expect(await sniff("notes.txt", await makePdf(["x"]))).toMatchObject({ mime: "application/pdf" });
  });

  it("sees a zip bomb as the docx it claims to be, without inflating it (file-type reads 1 MB at most)", async () => {
    const started = performance.now();
    expect(await sniff("bomb.docx", await makeZipBomb({ inflatedBytes: 50 * 1024 * 1024 }))).toMatchObject({ ext: "docx" });
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe("sniffFileType: text types from UTF-8 validity, subtype from the name", () => {
  it.each([
    ["data.csv", "a,b\n1,2\n", "text/csv", "csv"],
    ["DATA.CSV", "a,b\n", "text/csv", "csv"],
    ["readme.md", "# Title\n", "text/markdown", "md"],
    ["notes.markdown", "*hi*", "text/markdown", "md"],
    ["notes.txt", "héllo wörld — ✓ 😀", "text/plain", "txt"],
    ["no-extension", "plain words", "text/plain", "txt"],
    ["script.py", "print('hi')\n", "text/plain", "txt"],
    ["feed.txt", '<?xml version="1.0"?><a/>', "text/plain", "txt"], // file-type calls this XML: still text
  ])("%s → %s", async (filename, text, mime, ext) => {
    expect(await sniff(filename, text)).toEqual({ mime, ext, category: "text" });
  });

  it("accepts a multi-byte character split across the 64 KiB read chunks", async () => {
    const text = `${"a".repeat(64 * 1024 - 1)}é${"b".repeat(10)}`; // é's two bytes straddle the first chunk boundary
    expect(await sniff("long.txt", text)).toMatchObject({ mime: "text/plain" });
  });

  it.each([
    ["a lone continuation byte", Buffer.from([0x68, 0x69, 0x80, 0x21])],
    ["a Latin-1 é", Buffer.from("caf\xe9", "latin1")],
    ["a character cut off at the end", Buffer.from([0x61, 0xe2, 0x82])],
    ["a NUL byte", Buffer.from("text\0more")],
    ["UTF-16 text (NULs between ASCII letters)", Buffer.from("hello", "utf16le")],
  ])("refuses a .txt with %s", async (_case, bytes) => {
    await expectInvalid("notes.txt", bytes, /^Unsupported file format: the bytes match no supported type and are not UTF-8 text\./);
  });

  it("refuses invalid UTF-8 deep inside a large file, not only at its start", async () => {
    const bytes = Buffer.concat([Buffer.alloc(300 * 1024, 0x61), Buffer.from([0xff]), Buffer.alloc(10, 0x61)]);
    await expectInvalid("big.csv", bytes, /not UTF-8 text/);
  });
});

describe("sniffFileType: everything else is invalid_file_format", () => {
  it("refuses an empty file", async () => {
    await expectInvalid("empty.txt", "", /^The file is empty\./);
  });

  it("refuses a plain zip, naming what it is", async () => {
    await expectInvalid("archive.docx", zipArchive([deflatedPart("hello.txt", "hello")]), /the bytes are application\/zip \(\.zip\)/);
  });

  it("refuses a Windows executable (MZ header)", async () => {
    const exe = Buffer.alloc(128);
    exe.write("MZ", 0, "latin1");
    await expectInvalid("setup.pdf", exe, /the bytes are application\/x-msdownload \(\.exe\)/);
  });

  it("refuses audio: an ID3-tagged mp3 and an Ogg stream", async () => {
    const mp3 = Buffer.concat([Buffer.from("ID3\x04\x00\x00\x00\x00\x00\x00", "latin1"), Buffer.from([0xff, 0xfb, 0x90, 0x64]), Buffer.alloc(64)]);
    await expectInvalid("song.mp3", mp3, /the bytes are audio\/mpeg \(\.mp3\)/);
    const ogg = Buffer.concat([Buffer.from("OggS", "latin1"), Buffer.alloc(24), Buffer.from("\x01vorbis", "latin1"), Buffer.alloc(32)]);
    await expectInvalid("song.txt", ogg, /the bytes are audio\/ogg \(\.ogg\)/);
  });

  it("refuses a supported container with an unsupported brand: an m4a audio ftyp", async () => {
    const m4a = makeMp4Header();
    m4a.write("M4A ", 8, "latin1");
    await expectInvalid("voice.mp4", m4a, /the bytes are audio\/x-m4a/);
  });
});

describe("sniffImageBytes (SPEC 2: inline base64 images)", () => {
  it.each([
    ["png", makePng(), "image/png"],
    ["jpeg", makeJpeg(), "image/jpeg"],
    ["gif", makeGif(), "image/gif"],
    ["webp", makeWebp(), "image/webp"],
  ])("recognises %s", async (_name, bytes, mime) => {
    expect(await sniffImageBytes(new Uint8Array(bytes))).toMatchObject({ mime, category: "image" });
  });

  it("returns null for anything that is not one of the four image types", async () => {
    expect(await sniffImageBytes(await makePdf(["x"]))).toBeNull();
    expect(await sniffImageBytes(makeMp4Header())).toBeNull();
    expect(await sniffImageBytes(Buffer.from("just text"))).toBeNull();
    expect(await sniffImageBytes(new Uint8Array())).toBeNull();
  });
});
