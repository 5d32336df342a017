import { z } from "zod";
import type { Account } from "../domain/schema/index.js";
import {
  accountRefInput,
  createAccountInput,
  createKeyInput,
  grantCreditsInput,
  listLedgerInput,
  revokeKeyInput,
  setAccountLimitsInput,
} from "../domain/inputs.js";
import { effectiveLimits } from "../domain/limits/defaults.js";
import { opsProcedure, router } from "./trpc.js";

const accountView = ({ passwordHash: _hidden, ...account }: Account) => ({
  ...account,
  availableCents: account.balanceCents - account.heldCents,
  /** The limits in force: the overrides in `limits` over the platform defaults. */
  effectiveLimits: effectiveLimits(account.limits),
});

export const opsRouter = router({
  accounts: router({
    create: opsProcedure
      .input(createAccountInput)
      .mutation(async ({ ctx, input }) => accountView(await ctx.services.accounts.create(input))),
    get: opsProcedure
      .input(accountRefInput)
      .query(async ({ ctx, input }) => accountView(await ctx.services.accounts.get(input.accountId))),
    suspend: opsProcedure
      .input(accountRefInput)
      .mutation(async ({ ctx, input }) => accountView(await ctx.services.accounts.setStatus(input.accountId, "suspended"))),
    setLimits: opsProcedure
      .input(setAccountLimitsInput)
      .mutation(async ({ ctx, input }) => accountView(await ctx.services.accounts.setLimits(input.accountId, input.limits))),
    resume: opsProcedure
      .input(accountRefInput)
      .mutation(async ({ ctx, input }) => accountView(await ctx.services.accounts.setStatus(input.accountId, "active"))),
  }),
  credits: router({
    grant: opsProcedure.input(grantCreditsInput).mutation(async ({ ctx, input }) => {
      const { entry, created } = await ctx.services.ledger.post(ctx.services.db, {
        accountId: input.accountId,
        kind: "grant",
        amountCents: input.amountCents,
        idempotencyKey: `grant:${input.idempotencyKey}`,
        ...(input.memo && { memo: input.memo }),
      });
      return { entry, duplicate: !created };
    }),
  }),
  keys: router({
    create: opsProcedure.input(createKeyInput).mutation(({ ctx, input }) => ctx.services.keys.create(input)),
    list: opsProcedure.input(accountRefInput).query(({ ctx, input }) => ctx.services.keys.list(input.accountId)),
    revoke: opsProcedure
      .input(revokeKeyInput)
      .mutation(({ ctx, input }) => ctx.services.keys.revoke(input.keyId, input.accountId)),
  }),
  ledger: router({
    list: opsProcedure
      .input(listLedgerInput)
      .query(({ ctx, input }) => ctx.services.ledger.list(ctx.services.db, input.accountId, input)),
    verify: opsProcedure.input(z.object({}).optional()).query(async ({ ctx }) => {
      const mismatches = await ctx.services.ledger.verify(ctx.services.db);
      return { ok: mismatches.length === 0, mismatches };
    }),
  }),
});

export type OpsRouter = typeof opsRouter;
