import { accountRefInput, buyWeeklyBoostInput } from "../../domain/inputs.js";
import { opsMutation, opsProcedure, router } from "../trpc.js";

// SPEC 10: where an account's week of chats stands, and the Weekly Boost (500 more chats for $5 of credit).
export const plansRouter = router({
  weeklyQuota: opsProcedure.input(accountRefInput).query(({ ctx, input }) => ctx.services.weeklyQuota.weeklyQuota(input.accountId)),
  buyWeeklyBoost: opsMutation
    .input(buyWeeklyBoostInput)
    .mutation(({ ctx, input }) => ctx.services.weeklyQuota.buyWeeklyBoost(input, ctx.scope)),
});
