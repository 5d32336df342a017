import {
  accountRefInput,
  createAccountInput,
  findAccountInput,
  issueClaimTokenInput,
  listAccountsInput,
  setAccountLimitsInput,
  setAccountPlanInput,
} from "../../domain/inputs.js";
import { effectiveLimits } from "../../domain/limits/defaults.js";
import type { Account } from "../../domain/schema/index.js";
import { opsMutation, opsProcedure, router } from "../trpc.js";

const accountView = ({ passwordHash: _password, claimTokenHash: _claimToken, ...account }: Account) => ({
  ...account,
  availableCents: account.balanceCents - account.heldCents,
  /** The limits in force: the overrides in `limits` over the platform defaults. */
  effectiveLimits: effectiveLimits(account.limits),
});

export const accountsRouter = router({
  create: opsMutation
    .input(createAccountInput)
    .mutation(async ({ ctx, input }) => accountView(await ctx.services.accounts.create(input, ctx.scope))),
  get: opsProcedure.input(accountRefInput).query(async ({ ctx, input }) => accountView(await ctx.services.accounts.get(input.accountId))),
  find: opsProcedure.input(findAccountInput).query(async ({ ctx, input: { accountId, email } }) =>
    accountView(await (accountId !== undefined ? ctx.services.accounts.get(accountId) : ctx.services.accounts.findByEmail(email!))),
  ),
  list: opsProcedure.input(listAccountsInput).query(async ({ ctx, input }) => {
    const page = await ctx.services.accounts.list(input);
    return { ...page, data: page.data.map(accountView) };
  }),
  suspend: opsMutation
    .input(accountRefInput)
    .mutation(async ({ ctx, input }) => accountView(await ctx.services.accounts.setStatus(input.accountId, "suspended", ctx.scope))),
  resume: opsMutation
    .input(accountRefInput)
    .mutation(async ({ ctx, input }) => accountView(await ctx.services.accounts.setStatus(input.accountId, "active", ctx.scope))),
  setLimits: opsMutation
    .input(setAccountLimitsInput)
    .mutation(async ({ ctx, input }) => accountView(await ctx.services.accounts.setLimits(input.accountId, input.limits, ctx.scope))),
  /** A one-time token with which the owner signs up to this account (the dashboard's claimAccount); shown once. */
  issueClaimToken: opsMutation
    .input(issueClaimTokenInput)
    .mutation(({ ctx, input }) => ctx.services.claims.issue(input.accountId, input.validForHours, ctx.scope)),
  setPlan: opsMutation
    .input(setAccountPlanInput)
    .mutation(async ({ ctx, input }) => accountView(await ctx.services.accounts.setPlan(input.accountId, input.plan, ctx.scope))),
});
