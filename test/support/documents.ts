// Real bytes of every file type SPEC 7 names, built in the test instead of
// committed as binary fixtures, plus hostile ones (zip bombs, EICAR).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { constants, crc32, createDeflate, createDeflateRaw, deflateRawSync } from "node:zlib";
import { Document, Packer, Paragraph } from "docx";
import ExcelJS from "exceljs";
import { PDFDocument, StandardFonts } from "pdf-lib";
import { PNG } from "pngjs";
import { afterAll, beforeAll, expect } from "vitest";
import { DomainError } from "../../src/domain/errors.js";

/**
 * A temporary folder for one test file's documents, created before its tests
 * and removed after them; `write` returns the path of what it wrote.
 */
export function useTempDir(): { write(name: string, bytes: Uint8Array | string): Promise<string> } {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sentx-files-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  return {
    async write(name, bytes) {
      const path = join(dir, name);
      await writeFile(path, bytes);
      return path;
    },
  };
}

/**
 * Awaits `attempt` and asserts it failed with SPEC 7's `400
 * invalid_file_format` on `file`, with a message matching `message`.
 */
export async function expectInvalidFileFormat(attempt: Promise<unknown>, message: RegExp): Promise<DomainError> {
  const error = await attempt.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  expect(error).toMatchObject({ code: "invalid_file_format", status: 400, param: "file" });
  expect((error as DomainError).message).toMatch(message);
  return error as DomainError;
}

// ---------------------------------------------------------------- images

export function makePng(width = 2, height = 2): Buffer {
  const png = new PNG({ width, height });
  png.data.fill(0x80); // every RGBA byte 128: half-transparent grey
  return PNG.sync.write(png);
}

/**
 * An 8×8 mid-grey baseline JPEG, written marker by marker: one grey
 * component, all-ones quantisation, and Huffman tables with a single 1-bit
 * code each (DC category 0, AC end-of-block), so the whole scan is the bits
 * "00" padded with ones (0x3F). Checked to decode with Pillow.
 */
export function makeJpeg(): Buffer {
  const oneCodeTable = (tableClassAndId: number) => [0xff, 0xc4, 0x00, 0x14, tableClassAndId, 1, ...new Array<number>(15).fill(0), 0x00];
  return Buffer.from([
    0xff, 0xd8, // SOI
    0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, // APP0 "JFIF"
    0xff, 0xdb, 0x00, 0x43, 0x00, ...new Array<number>(64).fill(1), // DQT: table 0, all ones
    0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00, // SOF0: 8 bit, 8×8, 1 component
    ...oneCodeTable(0x00), // DHT: DC table 0
    ...oneCodeTable(0x10), // DHT: AC table 0
    0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, // SOS
    0x3f, // entropy-coded data
    0xff, 0xd9, // EOI
  ]);
}

/** The classic 1×1 transparent GIF89a (43 bytes), from its well-known base64. */
export function makeGif(): Buffer {
  return Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");
}

/** A 1×1 lossless (VP8L) WebP: the probe image Modernizr uses to detect WebP support. */
export function makeWebp(): Buffer {
  return Buffer.from("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==", "base64");
}

// ---------------------------------------------------------------- video (signatures only)

/** An ISO-BMFF `ftyp` box with the given major brand: what file-type reads to tell mp4 from mov. */
function ftypBox(brand: string): Buffer {
  const box = Buffer.alloc(24);
  box.writeUInt32BE(24, 0);
  box.write("ftyp", 4, "latin1");
  box.write(brand, 8, "latin1");
  box.writeUInt32BE(0x200, 12); // minor version
  box.write(`${brand}mp41`, 16, "latin1"); // compatible brands
  return box;
}

export const makeMp4Header = (): Buffer => ftypBox("isom");
export const makeMovHeader = (): Buffer => ftypBox("qt  ");

/** An EBML header whose DocType is "webm". */
export function makeWebmHeader(): Buffer {
  const docType = [0x42, 0x82, 0x84, ...Buffer.from("webm")];
  return Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x80 | docType.length, ...docType]);
}

// ---------------------------------------------------------------- documents

export async function makePdf(pages: string[]): Promise<Buffer> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (const text of pages) pdf.addPage([595, 842]).drawText(text, { x: 50, y: 780, size: 12, font, lineHeight: 16 });
  return Buffer.from(await pdf.save());
}

export async function makeDocx(paragraphs: string[]): Promise<Buffer> {
  const doc = new Document({ sections: [{ children: paragraphs.map((text) => new Paragraph(text)) }] });
  return Packer.toBuffer(doc);
}

/** One worksheet per key; each row is passed to exceljs as is (formulas as `{ formula, result }`). */
export async function makeXlsx(sheets: Record<string, unknown[][]>): Promise<Buffer> {
  const workbook = new ExcelJS.Workbook();
  for (const [name, rows] of Object.entries(sheets)) workbook.addWorksheet(name).addRows(rows);
  return Buffer.from(await workbook.xlsx.writeBuffer());
}

// ---------------------------------------------------------------- hostile files

/** One deflated zip entry: its compressed bytes and what the headers declare about them. */
interface ZipPart {
  name: string;
  data: Buffer;
  crc32: number;
  uncompressedSize: number;
}

const DOS_DATE_1980_01_01 = 0x21;

export function deflatedPart(name: string, content: Buffer | string): ZipPart {
  const raw = Buffer.from(content);
  return { name, data: deflateRawSync(raw), crc32: crc32(raw), uncompressedSize: raw.length };
}

/**
 * A zip archive written by hand (no zip library is a dependency of ours):
 * local headers and data, then the central directory; no zip64, no data
 * descriptors, so the central directory and local headers declare the same.
 */
export function zipArchive(parts: ZipPart[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const part of parts) {
    const name = Buffer.from(part.name, "utf8");
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0 (deflate)
    local.writeUInt16LE(0x0800, 6); // names are UTF-8
    local.writeUInt16LE(8, 8); // method: deflate
    local.writeUInt16LE(DOS_DATE_1980_01_01, 12);
    local.writeUInt32LE(part.crc32, 14);
    local.writeUInt32LE(part.data.length, 18);
    local.writeUInt32LE(part.uncompressedSize, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4); // version made by
    local.copy(central, 6, 4, 28); // version needed … name length: the same fields as the local header
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, part.data);
    centrals.push(central, name);
    offset += local.length + name.length + part.data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(parts.length, 8);
  end.writeUInt16LE(parts.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/** The [Content_Types].xml that makes file-type (and Word) see a zip as a docx. */
export const DOCX_CONTENT_TYPES = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`;

/**
 * `bytes` spaces, deflated as a stream (raw for zip entries, zlib-wrapped for
 * PDF's FlateDecode): 1 MiB at a time, so a 210 MB bomb costs the test
 * ~200 KB of memory, not 210 MB.
 */
async function deflatedSpaces(bytes: number, wrapper: "raw" | "zlib"): Promise<{ data: Buffer; crc32: number }> {
  const block = Buffer.alloc(1024 * 1024, 0x20);
  const options = { level: constants.Z_BEST_COMPRESSION };
  const deflate = wrapper === "raw" ? createDeflateRaw(options) : createDeflate(options);
  const output: Buffer[] = [];
  deflate.on("data", (chunk: Buffer) => output.push(chunk));
  const done = new Promise((resolve, reject) => deflate.on("end", resolve).on("error", reject));
  let crc = 0;
  for (let left = bytes; left > 0; left -= block.length) {
    const chunk = left >= block.length ? block : block.subarray(0, left);
    crc = crc32(chunk, crc);
    if (!deflate.write(chunk)) await new Promise((resolve) => deflate.once("drain", resolve));
  }
  deflate.end();
  await done;
  return { data: Buffer.concat(output), crc32: crc };
}

/**
 * A docx-shaped zip ([Content_Types].xml + word/document.xml) whose
 * document.xml inflates to `inflatedBytes` of spaces (default 210 MB).
 * `declaredBytes` makes the headers lie about that size (the bomb that
 * passes a central-directory-only check).
 */
export async function makeZipBomb({ inflatedBytes = 210 * 1024 * 1024, declaredBytes }: { inflatedBytes?: number; declaredBytes?: number } = {}): Promise<Buffer> {
  const spaces = await deflatedSpaces(inflatedBytes, "raw");
  return zipArchive([
    deflatedPart("[Content_Types].xml", DOCX_CONTENT_TYPES),
    { name: "word/document.xml", data: spaces.data, crc32: spaces.crc32, uncompressedSize: declaredBytes ?? inflatedBytes },
  ]);
}

/**
 * A one-page PDF whose content stream is a FlateDecode bomb: `inflatedBytes`
 * of spaces. pdf.js inflates a stream whole, into buffers outside the V8 heap
 * (so no --max-old-space-size stops it), which is what the RSS watch is for.
 */
export async function makePdfStreamBomb(inflatedBytes: number): Promise<Buffer> {
  const { data } = await deflatedSpaces(inflatedBytes, "zlib");
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
    Buffer.concat([Buffer.from(`<< /Length ${data.length} /Filter /FlateDecode >>\nstream\n`), data, Buffer.from("\nendstream")]),
  ];
  const chunks: Buffer[] = [Buffer.from("%PDF-1.4\n")];
  const offsets: number[] = [];
  let length = chunks[0]!.length;
  objects.forEach((body, i) => {
    const chunk = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`), Buffer.from(body), Buffer.from("\nendobj\n")]);
    offsets.push(length);
    chunks.push(chunk);
    length += chunk.length;
  });
  const xref = offsets.map((offset) => `${String(offset).padStart(10, "0")} 00000 n \n`).join("");
  chunks.push(Buffer.from(`xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${xref}trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${length}\n%%EOF\n`));
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------- antivirus

/**
 * The EICAR antivirus test file (eicar.org): harmless, but every scanner
 * reports it. Joined from parts so this source file is not itself flagged.
 */
export function makeEicar(): Buffer {
  return Buffer.from(["X5O!P%@AP[4\\PZX54(P^)7CC)7}$", "EICAR-STANDARD-", "ANTIVIRUS-TEST-FILE!$H+H*"].join(""), "ascii");
}
