import { and, eq, sql } from "drizzle-orm";
import type { Clock } from "./clock.js";
import type { Db, DbOrTx } from "./db.js";
import { DomainError } from "./errors.js";
import { findByIdempotencyKey, INSUFFICIENT_BALANCE_MESSAGE, type Ledger } from "./ledger.js";
import { nextWeekStart, WEEKLY_BOOST, weeklyAllowance, weeklyChatCap, weekKey, weekStartOf } from "./plans.js";
import { accounts, type LedgerEntry, weeklyChatUsage } from "./schema/index.js";
import { inScope, type TxScope } from "./tx-scope.js";

// SPEC 10 for ops: where an account's week stands, and the Weekly Boost. The
// chats themselves are counted by the statements that reserve and close
// holds (billing.ts, hold-settlement.ts).

export interface WeeklyQuota {
  plan: string;
  weekStart: string;
  weekEndsAt: string;
  /** The plan's cap plus the week's boosts; null when the plan has no cap (unlimited, or pay-as-you-go). */
  allowance: number | null;
  /** Chats that ended billable this week, and those still running (each holds its place until it ends). */
  used: number;
  boosts: number;
  remaining: number | null;
}

export interface BoughtBoost {
  boost: {
    ledgerEntryId: string;
    weekStart: string;
    weekEndsAt: string;
    chats: number;
    priceCents: number;
    boughtAt: string;
  };
  /** The idempotency key had bought a boost before: that boost, and nothing debited now. */
  duplicate: boolean;
  quota: WeeklyQuota;
}

const boostKey = (idempotencyKey: string) => `boost:${idempotencyKey}`;

export function createWeeklyQuota({ db, clock, ledger }: { db: Db; clock: Clock; ledger: Ledger }) {
  async function read(dbOrTx: DbOrTx, accountId: string): Promise<WeeklyQuota> {
    const weekStart = weekStartOf(clock.now());
    const [row] = await dbOrTx
      .select({ plan: accounts.plan, used: weeklyChatUsage.used, reserved: weeklyChatUsage.reserved, boosts: weeklyChatUsage.boosts })
      .from(accounts)
      .leftJoin(weeklyChatUsage, and(eq(weeklyChatUsage.accountId, accounts.id), eq(weeklyChatUsage.weekStart, weekKey(weekStart))))
      .where(eq(accounts.id, accountId));
    if (!row) throw new DomainError("not_found", `No account ${accountId}.`, "accountId");
    const boosts = row.boosts ?? 0;
    const used = (row.used ?? 0) + (row.reserved ?? 0);
    const allowance = weeklyAllowance(row.plan, boosts);
    return {
      plan: row.plan,
      weekStart: weekStart.toISOString(),
      weekEndsAt: nextWeekStart(weekStart).toISOString(),
      allowance,
      used,
      boosts,
      remaining: allowance === null ? null : Math.max(0, allowance - used),
    };
  }

  /** `weekStart`: the week the boost was added to, which the entry was posted in. */
  const boughtBoost = (entry: LedgerEntry, weekStart = weekStartOf(entry.createdAt)) => ({
    ledgerEntryId: entry.id,
    weekStart: weekStart.toISOString(),
    weekEndsAt: nextWeekStart(weekStart).toISOString(),
    chats: WEEKLY_BOOST.chats,
    priceCents: -entry.amountCents,
    boughtAt: entry.createdAt.toISOString(),
  });

  return {
    weeklyQuota: (accountId: string): Promise<WeeklyQuota> => read(db, accountId),

    /**
     * 500 more chats this week for 500 cents of credit, once per idempotency
     * key (the ledger's unique key decides). Under the account's lock, so the
     * available balance it checks (balance less holds: credits running
     * requests may still take) is the one it debits.
     */
    buyWeeklyBoost(input: { accountId: string; idempotencyKey: string }, scope?: TxScope): Promise<BoughtBoost> {
      return inScope(db, scope, async ({ tx }) => {
        const [account] = await tx
          .select({ plan: accounts.plan, balanceCents: accounts.balanceCents, heldCents: accounts.heldCents })
          .from(accounts)
          .where(eq(accounts.id, input.accountId))
          .for("update");
        if (!account) throw new DomainError("not_found", `No account ${input.accountId}.`, "accountId");
        const earlier = await findByIdempotencyKey(tx, input.accountId, boostKey(input.idempotencyKey));
        if (earlier) return { boost: boughtBoost(earlier), duplicate: true, quota: await read(tx, input.accountId) };

        const cap = weeklyChatCap(account.plan);
        if (typeof cap !== "number") {
          const why = cap === "unlimited" ? "already has unlimited chats" : "has no weekly chat cap (pay-as-you-go)";
          throw new DomainError("invalid_request_error", `Nothing to boost: the ${account.plan} plan ${why}.`, "accountId");
        }
        if (account.balanceCents - account.heldCents < WEEKLY_BOOST.priceCents) {
          throw new DomainError("insufficient_balance", INSUFFICIENT_BALANCE_MESSAGE);
        }
        // One instant names the week in the memo, the usage row and the answer, even a purchase at Monday 00:00.
        const weekStart = weekStartOf(clock.now());
        const { entry } = await ledger.post(tx, {
          accountId: input.accountId,
          kind: "boost",
          amountCents: -WEEKLY_BOOST.priceCents,
          idempotencyKey: boostKey(input.idempotencyKey),
          memo: `Weekly Boost: ${WEEKLY_BOOST.chats} more chats in the week of ${weekKey(weekStart)}`,
        });
        await tx
          .insert(weeklyChatUsage)
          .values({ accountId: input.accountId, weekStart: weekKey(weekStart), boosts: 1 })
          .onConflictDoUpdate({
            target: [weeklyChatUsage.accountId, weeklyChatUsage.weekStart],
            set: { boosts: sql`${weeklyChatUsage.boosts} + 1` },
          });
        return { boost: boughtBoost(entry, weekStart), duplicate: false, quota: await read(tx, input.accountId) };
      });
    },
  };
}

export type WeeklyQuotaService = ReturnType<typeof createWeeklyQuota>;
