import { listFilesInput, purgeFileInput } from "../../domain/inputs.js";
import type { FileRecord } from "../../domain/schema/index.js";
import { opsMutation, opsProcedure, router } from "../trpc.js";

// A document's extracted text may run to megabytes: a list says how long it is, not what it says.
const fileView = ({ extractedText, ...file }: FileRecord) => ({ ...file, extractedTextLength: extractedText?.length ?? 0 });

export const filesRouter = router({
  list: opsProcedure.input(listFilesInput).query(async ({ ctx, input }) => {
    const { data, hasMore } = await ctx.services.files.list(input.accountId, {
      limit: input.limit,
      after: input.cursor,
      order: "desc",
      purpose: input.purpose,
      includeDeleted: input.includeDeleted,
    });
    return { data: data.map(fileView), nextCursor: hasMore ? data.at(-1)!.id : null };
  }),
  /** A takedown: the bytes and every file row that refers to them. */
  purge: opsMutation.input(purgeFileInput).mutation(({ ctx, input }) => ctx.services.files.purge(input.fileId, ctx.scope)),
});
