import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { Busboy, type BusboyFileStream } from "@fastify/busboy";
import { DomainError } from "../domain/errors.js";
import type { StagedBlob } from "../domain/files/blob-store.js";

export interface ReceivedUpload {
  staged: StagedBlob;
  filename: string;
  /** The file part's Content-Type; undefined when the client declared none (see declaredType). */
  contentType: string | undefined;
  fields: Record<string, string>;
}

/**
 * busboy reports a file part sent without a Content-Type as text/plain (RFC
 * 7578's default), so an explicit text/plain cannot be told from none. Both
 * count as undeclared: refusing them would refuse, say, the PNG of a client
 * that labels no parts (Python's requests sends none unless told).
 */
const declaredType = (busboyMimeType: string) => (busboyMimeType === "text/plain" ? undefined : busboyMimeType);

const badForm = (message: string, param: string | null = null) => new DomainError("invalid_request_error", message, param);
const unreadableForm = (error: unknown) => badForm(`The multipart body could not be read: ${(error as Error).message}.`);

/**
 * Reads a multipart upload with one file part named `file`, handing the file's
 * bytes to `receive` as they arrive (nothing is buffered here), and the small
 * text fields alongside. Fields may come before or after the file.
 */
export async function readMultipartUpload(
  request: Request,
  receive: (bytes: Readable) => Promise<StagedBlob>,
  maxFileBytes: number,
): Promise<ReceivedUpload> {
  const contentType = request.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data\b/i.test(contentType) || !request.body) {
    throw badForm("Upload files as multipart/form-data with a `file` part and a `purpose` field.");
  }

  const fields: Record<string, string> = {};
  const body = Readable.fromWeb(request.body as WebReadableStream<Uint8Array>);
  let parser: ReturnType<typeof Busboy>;
  try {
    parser = Busboy({
      headers: { "content-type": contentType },
      // One byte over the cap reaches `receive`, which refuses it; nothing past that is kept.
      limits: { files: 1, fields: 20, fieldSize: 4096, parts: 25, fileSize: maxFileBytes + 1 },
    });
  } catch (error) {
    // Fix (found by test/e2e/files.test.ts): Busboy throws at once on a header it cannot use
    // ("multipart/form-data" without a boundary), which answered 500; it is the client's mistake.
    throw unreadableForm(error);
  }

  return new Promise<ReceivedUpload>((resolve, reject) => {
    let upload: Promise<Omit<ReceivedUpload, "fields">> | null = null;
    let formError: DomainError | null = null;
    let settled = false;

    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      // Answer now; the rest of the body is read and dropped, so the client can finish sending and see the answer.
      body.unpipe(parser);
      body.resume();
      void upload?.then(({ staged }) => staged.discard(), () => {});
      reject(error);
    };

    parser.on("field", (name: string, value: string) => void (fields[name] = value));
    parser.on("file", (name: string, stream: BusboyFileStream, filename: string, _encoding: string, mimeType: string) => {
      // Fix (found by test/e2e/files.test.ts): on a body cut short busboy emits 'error' on the file
      // stream itself; with no listener there (receive may not be reading yet, or the part is skipped)
      // that was an uncaught exception, which ended the whole server process. The parser's own
      // 'error', emitted just before, is what refuses the upload; `receive` sees stream errors itself.
      stream.on("error", () => {});
      // A second file part never gets here: limits.files stops it (filesLimit below).
      if (name !== "file") {
        formError ??= badForm(`Unexpected file part '${name}': name the file part 'file'.`, "file");
        stream.resume();
        return;
      }
      upload = receive(stream).then((staged) => ({ staged, filename, contentType: declaredType(mimeType) }));
      upload.catch((error) => {
        stream.resume();
        fail(error);
      });
    });
    parser.on("filesLimit", () => void (formError ??= badForm("Send one file per upload.", "file")));
    parser.on("error", (error: unknown) => fail(unreadableForm(error)));
    parser.on("finish", async () => {
      if (formError) return fail(formError);
      if (!upload) return fail(badForm("Missing the 'file' part: upload files as multipart/form-data with a `file` part.", "file"));
      try {
        const received = await upload;
        if (settled) return void received.staged.discard();
        settled = true;
        resolve({ ...received, fields });
      } catch (error) {
        fail(error);
      }
    });
    body.on("error", (error) => fail(badForm(`The upload was interrupted: ${error.message}.`)));
    body.pipe(parser);
  });
}
