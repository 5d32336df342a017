import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DEFAULT_EXTRACTION_LIMITS, type ExtractionLimits, extractText } from "../../src/domain/files/extraction/index.js";
import { SUPPORTED_FILE_TYPES, type SniffedFileType } from "../../src/domain/files/file-types.js";
import {
  DOCX_CONTENT_TYPES,
  deflatedPart,
  expectInvalidFileFormat,
  makeDocx,
  makePdf,
  makePdfStreamBomb,
  makePng,
  makeXlsx,
  makeZipBomb,
  useTempDir,
  zipArchive,
} from "../support/documents.js";

// Every document is parsed in a child process started with tsx (see
// run-in-child.ts), so these tests also prove that works under vitest.

const type = (ext: string): SniffedFileType => SUPPORTED_FILE_TYPES.find((t) => t.ext === ext)!;
const PDF = type("pdf");
const DOCX = type("docx");
const XLSX = type("xlsx");

const tmp = useTempDir();

async function extract(name: string, bytes: Uint8Array | string, fileType: SniffedFileType, limits?: Partial<ExtractionLimits>) {
  return extractText(await tmp.write(name, bytes), fileType, limits);
}

describe("extractText: documents", () => {
  it("PDF: every page's text, pages separated by a blank line", async () => {
    const result = await extract("two-pages.pdf", await makePdf(["First page text", "Second page, with a comma"]), PDF);
    expect(result).toEqual({ text: "First page text\n\nSecond page, with a comma", truncated: false, pages: 2 });
  });

  it("PDF: stops at maxPages, reports the full page count and marks the text truncated", async () => {
    const result = await extract("three-pages.pdf", await makePdf(["one", "two", "three"]), PDF, { maxPages: 2 });
    expect(result).toEqual({ text: "one\n\ntwo", truncated: true, pages: 3 });
  });

  it("DOCX: the paragraphs' raw text", async () => {
    const result = await extract("letter.docx", await makeDocx(["Dear reader,", "Ünïcödé survives — ✓", "Regards"]), DOCX);
    expect(result).toEqual({ text: "Dear reader,\n\nÜnïcödé survives — ✓\n\nRegards", truncated: false });
  });

  it("XLSX: every sheet as CSV-like rows — quoting, numbers, formula results, ISO dates", async () => {
    const bytes = await makeXlsx({
      People: [
        ["name", "age", "note"],
        ["Doe, Jane", 42, 'says "hi"'],
        ["Line\nbreak", 1.5, { formula: "B2*2", result: 84 }],
        ["born", new Date(Date.UTC(1990, 4, 17)), true],
      ],
      "Q2 Totals": [
        ["region", "total"],
        ["north", 1_000_000],
        [null, -3],
      ],
    });
    expect(await extract("book.xlsx", bytes, XLSX)).toEqual({
      text: [
        "# Sheet: People",
        "name,age,note",
        '"Doe, Jane",42,"says ""hi"""',
        '"Line\nbreak",1.5,84',
        "born,1990-05-17,true",
        "",
        "# Sheet: Q2 Totals",
        "region,total",
        "north,1000000",
        ",-3",
      ].join("\n"),
      truncated: false,
      sheets: 2,
    });
  });
});

describe("extractText: text files as they are", () => {
  it.each([
    ["data.csv", "csv", 'id,name\n1,"Doe, Jane"\n2,Ünal\n'],
    ["readme.md", "md", "# Title\n\n- item *one*\n- item `two`\n"],
    ["notes.txt", "txt", "plain words\r\nwith CRLF and emoji 😀\n"],
  ])("%s", async (name, ext, text) => {
    expect(await extract(name, text, type(ext))).toEqual({ text, truncated: false });
  });

  it("refuses images and videos as a programming error, not a client error", async () => {
    const path = await tmp.write("image.png", makePng());
    await expect(extractText(path, type("png"))).rejects.toThrow(TypeError);
    await expect(extractText(path, type("mp4"))).rejects.toThrow("video/mp4 (video) has no text to extract");
  });
});

describe("extractText: maxChars cuts the text, it is not an error", () => {
  it("cuts a text file at maxChars and says so", async () => {
    expect(await extract("long.txt", "abcdefghij".repeat(10), type("txt"), { maxChars: 25 })).toEqual({
      text: "abcdefghijabcdefghijabcde",
      truncated: true,
    });
  });

  it("never leaves half of a surrogate pair at the cut", async () => {
    expect(await extract("emoji.txt", "ab😀cd", type("txt"), { maxChars: 3 })).toEqual({ text: "ab", truncated: true });
  });

  it("cuts a text file larger than a read chunk without decoding all of it", async () => {
    const result = await extract("big.md", "x".repeat(1_000_000), type("md"), { maxChars: 100_000 });
    expect(result.text).toHaveLength(100_000);
    expect(result.truncated).toBe(true);
  });

  it("cuts extracted documents too", async () => {
    expect(await extract("cut.pdf", await makePdf(["Hello world"]), PDF, { maxChars: 5 })).toEqual({ text: "Hello", truncated: true, pages: 1 });
    expect(await extract("cut.docx", await makeDocx(["Hello world"]), DOCX, { maxChars: 5 })).toEqual({ text: "Hello", truncated: true });
  });

  it("uses the defaults for limits passed as undefined", async () => {
    expect(DEFAULT_EXTRACTION_LIMITS).toMatchObject({ maxPages: 500, maxChars: 1_000_000, maxDecompressedBytes: 100 * 1024 * 1024, timeoutMs: 20_000 });
    expect(await extract("undefined-limits.pdf", await makePdf(["ok"]), PDF, { timeoutMs: undefined, maxChars: undefined })).toMatchObject({ text: "ok" });
  });
});

describe("extractText: zip bombs (SPEC 7)", () => {
  it("refuses a docx whose document.xml inflates to 210 MB, quickly and without the server's memory growing", async () => {
    const bomb = await tmp.write("bomb.docx", await makeZipBomb());
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    await expectInvalidFileFormat(extractText(bomb, DOCX), /^The document could not be read: it is too large when decompressed \(over 100 MB\)\.$/);
    expect(performance.now() - started).toBeLessThan(DEFAULT_EXTRACTION_LIMITS.timeoutMs);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * 1024 * 1024); // inflated here, it would be 210 MB
  });

  it("refuses a bomb whose headers lie about its size, by inflating it and counting", async () => {
    const liar = await makeZipBomb({ declaredBytes: 1_000 });
    await expectInvalidFileFormat(extract("liar.docx", liar, DOCX), /too large when decompressed \(an entry is larger than its header declares\)/);
  });

  it("refuses an entry compressed beyond maxCompressionRatio, even under the total", async () => {
    const dense = await makeZipBomb({ inflatedBytes: 20 * 1024 * 1024 });
    await expectInvalidFileFormat(extract("dense.docx", dense, DOCX), /too large when decompressed \(an entry is compressed \d+:1, limit 100:1\)/);
  });

  it("refuses a zip with more entries than maxZipEntries", async () => {
    await expectInvalidFileFormat(extract("parts.docx", await makeDocx(["x"]), DOCX, { maxZipEntries: 3 }), /too many parts \(\d+ zip entries, limit 3\)/);
  });

  it("applies the same guard to xlsx", async () => {
    await expectInvalidFileFormat(extract("bomb.xlsx", await makeZipBomb({ inflatedBytes: 120 * 1024 * 1024 }), XLSX), /too large when decompressed/);
  });
});

describe("extractText: malformed documents", () => {
  it.each([
    ["random bytes", () => randomBytes(4096)],
    ["a PDF cut in half", async () => (await makePdf(["Some text"])).subarray(0, 700)],
    ["only the PDF header", async () => Buffer.from("%PDF-1.7\n%âãÏÓ\n")],
  ])("PDF: %s", async (_case, make) => {
    const error = await expectInvalidFileFormat(extract("bad.pdf", await make(), PDF), /^The document could not be read: it is damaged or not a valid PDF\.$/);
    expect(String(error.cause)).toMatch(/PDF/); // pdf.js's own reason, kept for the log
  });

  it.each([
    ["random bytes", () => randomBytes(4096)],
    ["a zip of random bytes", () => zipArchive([deflatedPart("[Content_Types].xml", DOCX_CONTENT_TYPES), deflatedPart("word/document.xml", randomBytes(4096))])],
    ["a zip without word/document.xml", () => zipArchive([deflatedPart("[Content_Types].xml", DOCX_CONTENT_TYPES)])],
  ])("DOCX: %s", async (_case, make) => {
    await expectInvalidFileFormat(extract("bad.docx", make(), DOCX), /^The document could not be read: it is damaged or not a valid DOCX file\.$/);
  });

  it.each([
    ["random bytes", async () => randomBytes(4096)],
    ["a docx (a zip without a workbook)", () => makeDocx(["x"])],
  ])("XLSX: %s", async (_case, make) => {
    await expectInvalidFileFormat(extract("bad.xlsx", await make(), XLSX), /^The document could not be read: it is damaged or not a valid XLSX file\.$/);
  });
});

describe("extractText: the parsing process is bounded and disposable", () => {
  it("gives up after timeoutMs", async () => {
    await expectInvalidFileFormat(
      extract("slow.pdf", await makePdf(["fine, but the clock is short"]), PDF, { timeoutMs: 30 }),
      /^The document could not be read: it took too long to process \(limit 0\.03 s\)\.$/,
    );
  });

  it("reports a parser that runs out of heap as too much memory", async () => {
    const rows = Array.from({ length: 5_000 }, (_, i) => [i, `row ${i}`, i / 7]);
    await expectInvalidFileFormat(extract("heavy.xlsx", await makeXlsx({ S: rows }), XLSX, { maxHeapMb: 16 }), /needs too much memory to process/);
  });

  it.skipIf(process.platform !== "linux")("kills a PDF whose streams inflate outside the heap, once its RSS passes maxRssMb", async () => {
    const bomb = await makePdfStreamBomb(400 * 1024 * 1024);
    await expectInvalidFileFormat(extract("stream-bomb.pdf", bomb, PDF, { maxRssMb: 300 }), /^The document could not be read: it needs too much memory to process\.$/);
  });

  it("runs several extractions in parallel, each in its own process", async () => {
    const jobs = await Promise.all(
      [0, 1].flatMap((i) => [
        makePdf([`pdf ${i}`]).then((bytes) => extract(`p${i}.pdf`, bytes, PDF)),
        makeDocx([`docx ${i}`]).then((bytes) => extract(`d${i}.docx`, bytes, DOCX)),
        makeXlsx({ [`S${i}`]: [[`xlsx ${i}`]] }).then((bytes) => extract(`x${i}.xlsx`, bytes, XLSX)),
      ]),
    );
    expect(jobs.map((r) => r.text)).toEqual(["pdf 0", "docx 0", "# Sheet: S0\nxlsx 0", "pdf 1", "docx 1", "# Sheet: S1\nxlsx 1"]);
  });
});
