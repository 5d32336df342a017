import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import {
  assertDeclaredTypeMatches,
  fileTypeByMime,
  SUPPORTED_FILE_TYPES,
  sniffFileType,
  sniffImageBytes,
} from "../../src/domain/files/file-types.js";
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

  it("reads the bytes, not the name: a PNG named .pdf is a PNG, a PDF named .txt is a PDF (assertDeclaredTypeMatches refuses such names)", async () => {
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

describe("assertDeclaredTypeMatches: what the client declared must not contradict the bytes", () => {
  /** The sniffed type of bytes with this (supported) extension. */
  const bytesOf = (ext: string) => SUPPORTED_FILE_TYPES.find((t) => t.ext === ext)!;
  /** What the check threw for bytes of type `ext` declared as `filename` and `contentType`; undefined when it took them. */
  const outcome = (ext: string, filename: string, contentType?: string) => {
    try {
      assertDeclaredTypeMatches(bytesOf(ext), { filename, contentType });
      return undefined;
    } catch (error) {
      return error;
    }
  };

  it("takes a binary type under its own name and type, or their aliases, in any case and with parameters", () => {
    expect(outcome("png", "shot.png", "image/png")).toBeUndefined();
    expect(outcome("png", "SHOT.PNG", "Image/PNG; name=shot.png")).toBeUndefined();
    expect(outcome("jpg", "photo.jpg", "image/jpeg")).toBeUndefined();
    expect(outcome("jpg", "photo.jpeg", "image/jpg")).toBeUndefined();
    expect(outcome("jpg", "photo.JPEG", "image/pjpeg")).toBeUndefined();
    expect(outcome("docx", "letter.docx", bytesOf("docx").mime)).toBeUndefined();
  });

  it("takes text under any text name or type: SPEC 7's three, JSON, XML and their +json/+xml kin", () => {
    for (const name of ["a.txt", "a.md", "a.markdown", "a.csv", "a.json", "a.xml", "a.ics", "a.vcf", "a.vtt"]) {
      expect(outcome("txt", name), name).toBeUndefined();
    }
    for (const type of ["text/csv", "text/markdown", "text/html", "application/json", "application/ld+json", "application/xml", "image/svg+xml"]) {
      expect(outcome("txt", "notes", type), type).toBeUndefined();
    }
  });

  it("takes what declares nothing: no type, application/octet-stream, no extension, an unknown one, or a malformed type", () => {
    expect(outcome("png", "scan")).toBeUndefined();
    expect(outcome("png", "scan", "application/octet-stream")).toBeUndefined();
    expect(outcome("png", "scan.backup")).toBeUndefined();
    expect(outcome("txt", "script.py", "text/x-python")).toBeUndefined();
    expect(outcome("txt", "data.dat")).toBeUndefined(); // file-type's name for registry hives, but .dat holds any data
    expect(outcome("png", "scan", "not a type")).toBeUndefined();
    expect(outcome("png", "scan", `image/${"x".repeat(200)}`)).toBeUndefined(); // longer than RFC 6838 allows: never echoed
  });

  it.each([
    ["png", "fake.pdf", undefined, "The file name says .pdf, but the bytes are image/png (.png)."],
    ["jpg", "PHOTO.PNG", undefined, "The file name says .png, but the bytes are image/jpeg (.jpg)."],
    ["pdf", "report.docx", undefined, "The file name says .docx, but the bytes are application/pdf (.pdf)."],
    ["docx", "letter.pdf", undefined, `The file name says .pdf, but the bytes are ${bytesOf("docx").mime} (.docx).`],
    ["txt", "fake.png", undefined, "The file name says .png, but the bytes are UTF-8 text."],
    ["png", "notes.md", undefined, "The file name says .md, but the bytes are image/png (.png)."],
    ["txt", "setup.exe", undefined, "The file name says .exe, but the bytes are UTF-8 text."],
    ["png", "song.mp3", undefined, "The file name says .mp3, but the bytes are image/png (.png)."],
    ["png", "shot.png", "application/pdf", "The file's Content-Type says application/pdf, but the bytes are image/png (.png)."],
    ["png", "shot", "Text/CSV; charset=utf-8", "The file's Content-Type says text/csv, but the bytes are image/png (.png)."],
    ["png", "logo", "image/svg+xml", "The file's Content-Type says image/svg+xml, but the bytes are image/png (.png)."],
    ["jpg", "photo.jpg", "image/png", "The file's Content-Type says image/png, but the bytes are image/jpeg (.jpg)."],
    ["txt", "notes.txt", "application/pdf", "The file's Content-Type says application/pdf, but the bytes are UTF-8 text."],
    ["txt", "code.ts", "video/mp2t", "The file's Content-Type says video/mp2t, but the bytes are UTF-8 text."],
    ["txt", "notes", "application/zip", "The file's Content-Type says application/zip, but the bytes are UTF-8 text."],
    // Both wrong: the Content-Type is the one named.
    ["txt", "fake.png", "image/gif", "The file's Content-Type says image/gif, but the bytes are UTF-8 text."],
  ])("refuses %s bytes named %s, declared %s", (ext, filename, contentType, message) => {
    const error = outcome(ext, filename, contentType);
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({
      code: "invalid_file_format",
      status: 400,
      param: "file",
      message: `${message} Send the file with a name and Content-Type that match its content.`,
    });
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
