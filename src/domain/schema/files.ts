import { boolean, index, integer, pgTable, text } from "drizzle-orm/pg-core";
import { accountRef } from "./accounts.js";
import { timestampTz, tokens } from "./columns.js";

/** Content-addressed bytes, stored once whoever uploads them (SPEC 7), reference-counted. */
export const blobs = pgTable("blobs", {
  sha256: text("sha256").primaryKey(),
  bytes: tokens("bytes").notNull(),
  refCount: integer("ref_count").notNull().default(0),
  createdAt: timestampTz("created_at").notNull().defaultNow(),
});

export type FileStatus = "processed" | "deleted";

/** SPEC 7: "unscanned" only with FILE_SCANNING=off, or on the embedded default while no scanner answered. */
export type ScanStatus = "scanned" | "unscanned";

/** An account's view of a blob: ids never cross accounts. */
export const files = pgTable(
  "files",
  {
    id: text("id").primaryKey(),
    accountId: accountRef(),
    // Which bytes, by content address. Not a foreign key: a deleted file's row is
    // kept (what was uploaded, and when) after its bytes are gone; the blob's
    // reference count is what keeps the bytes of live files.
    sha256: text("sha256").notNull(),
    filename: text("filename").notNull(),
    purpose: text("purpose").notNull(),
    bytes: tokens("bytes").notNull(),
    mimeType: text("mime_type").notNull(),
    extractedText: text("extracted_text"),
    /** The document held more text than is kept (SPEC 7 extraction limits); the model is told. */
    extractedTextTruncated: boolean("extracted_text_truncated").notNull().default(false),
    status: text("status").$type<FileStatus>().notNull().default("processed"),
    scanStatus: text("scan_status").$type<ScanStatus>().notNull().default("scanned"),
    createdAt: timestampTz("created_at").notNull().defaultNow(),
    expiresAt: timestampTz("expires_at").notNull(),
    deletedAt: timestampTz("deleted_at"),
  },
  (t) => [
    index("files_account_idx").on(t.accountId, t.status),
    index("files_account_sha_idx").on(t.accountId, t.sha256),
  ],
);

export type FileRecord = typeof files.$inferSelect;
