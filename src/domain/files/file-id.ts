// A file id as SentX issues them (newId.file): what is not in this form names
// no file, and is answered 404 without a database query.
const FILE_ID = /^file-[0-9A-Za-z]{24}$/;

export const isFileId = (value: string): boolean => FILE_ID.test(value);
