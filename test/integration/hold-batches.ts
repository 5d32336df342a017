import { describe, expect, it } from "vitest";
import type { Billing } from "../../src/domain/billing.js";
import type { Db } from "../../src/domain/db.js";
import { type CloseHold, type ClosedHold, closeHolds } from "../../src/domain/hold-settlement.js";
import type { EndUserIdentity } from "../../src/domain/identity.js";
import { newId } from "../../src/domain/ids.js";
import { createTestAccount } from "../support/factories.js";
import { conversationsOf, endUsersOf, moneyState, requestRow } from "../support/queries.js";
import { activeHoldsCents, createMoneyServices, holdOf, reserve, TEST_REQUEST } from "./ledger-billing-scenarios.js";

// Ending many holds in one statement (closeHolds, the batch a settle joins):
// the scenarios every database driver must pass. Each batch must come out as
// if its holds had been settled one at a time, in the batch's order.

/** A hold of exactly `cents` (0 input tokens, 1,000 output tokens a cent); `costCents` undefined: left active. */
interface HoldSpec {
  cents: number;
  costCents?: number;
  identity?: EndUserIdentity;
  inputTokens?: number;
}

/** Reserves a hold of exactly `cents` at the default price. */
export async function reserveCents(billing: Billing, accountId: string, cents: number, identity: EndUserIdentity = {}): Promise<string> {
  const requestId = newId.request();
  await reserve(billing, accountId, { requestId, inputTokens: 0, requestedMaxTokens: cents * 1_000, request: { ...TEST_REQUEST, identity } });
  return requestId;
}

/** How closeHolds is asked to end a request: a success costing `costCents`, or (0) a failure released unbilled. */
function closing(requestId: string, costCents: number, now: Date, inputTokens = 100): CloseHold {
  const tokens = { inputTokens, outputTokens: costCents * 1_000 };
  return costCents > 0
    ? { requestId, costCents, closeAs: "settled", now, ending: { status: "succeeded", httpStatus: 200, errorCode: null, ...tokens } }
    : { requestId, costCents, closeAs: "released", now, ending: { status: "failed", httpStatus: 502, errorCode: "upstream_error", ...tokens } };
}

/** An account's money, usage entries, request records and end-user and conversation totals, with the ids that differ between accounts left out. */
async function settlementView(db: Db, accountId: string, requestIds: readonly string[]) {
  const money = await moneyState(db, accountId);
  const users = await endUsersOf(db, accountId);
  const conversations = await conversationsOf(db, accountId);
  const userOf = (id: string | null) => users.find((u) => u.id === id)?.externalId ?? null;
  const conversationOf = (id: string | null) => conversations.find((c) => c.id === id)?.externalId ?? null;
  const byExternalId = (a: { externalId: string }, b: { externalId: string }) => a.externalId.localeCompare(b.externalId);
  const totals = (t: { requestCount: number; inputTokens: number; outputTokens: number; costCents: number }) =>
    ({ requestCount: t.requestCount, inputTokens: t.inputTokens, outputTokens: t.outputTokens, costCents: t.costCents });
  const records = await Promise.all(requestIds.map((id) => requestRow(db, id)));
  return {
    balanceCents: money.balanceCents,
    ledgerSumCents: money.ledgerSumCents,
    heldCents: money.heldCents,
    activeHoldsCents: await activeHoldsCents(db, accountId),
    /** Each request's usage entry, in the order of `requestIds` (null: none). */
    entries: requestIds.map((id) => {
      const entry = money.usageEntries.find((e) => e.requestId === id);
      return entry ? { amountCents: entry.amountCents, balanceAfterCents: entry.balanceAfterCents } : null;
    }),
    records: records.map((r) =>
      r ? { costCents: r.costCents, status: r.status, endUser: userOf(r.endUserId), conversation: conversationOf(r.conversationId) } : null,
    ),
    endUsers: users.sort(byExternalId).map((u) => ({ externalId: u.externalId, displayName: u.displayName, ...totals(u) })),
    conversations: conversations.sort(byExternalId).map((c) => ({ externalId: c.externalId, endUser: userOf(c.endUserId), ...totals(c) })),
  };
}

/**
 * The same holds on two fresh accounts: one ends the specs that have a cost in
 * one closeHolds batch, the other one closeHolds at a time in the same order.
 * `meanwhile` runs on each account after its holds are taken.
 */
async function batchAndOneByOne(
  db: Db,
  { balanceCents, holds, meanwhile }: { balanceCents: number; holds: HoldSpec[]; meanwhile?: (accountId: string) => Promise<unknown> },
) {
  const { billing, clock } = createMoneyServices(db);
  const settleOn = async (settle: (inputs: CloseHold[]) => Promise<ClosedHold[]>) => {
    const account = await createTestAccount(db, { balanceCents });
    const requestIds: string[] = [];
    for (const spec of holds) requestIds.push(await reserveCents(billing, account.id, spec.cents, spec.identity));
    await meanwhile?.(account.id);
    const inputs = holds.flatMap((spec, i) =>
      spec.costCents === undefined ? [] : [closing(requestIds[i]!, spec.costCents, clock.now(), spec.inputTokens)],
    );
    const answers = await settle(inputs);
    return { accountId: account.id, requestIds, answers, view: await settlementView(db, account.id, requestIds) };
  };
  const batched = await settleOn((inputs) => closeHolds(db, inputs));
  const oneByOne = await settleOn(async (inputs) => {
    const answers: ClosedHold[] = [];
    for (const input of inputs) answers.push(...(await closeHolds(db, [input])));
    return answers;
  });
  return { batched, oneByOne };
}

const charged = (chargedCents: number) => ({ found: true, closedNow: true, chargedCents });
/** What each answer charged (null: no such hold). */
const chargesOf = (answers: ClosedHold[]) => answers.map((a) => (a.found ? a.chargedCents : null));

export function holdBatchScenarios(getDb: () => Db): void {
  describe("settling holds in one batch (closeHolds)", () => {
    it("charges each cost within its hold exactly, with one usage entry each, the balance stepping down in batch order", async () => {
      const { batched, oneByOne } = await batchAndOneByOne(getDb(), {
        balanceCents: 100,
        holds: [{ cents: 3, costCents: 2 }, { cents: 3, costCents: 3 }, { cents: 5 }, { cents: 5, costCents: 4 }, { cents: 2, costCents: 1 }],
      });

      expect(batched.answers).toEqual([charged(2), charged(3), charged(4), charged(1)]);
      expect(batched.view).toMatchObject({
        balanceCents: 90,
        ledgerSumCents: 90,
        heldCents: 5, // the hold left out of the batch
        activeHoldsCents: 5,
        entries: [
          { amountCents: -2, balanceAfterCents: 98 },
          { amountCents: -3, balanceAfterCents: 95 },
          null,
          { amountCents: -4, balanceAfterCents: 91 },
          { amountCents: -1, balanceAfterCents: 90 },
        ],
      });
      expect(batched.view.records.map((r) => r?.costCents ?? null)).toEqual([2, 3, null, 4, 1]);
      expect(batched.view).toEqual(oneByOne.view);
    });

    it("a cost above its hold takes only money no other hold reserves: the next hold of the batch still gets its whole cost", async () => {
      // 12 cents; holds of 3 and 5 in the batch and 3 outside it, so 1 cent is free.
      const { batched, oneByOne } = await batchAndOneByOne(getDb(), {
        balanceCents: 12,
        holds: [{ cents: 3, costCents: 6 }, { cents: 5, costCents: 5 }, { cents: 3 }],
      });

      // The first may take its own 3 and the free 1; the second's 5 were reserved for it.
      expect(batched.view).toMatchObject({ heldCents: 3, activeHoldsCents: 3 });
      expect(batched.view.balanceCents).toBe(batched.view.ledgerSumCents);
      expect(batched.view.records.map((r) => r?.costCents ?? null)).toEqual([...chargesOf(batched.answers), null]);
      expect(batched.answers).toEqual([charged(4), charged(5)]);
      expect(batched.view).toMatchObject({
        balanceCents: 3,
        entries: [{ amountCents: -4, balanceAfterCents: 8 }, { amountCents: -5, balanceAfterCents: 3 }, null],
      });
      expect(batched.view).toEqual(oneByOne.view);
    });

    it("when a debit leaves less than the holds, charges are clamped in batch order to what is left, never below zero", async () => {
      const { ledger } = createMoneyServices(getDb());
      // 20 cents, 11 held; then a 15-cent debit leaves 5: less than the holds.
      const { batched, oneByOne } = await batchAndOneByOne(getDb(), {
        balanceCents: 20,
        holds: [{ cents: 3, costCents: 3 }, { cents: 5, costCents: 5 }, { cents: 3, costCents: 4 }],
        meanwhile: (accountId) => ledger.post(getDb(), { accountId, kind: "adjustment", amountCents: -15, idempotencyKey: "drain" }),
      });

      const charges = chargesOf(batched.answers) as number[];
      expect(batched.view).toMatchObject({ heldCents: 0, activeHoldsCents: 0 });
      expect(batched.view.balanceCents).toBe(batched.view.ledgerSumCents);
      expect(batched.view.balanceCents).toBe(5 - charges.reduce((a, b) => a + b, 0));
      expect(batched.view.balanceCents).toBeGreaterThanOrEqual(0);
      expect(batched.view.records.map((r) => r?.costCents)).toEqual(charges);
      // One at a time: the first finds 5 − 11 + 3 < 0 free, the second 5 − 8 + 5 = 2, the third 3 − 3 + 3 = 3.
      expect(charges).toEqual([0, 2, 3]);
      expect(batched.view).toMatchObject({ balanceCents: 0, entries: [null, { balanceAfterCents: 3 }, { balanceAfterCents: 0 }] });
      expect(batched.view).toEqual(oneByOne.view);
    });

    it("sums an end user's and a conversation's totals over the charged holds of a batch, as settling them one by one does", async () => {
      const ann = { userId: "u-1", userName: "Ann", sessionId: "s-1" };
      const { batched, oneByOne } = await batchAndOneByOne(getDb(), {
        balanceCents: 100,
        holds: [
          { cents: 3, costCents: 2, inputTokens: 100, identity: ann },
          { cents: 3, costCents: 3, inputTokens: 200, identity: { ...ann, userName: "Annie" } },
          // Held, then failed: recorded, but it adds nothing to anyone's totals.
          { cents: 3, costCents: 0, inputTokens: 50, identity: { userId: "u-1", sessionId: "s-1" } },
          { cents: 2, costCents: 1, inputTokens: 300, identity: { userId: "u-2", sessionId: "s-1" } },
          { cents: 2, costCents: 2, inputTokens: 400, identity: { sessionId: "s-2" } },
        ],
      });

      expect(batched.view.endUsers).toEqual([
        { externalId: "u-1", displayName: "Annie", requestCount: 2, inputTokens: 300, outputTokens: 5_000, costCents: 5 },
        { externalId: "u-2", displayName: null, requestCount: 1, inputTokens: 300, outputTokens: 1_000, costCents: 1 },
      ]);
      expect(batched.view.conversations).toEqual([
        // The conversation belongs to the last end user that spoke in it.
        { externalId: "s-1", endUser: "u-2", requestCount: 3, inputTokens: 600, outputTokens: 6_000, costCents: 6 },
        { externalId: "s-2", endUser: null, requestCount: 1, inputTokens: 400, outputTokens: 2_000, costCents: 2 },
      ]);
      expect(batched.view.records).toEqual([
        { costCents: 2, status: "succeeded", endUser: "u-1", conversation: "s-1" },
        { costCents: 3, status: "succeeded", endUser: "u-1", conversation: "s-1" },
        { costCents: 0, status: "failed", endUser: null, conversation: null },
        { costCents: 1, status: "succeeded", endUser: "u-2", conversation: "s-1" },
        { costCents: 2, status: "succeeded", endUser: null, conversation: "s-2" },
      ]);
      expect(batched.view).toEqual(oneByOne.view);
    });

    it("answers in input order for a batch of two accounts, a hold settled before (left as it was) and an unknown request", async () => {
      const db = getDb();
      const { billing, clock } = createMoneyServices(db);
      const [x, y] = await Promise.all([createTestAccount(db, { balanceCents: 50 }), createTestAccount(db, { balanceCents: 40 })]);
      const [x1, y1, x2, done] = [
        await reserveCents(billing, x!.id, 3),
        await reserveCents(billing, y!.id, 4),
        await reserveCents(billing, x!.id, 2),
        await reserveCents(billing, y!.id, 3),
      ];
      expect(await closeHolds(db, [closing(done, 2, clock.now())])).toEqual([charged(2)]);
      const doneBefore = { hold: await holdOf(db, done), record: await requestRow(db, done) };
      clock.advance(1_000);

      const answers = await closeHolds(db, [
        closing(y1, 4, clock.now()),
        closing("req_unknown", 1, clock.now()),
        closing(done, 3, clock.now()),
        closing(x1, 1, clock.now()),
        closing(x2, 2, clock.now()),
      ]);

      const closedBefore = { found: true, closedNow: false, status: "settled", chargedCents: 2 };
      expect(answers).toEqual([charged(4), { found: false }, closedBefore, charged(1), charged(2)]);
      expect(await settlementView(db, x!.id, [x1, x2])).toMatchObject({
        balanceCents: 47,
        ledgerSumCents: 47,
        heldCents: 0,
        entries: [{ amountCents: -1, balanceAfterCents: 49 }, { amountCents: -2, balanceAfterCents: 47 }],
      });
      expect(await settlementView(db, y!.id, [done, y1])).toMatchObject({
        balanceCents: 34,
        ledgerSumCents: 34,
        heldCents: 0,
        entries: [{ amountCents: -2, balanceAfterCents: 38 }, { amountCents: -4, balanceAfterCents: 34 }],
      });
      expect({ hold: await holdOf(db, done), record: await requestRow(db, done) }).toEqual(doneBefore);
      expect(await requestRow(db, "req_unknown")).toBeUndefined();
    });

    it("settles a request that comes twice in one batch (a retry joining its original) once, and says so once", async () => {
      const db = getDb();
      const { billing, clock } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 50 });
      const requestId = await reserveCents(billing, account.id, 3);

      const answers = await closeHolds(db, [closing(requestId, 2, clock.now()), closing(requestId, 3, clock.now())]);

      const view = await settlementView(db, account.id, [requestId]);
      expect(view).toMatchObject({ balanceCents: 48, heldCents: 0, entries: [{ amountCents: -2 }], records: [{ costCents: 2 }] });
      expect(answers).toEqual([charged(2), { found: true, closedNow: false, status: "settled", chargedCents: 2 }]);
    });
  });
}
