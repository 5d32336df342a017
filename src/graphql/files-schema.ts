import { z } from "zod";
import type { Files } from "../domain/files/files.js";
import type { FileRecord } from "../domain/schema/index.js";
import { type DashboardContext, signedIn } from "./context.js";
import { pageArguments, pageTypeDefs } from "./page-arguments.js";

export const filesTypeDefs = /* GraphQL */ `
  "An uploaded file (SPEC 7), as the Files API shows it."
  type File {
    id: ID!
    filename: String!
    bytes: Int!
    purpose: String!
    "Decided from the bytes, not the name."
    mimeType: String!
    "scanned, or unscanned where the server stores files without a virus scan"
    scanStatus: String!
    "processed: every listed file is ready to use."
    status: String!
    createdAt: String!
    "Retention: 30 days from the last upload of these bytes."
    expiresAt: String!
  }

  ${pageTypeDefs("File")}

  type DeletedFile {
    id: ID!
    deleted: Boolean!
  }

  extend type Query {
    "The signed-in account's files, newest first: deleted and expired ones are gone."
    files(first: Int = 20, after: String): FilePage!
  }

  extend type Mutation {
    "Deletes a file, as DELETE /v1/files/{id} does."
    deleteFile(id: ID!): DeletedFile!
  }
`;

const listFilesArgs = z.object(pageArguments);
const deleteFileArgs = z.object({ id: z.string().max(64) });

const fileView = (file: FileRecord) => ({
  id: file.id,
  filename: file.filename,
  bytes: file.bytes,
  purpose: file.purpose,
  mimeType: file.mimeType,
  scanStatus: file.scanStatus,
  status: file.status,
  createdAt: file.createdAt.toISOString(),
  expiresAt: file.expiresAt.toISOString(),
});

export function filesResolvers({ files }: { files: Files }) {
  return {
    Query: {
      files: async (_: unknown, args: unknown, context: DashboardContext) => {
        const { accountId } = signedIn(context);
        const { first, after } = listFilesArgs.parse(args);
        const { data, hasMore } = await files.list(accountId, { limit: first, after, order: "desc" });
        return { nodes: data.map(fileView), nextCursor: hasMore ? data.at(-1)!.id : null };
      },
    },
    Mutation: {
      // Another account's file is not found, worded exactly as a missing one.
      deleteFile: async (_: unknown, args: unknown, context: DashboardContext) => {
        const { accountId } = signedIn(context);
        const file = await files.delete(accountId, deleteFileArgs.parse(args).id);
        return { id: file.id, deleted: true };
      },
    },
  };
}
