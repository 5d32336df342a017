import { DomainError } from "../errors.js";

/**
 * SPEC 7: a file of the wrong type, or a document that cannot be extracted, is
 * the client's `400 invalid_file_format`, never a crash. `cause` (the parser's
 * own error) is kept for the log only: clients see `message`.
 */
export const invalidFileFormat = (message: string, cause?: unknown): DomainError =>
  new DomainError("invalid_file_format", message, "file", cause === undefined ? undefined : { cause });

/** `reason` completes "The document could not be read: …". */
export function unreadableDocument(reason: string, cause?: unknown): DomainError {
  return invalidFileFormat(`The document could not be read: ${reason}.`, cause);
}

/** A parser rejected the bytes; `kind` names the format ("PDF", "DOCX file"). */
export const damagedDocument = (kind: string, cause?: unknown): DomainError =>
  unreadableDocument(`it is damaged or not a valid ${kind}`, cause);
