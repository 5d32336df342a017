import { adjustCreditsInput, grantCreditsInput, listLedgerInput, refundCreditsInput, verifyLedgerInput } from "../../domain/inputs.js";
import { opsMutation, opsProcedure, router } from "../trpc.js";

// Every movement goes through the ledger (SPEC 5): exactly once per idempotency key, never below a zero balance.
export const creditsRouter = router({
  grant: opsMutation.input(grantCreditsInput).mutation(({ ctx, input }) => ctx.services.credits.grant(input, ctx.scope)),
  adjust: opsMutation.input(adjustCreditsInput).mutation(({ ctx, input }) => ctx.services.credits.adjust(input, ctx.scope)),
  refund: opsMutation.input(refundCreditsInput).mutation(({ ctx, input }) => ctx.services.credits.refund(input, ctx.scope)),
});

export const ledgerRouter = router({
  list: opsProcedure
    .input(listLedgerInput)
    .query(({ ctx, input }) => ctx.services.ledger.list(ctx.services.db, input.accountId, input)),
  /** Every account whose balance is not the sum of its entries (or the one asked about). */
  verify: opsProcedure.input(verifyLedgerInput).query(async ({ ctx, input }) => {
    const mismatches = await ctx.services.ledger.verify(ctx.services.db, input?.accountId);
    return { ok: mismatches.length === 0, mismatches };
  }),
});
