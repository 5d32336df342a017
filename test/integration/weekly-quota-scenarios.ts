import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { WeeklyQuotaExceededError } from "../../src/domain/billing.js";
import type { Db } from "../../src/domain/db.js";
import { DomainError } from "../../src/domain/errors.js";
import { newId } from "../../src/domain/ids.js";
import { accounts, holds, weeklyChatUsage } from "../../src/domain/schema/index.js";
import { createWeeklyQuota } from "../../src/domain/weekly-quota.js";
import { createTestAccount } from "../support/factories.js";
import { moneyState, requestRow } from "../support/queries.js";
import { createMoneyServices, DEFAULT_PRICING, INSUFFICIENT, settle, TEST_REQUEST } from "./ledger-billing-scenarios.js";

// SPEC 10's weekly chats at the level of the reserve and close statements,
// on every database driver (registered by a PostgreSQL and a PGlite file).

// A Thursday; its week is the one starting Monday 2027-05-03.
const THURSDAY = new Date("2027-05-06T09:30:00Z");
const WEEK = "2027-05-03";

export function weeklyQuotaScenarios(getDb: () => Db) {
  describe("weekly chat quotas", () => {
    async function setup(plan: string, balanceCents = 0) {
      const db = getDb();
      const services = createMoneyServices(db, THURSDAY);
      const account = await createTestAccount(db, { balanceCents });
      await db.update(accounts).set({ plan }).where(eq(accounts.id, account.id));
      const chat = (requestId = newId.request()) =>
        services.billing.reserveHold({
          accountId: account.id,
          requestId,
          pricing: DEFAULT_PRICING,
          inputTokens: 1_000,
          requestedMaxTokens: 3_000,
          request: TEST_REQUEST,
          weeklyChat: true,
        });
      const week = async () =>
        (await db.select().from(weeklyChatUsage).where(and(eq(weeklyChatUsage.accountId, account.id), eq(weeklyChatUsage.weekStart, WEEK))))[0];
      /** Puts the week at `used` chats, as if they had been made. */
      const used = (count: number) =>
        db.insert(weeklyChatUsage).values({ accountId: account.id, weekStart: WEEK, used: count }).onConflictDoUpdate({
          target: [weeklyChatUsage.accountId, weeklyChatUsage.weekStart],
          set: { used: count },
        });
      return { db, ...services, account, chat, week, used, quota: createWeeklyQuota({ db, clock: services.clock, ledger: services.ledger }) };
    }

    it("covers a chat with a 0-cent hold, counts it once when it ends billable, and charges nothing", async () => {
      const { db, billing, account, chat, week } = await setup("free");
      const requestId = newId.request();
      const hold = await chat(requestId);
      expect(hold).toMatchObject({ covered: true, amountCents: 0, maxTokens: 3_000, weeklyChats: { limit: 50, remaining: 49 } });
      expect(hold.weeklyChats!.resetsAt.toISOString()).toBe("2027-05-10T00:00:00.000Z");
      expect(await week()).toMatchObject({ used: 0, reserved: 1, planCap: 50 });
      expect(await settle(billing, requestId, 3)).toEqual({ chargedCents: 0, settledNow: true, endedBySweeper: false });
      expect(await settle(billing, requestId, 3)).toEqual({ chargedCents: 0, settledNow: false, endedBySweeper: false });
      expect(await week()).toMatchObject({ used: 1, reserved: 0 });
      expect(await requestRow(db, requestId)).toMatchObject({ costCents: 0, status: "succeeded" });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 0, heldCents: 0, usageEntries: [] });
    });

    it("gives the chat back when the request ends unbilled, and a retried reserve takes no second chat", async () => {
      const { billing, chat, week } = await setup("core");
      const requestId = newId.request();
      await chat(requestId);
      expect(await chat(requestId)).toMatchObject({ covered: true, weeklyChats: { limit: 500, remaining: 499 } });
      expect(await week()).toMatchObject({ reserved: 1 });
      await settle(billing, requestId, 0);
      expect(await week()).toMatchObject({ used: 0, reserved: 0 });
    });

    it("past the allowance holds credits as overflow, and without them refuses with 429 until Monday", async () => {
      const rich = await setup("free", 100);
      await rich.used(50);
      const overflow = await rich.chat();
      expect(overflow.covered).toBeUndefined();
      expect(overflow).toMatchObject({ amountCents: 3, weeklyChats: { limit: 50, remaining: 0 } });
      expect(await moneyState(rich.db, rich.account.id)).toMatchObject({ heldCents: 3 });

      const broke = await setup("free");
      await broke.used(50);
      const refused = await broke.chat().catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(WeeklyQuotaExceededError);
      expect(refused).toMatchObject({ code: "weekly_quota_exceeded", status: 429, weeklyChats: { limit: 50, remaining: 0 } });
      expect((refused as WeeklyQuotaExceededError).retryAfterMs).toBe(new Date("2027-05-10T00:00:00Z").getTime() - THURSDAY.getTime());
      expect(await broke.db.select().from(holds).where(eq(holds.accountId, broke.account.id))).toEqual([]);
    });

    it("a Weekly Boost adds 500 chats for 500 cents, once per key, and the next chat is covered again", async () => {
      const { db, chat, used, quota, account, week } = await setup("free", 600);
      await used(50);
      const first = await quota.buyWeeklyBoost({ accountId: account.id, idempotencyKey: "b1" });
      const again = await quota.buyWeeklyBoost({ accountId: account.id, idempotencyKey: "b1" });
      expect(first).toMatchObject({ duplicate: false, quota: { allowance: 550, used: 50, boosts: 1, remaining: 500 } });
      expect(again).toMatchObject({ duplicate: true, boost: first.boost });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 100, ledgerSumCents: 100 });
      expect(await chat()).toMatchObject({ covered: true, weeklyChats: { limit: 550, remaining: 499 } });
      expect(await week()).toMatchObject({ boosts: 1, used: 50, reserved: 1 });
      const broke = quota.buyWeeklyBoost({ accountId: account.id, idempotencyKey: "b2" });
      await expect(broke).rejects.toMatchObject(INSUFFICIENT);
    });

    it("an unlimited plan covers every chat and reports no allowance", async () => {
      const { chat, quota, account } = await setup("enterprise");
      const hold = await chat();
      expect(hold).toMatchObject({ covered: true, amountCents: 0 });
      expect(hold.weeklyChats).toBeUndefined();
      expect(await quota.weeklyQuota(account.id)).toMatchObject({ plan: "enterprise", allowance: null, used: 1, remaining: null });
    });

    it("applies the plan of the locked row: a caller cached on a capped plan now on pay-as-you-go pays, or gets 402", async () => {
      const rich = await setup("payg", 100);
      const hold = await rich.chat();
      expect(hold).toMatchObject({ amountCents: 3 });
      expect(hold.covered).toBeUndefined();
      expect(hold.weeklyChats).toBeUndefined();
      expect(await rich.week()).toBeUndefined();

      const broke = await setup("payg");
      const refused = await broke.chat().catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(DomainError);
      expect(refused).not.toBeInstanceOf(WeeklyQuotaExceededError);
      expect(refused).toMatchObject(INSUFFICIENT);
    });
  });
}
