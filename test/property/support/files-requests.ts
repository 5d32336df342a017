import fc from "fast-check";
import { makeGif, makePng } from "../../support/documents.js";
import { type HostileRequest, printable } from "./exchange.js";
import { hostileText, percentEncode, percentEncodedValue, usually } from "./hostile-text.js";

// Files API requests (SPEC 7): ids and list parameters of any text,
// percent-encoded as a client would put them in a URL (kept far below Node's
// 16 KB header limit, whose 431 is Node's, not the platform's), and uploads
// well-formed or not.

export const PURPOSES = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"];

const FILES_PATH = "/v1/files/";

/** Whether `segment`, in a URL, still names one file (not ".." or a path that normalises elsewhere). */
const staysAFileId = (segment: string) => {
  const path = new URL(`http://platform${FILES_PATH}${segment}`).pathname;
  return path.startsWith(FILES_PATH) && path.length > FILES_PATH.length && !path.slice(FILES_PATH.length).includes("/");
};

const RAW_SEGMENTS = ["%", "%zz", "%2F", "%00", "%FF", "file-%00abc", "file-%2e%2e", "..%2F..%2Fetc%2Fpasswd", "%C0%AE%C0%AE"];

/** A file id as it goes in the path: real, well-formed unknown, hostile (encoded), broken escapes. */
const fileIdSegment = (realFileIds: string[]) =>
  fc
    .oneof(
      fc.constantFrom(...realFileIds),
      fc.stringMatching(/^file-[0-9A-Za-z]{24}$/),
      percentEncodedValue(3_000),
      fc.constantFrom(...RAW_SEGMENTS),
    )
    .filter(staysAFileId);

export interface FileIdRequest extends HostileRequest {
  /** The id the server should see, when the segment decodes at all. */
  decodedId: string | null;
}

const decoded = (segment: string) => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
};

/** GET /v1/files/{id}, GET …/content and DELETE /v1/files/{id}. */
export const fileIdRequests = (apiKey: string, realFileIds: string[]): fc.Arbitrary<FileIdRequest> =>
  fc
    .record({ segment: fileIdSegment(realFileIds), call: fc.constantFrom("retrieve", "content", "delete") })
    .map(({ segment, call }) =>
      printable({
        method: call === "delete" ? ("DELETE" as const) : ("GET" as const),
        path: `${FILES_PATH}${segment}${call === "content" ? "/content" : ""}`,
        headers: { authorization: `Bearer ${apiKey}` },
        decodedId: decoded(segment),
      }),
    );

const queryValue = <T>(valid: fc.Arbitrary<T>) => usually(valid.map(String), hostileText(3_000)).map((value) => percentEncode(String(value)));

const LIMIT_TEXTS = ["0", "-1", "1e400", "NaN", "Infinity", "0x10", "1.5", " 5", "", "10001", "99999999999999999999"];
const RAW_QUERY_TAILS = ["&&", "=", "%", "limit=%zz", "limit", "purpose=%00", "order=%FF", "after=%", "limit=1&limit=2"];

/** GET /v1/files with list parameters of any text (OpenAI's limit, after, order, purpose). */
export const listRequests = (apiKey: string, realFileIds: string[]): fc.Arbitrary<HostileRequest> =>
  fc
    .record(
      {
        limit: fc.oneof(queryValue(fc.integer({ min: 1, max: 100 })), fc.constantFrom(...LIMIT_TEXTS)),
        after: queryValue(fc.oneof(fc.constantFrom(...realFileIds), fc.stringMatching(/^file-[0-9A-Za-z]{24}$/))),
        order: queryValue(fc.constantFrom("asc", "desc")),
        purpose: queryValue(fc.constantFrom(...PURPOSES)),
        tail: fc.constantFrom(...RAW_QUERY_TAILS),
      },
      { requiredKeys: [] },
    )
    .map(({ tail, ...parameters }) => {
      const pairs = Object.entries(parameters).map(([name, value]) => `${name}=${value}`);
      if (tail) pairs.push(tail);
      return printable({
        method: "GET" as const,
        path: `/v1/files${pairs.length ? `?${pairs.join("&")}` : ""}`,
        headers: { authorization: `Bearer ${apiKey}` },
      });
    });

// ---------------------------------------------------------------- uploads

const magic = (prefix: string | Buffer) => fc.uint8Array({ maxLength: 2_048 }).map((rest) => Buffer.concat([Buffer.from(prefix), rest]));

/** File bytes: arbitrary, text, and the magic numbers of every supported type followed by junk. */
const fileBytes = fc.oneof(
  fc.uint8Array({ maxLength: 4_096 }).map((bytes) => Buffer.from(bytes)),
  hostileText(64_000).map((text) => Buffer.from(text, "utf8")),
  fc.constantFrom(makePng(), makeGif(), Buffer.alloc(0)),
  fc.constantFrom("%PDF-1.4\n", "PK\u0003\u0004", "GIF89a", "\u0089PNG\r\n\u001a\n", "RIFF\u0000\u0000\u0000\u0000WEBP", "\u0000\u0000\u0000\u0018ftypmp42").chain((prefix) => magic(Buffer.from(prefix, "latin1"))),
);

const FILE_NAMES = ["a.png", "a.txt", "notes.md", "data.csv", "doc.pdf", "doc.docx", "sheet.xlsx", "clip.mp4", "x", "", ".", "../../etc/passwd", "C:\\Windows\\win.ini", 'quote".txt', "a\r\nContent-Type: text/html.txt"];
const CONTENT_TYPES = ["image/png", "image/gif", "text/plain", "text/csv", "application/pdf", "application/octet-stream", "video/mp4", "application/x-msdownload", "", "image/png; charset=utf-8", "*/*"];

interface UploadParts {
  filename: string;
  contentType: string;
  bytes: Buffer;
  purpose: unknown;
  purposeFirst: boolean;
  extraFields: Array<[string, string]>;
}

const uploadParts: fc.Arbitrary<UploadParts> = fc.record({
  filename: fc.oneof(fc.constantFrom(...FILE_NAMES), hostileText(4_000)),
  contentType: fc.oneof(fc.constantFrom(...CONTENT_TYPES), hostileText(500)),
  bytes: fileBytes,
  purpose: usually(fc.constantFrom(...PURPOSES), fc.oneof(hostileText(4_000), fc.constant(undefined))),
  purposeFirst: fc.boolean(),
  extraFields: fc.array(fc.tuple(hostileText(200), hostileText(6_000)), { maxLength: 3 }),
});

const CRLF = "\r\n";

/** A multipart/form-data body as a browser would write it, whatever the names hold (raw UTF-8, unescaped). */
function multipartBody(boundary: string, parts: UploadParts): Buffer {
  const field = (name: string, value: string) =>
    Buffer.from(`--${boundary}${CRLF}Content-Disposition: form-data; name="${name}"${CRLF}${CRLF}${value}${CRLF}`, "utf8");
  const typeLine = parts.contentType ? `Content-Type: ${parts.contentType}${CRLF}` : "";
  const file = Buffer.concat([
    Buffer.from(`--${boundary}${CRLF}Content-Disposition: form-data; name="file"; filename="${parts.filename}"${CRLF}${typeLine}${CRLF}`, "utf8"),
    parts.bytes,
    Buffer.from(CRLF),
  ]);
  const purpose = typeof parts.purpose === "string" ? [field("purpose", parts.purpose)] : [];
  const extras = parts.extraFields.map(([name, value]) => field(name, value));
  const ordered = parts.purposeFirst ? [...purpose, ...extras, file] : [file, ...purpose, ...extras];
  return Buffer.concat([...ordered, Buffer.from(`--${boundary}--${CRLF}`)]);
}

const BOUNDARY = "----sentx-property-boundary-7MA4YWxkTrZu0gW";

const upload = (apiKey: string, contentType: string, body: Buffer) =>
  printable({ method: "POST" as const, path: "/v1/files", headers: { authorization: `Bearer ${apiKey}`, "content-type": contentType }, body });

/** POST /v1/files with a well-formed multipart body of hostile parts. */
export const wellFormedUploads = (apiKey: string): fc.Arbitrary<HostileRequest> =>
  uploadParts.map((parts) => upload(apiKey, `multipart/form-data; boundary=${BOUNDARY}`, multipartBody(BOUNDARY, parts)));

const BROKEN_CONTENT_TYPES = [
  "multipart/form-data",
  "multipart/form-data; boundary=",
  `multipart/form-data; boundary=${"b".repeat(200)}`,
  "multipart/form-data; boundary=other-boundary",
  `multipart/mixed; boundary=${BOUNDARY}`,
  `MULTIPART/FORM-DATA; BOUNDARY="${BOUNDARY}"`,
  "application/json",
  "text/plain",
  "",
];

/** POST /v1/files with a body that is not the multipart it claims: cut short, unterminated, mislabelled, or noise. */
export const malformedUploads = (apiKey: string): fc.Arbitrary<HostileRequest> =>
  fc.oneof(
    fc.tuple(uploadParts, fc.double({ min: 0, max: 1, noNaN: true })).map(([parts, at]) => {
      const body = multipartBody(BOUNDARY, parts);
      return upload(apiKey, `multipart/form-data; boundary=${BOUNDARY}`, body.subarray(0, Math.floor(body.length * at)));
    }),
    fc.tuple(uploadParts, fc.constantFrom(...BROKEN_CONTENT_TYPES)).map(([parts, contentType]) => upload(apiKey, contentType, multipartBody(BOUNDARY, parts))),
    fc
      .tuple(fc.uint8Array({ maxLength: 8_192 }), fc.constantFrom(`multipart/form-data; boundary=${BOUNDARY}`, ...BROKEN_CONTENT_TYPES))
      .map(([noise, contentType]) => upload(apiKey, contentType, Buffer.from(noise))),
    fc
      .tuple(fc.constantFrom("x".repeat(20_000), "Content-Disposition: form-data", `Content-Disposition: form-data; name="file"; filename=`, ""), fc.uint8Array({ maxLength: 512 }))
      .map(([headerLine, bytes]) =>
        upload(apiKey, `multipart/form-data; boundary=${BOUNDARY}`, Buffer.concat([Buffer.from(`--${BOUNDARY}${CRLF}${headerLine}${CRLF}`), Buffer.from(bytes)])),
      ),
  );
