import { and, asc, eq, lt, sql } from "drizzle-orm";
import type { Clock } from "./clock.js";
import { type Db, isConnectionLoss, preparedStatement, type Tx } from "./db.js";
import { DomainError, RetryLaterError } from "./errors.js";
import { type CloseHold, type ClosedHold, closeHolds, type RequestEnding } from "./hold-settlement.js";
import type { EndUserIdentity } from "./identity.js";
import { newId } from "./ids.js";
import { INSUFFICIENT_BALANCE_MESSAGE } from "./ledger.js";
import { naturalBatches } from "./natural-batches.js";
import { nextWeekStart, UNLIMITED_CAP, WEEKLY_BOOST, weekKey, weeklyCapSql, type WeeklyChats, weekStartOf } from "./plans.js";
import { MIN_CHARGE_CENTS, outputWithin, type Pricing, priceRequest } from "./pricing.js";
import { accounts, holds, weeklyChatUsage } from "./schema/index.js";

export type { RequestEnding } from "./hold-settlement.js";

// SPEC 5: a request reserves its worst-case cost before it starts (a hold), and
// settles it to the actual cost when it ends, so concurrent requests on one
// account can never spend more than the balance. The hold is also the
// request's durable pending charge: it carries what the request record needs
// and the usage delivered so far, so whoever ends it (the request, or the
// sweeper after a crash) charges and records it in one transaction.
//
// Invariant: accounts.held_cents = Σ amount of the account's active holds.
// Every change to a hold's amount or status happens under the account's row
// lock (always taken before any hold row, so no two paths can deadlock), and a
// hold leaves "active" only through a conditional UPDATE … WHERE status =
// 'active', so whoever closes it first (settle or sweeper) is the only one
// that gives its amount back, charges and records it.

/** What the request record of a held request needs, fixed when the hold is taken. */
export interface HeldRequest {
  apiKeyId: string | null;
  endpoint: string;
  model: string;
  stream: boolean;
  identity: EndUserIdentity;
}

export interface ReserveHoldInput {
  accountId: string;
  requestId: string;
  pricing: Pricing;
  /** An upper bound of the request's input tokens. */
  inputTokens: number;
  /** The output budget the caller asked for (already within the model's limits). */
  requestedMaxTokens: number;
  request: HeldRequest;
  /**
   * A chat of an account whose plan (as the caller's cached account says)
   * covers chats (SPEC 10): the hold takes a chat of the week's allowance
   * when one is left, else credits as overflow. Pay-as-you-go leaves it out
   * and keeps the plain reserve statement.
   */
  weeklyChat?: boolean;
}

export interface ReservedHold {
  amountCents: number;
  /** requestedMaxTokens, or fewer when the hold covers only fewer (0: not even one beside the input). */
  maxTokens: number;
  /** The hold took all the available balance, short of the worst case: growing it later cannot help. */
  limitedByBalance: boolean;
  /** true: the plan covers the request (SPEC 10): it holds and will charge nothing, whatever its output. */
  covered?: boolean;
  /** The week's chats after this one, on a capped plan's chat. */
  weeklyChats?: WeeklyChats;
}

/** SPEC 10: neither a chat of the week's allowance nor the credits to pay one as overflow. */
export class WeeklyQuotaExceededError extends RetryLaterError {
  constructor(readonly weeklyChats: WeeklyChats, now: Date) {
    const resets = weeklyChats.resetsAt.toISOString().replace(".000Z", "Z");
    super(
      "weekly_quota_exceeded",
      `The weekly allowance of ${weeklyChats.limit} chats is used up and the balance is too low to pay for more as overflow. ` +
        `The allowance resets at ${resets} (Monday 00:00 UTC); until then, top up credits at sentx.ai or buy a Weekly Boost.`,
      weeklyChats.resetsAt.getTime() - now.getTime(),
    );
  }
}

/** Usage delivered so far and what it costs: written onto the hold while the request runs. */
export interface Checkpoint {
  requestId: string;
  inputTokens: number;
  outputTokens: number;
  costCents: number;
}

/**
 * A request the server stopped (a crash or a shutdown): a stream that had
 * delivered output sent its 200 already; anything else saw the service go away.
 */
export const interruptedEnding = (
  stream: boolean,
  delivered: boolean,
  tokens: Pick<RequestEnding, "inputTokens" | "outputTokens">,
): RequestEnding =>
  stream && delivered
    ? { status: "interrupted", httpStatus: 200, errorCode: null, ...tokens }
    : { status: "interrupted", httpStatus: 503, errorCode: "service_unavailable", ...tokens };

export interface SettledHold {
  chargedCents: number;
  /** false when the hold had been closed before (a retried settle, or the sweeper got there first). */
  settledNow: boolean;
  /** true when the sweeper had ended the hold first: the request is already recorded as interrupted. */
  endedBySweeper: boolean;
}

export interface BillingDeps {
  db: Db;
  clock: Clock;
  /** How long a hold outlives its last checkpoint before the sweeper takes it for a crashed process's. */
  holdTtlMs: number;
}

/** Abandoned holds are found this many at a time, oldest expiry first. */
const SWEEP_BATCH = 100;

const insufficientBalance = () => new DomainError("insufficient_balance", INSUFFICIENT_BALANCE_MESSAGE);
const holdEnded = () =>
  new DomainError("service_unavailable", "The service lost track of this request for a while and stopped it; nothing was charged. Retry it.");

/** The most output a budget covers, capped at what was asked; below 1 the request cannot be served. */
function fitOutput(pricing: Pricing, inputTokens: number, requestedMaxTokens: number, budgetCents: number) {
  const worstCase = priceRequest(pricing, { inputTokens, outputTokens: requestedMaxTokens });
  if (worstCase <= budgetCents) return { maxTokens: requestedMaxTokens, amountCents: worstCase };
  // SPEC 5: shrink the answer to what the balance covers rather than refuse.
  const maxTokens = outputWithin(pricing, inputTokens, requestedMaxTokens, budgetCents);
  if (maxTokens < 1) throw insufficientBalance();
  return { maxTokens, amountCents: priceRequest(pricing, { inputTokens, outputTokens: maxTokens }) };
}

/** 0 is a surface whose output is not priced (embeddings, speech): its hold covers the input alone. */
function assertOutputBudget(requestedMaxTokens: number): void {
  if (!Number.isSafeInteger(requestedMaxTokens) || requestedMaxTokens < 0) {
    throw new RangeError(`requestedMaxTokens must be a non-negative integer, got ${requestedMaxTokens}`);
  }
}

interface ReserveHoldValues extends Record<string, unknown> {
  accountId: string;
  requestId: string;
  worstCase: number;
  holdId: string;
  apiKeyId: string | null;
  endpoint: string;
  model: string;
  stream: boolean;
  identity: string;
  at: string;
  expiresAt: string;
}

// One statement, so the account row is locked for one round trip, not a
// transaction's worth (ARCHITECTURE: the hot path is lean). It locks the
// account, reads what is available (negative if a refund landed while holds
// were open), and only when at least the 1-cent minimum is and the request
// holds nothing yet, adds the grant to held_cents and inserts the hold,
// atomically. A unique request_id makes a racing twin fail whole.
const reserveHoldStatement = preparedStatement<ReserveHoldValues>("reserve_hold", (p) => sql`
  with account as (
    select ${accounts.id} as id, ${accounts.balanceCents} - ${accounts.heldCents} as available
    from ${accounts} where ${accounts.id} = ${p.accountId} for update
  ),
  existing as (select ${holds.amountCents} as amount from ${holds} where ${holds.requestId} = ${p.requestId}),
  granted as (
    select account.id, least(${p.worstCase}::bigint, account.available) as amount from account
    where account.available >= ${MIN_CHARGE_CENTS} and not exists (select 1 from existing)
  ),
  held as (
    update ${accounts} set held_cents = ${accounts.heldCents} + granted.amount
    from granted where ${accounts.id} = granted.id returning granted.amount
  ),
  inserted as (
    insert into ${holds} (id, account_id, request_id, amount_cents, status, api_key_id, endpoint, model, stream, identity, created_at, expires_at)
    select ${p.holdId}, ${p.accountId}, ${p.requestId}, held.amount, 'active', ${p.apiKeyId}, ${p.endpoint}, ${p.model},
      ${p.stream}::boolean, ${p.identity}::jsonb, ${p.at}::timestamptz, ${p.expiresAt}::timestamptz
    from held returning amount_cents
  )
  select (select count(*) from account)::int as accounts,
    (select amount from existing)::text as existing,
    (select amount_cents from inserted)::text as inserted`);

interface ReserveChatHoldValues extends ReserveHoldValues {
  week: string;
}

// The reserve statement of a chat on a plan that covers chats (SPEC 10), the
// same one round trip: under the account's lock it either takes a chat of the
// week's allowance (a covered hold of 0 cents, counted as reserved until it
// ends) or, with none left, holds credits exactly as the plain statement
// does. The plan is read from the locked row, so a plan changed since the
// caller was cached is the one applied.
//
// The statement's snapshot predates its wait for the account lock, so the
// week's row is not read from it: the upsert decides on the row's newest
// version (ON CONFLICT DO UPDATE … WHERE always sees it), which is why the
// plan's cap travels in the row (plan_cap). `week` is read FOR UPDATE, which
// also returns the newest version, for the headers only.
const reserveChatHoldStatement = preparedStatement<ReserveChatHoldValues>("reserve_chat_hold", (p) => sql`
  with account as (
    select ${accounts.id} as id, ${accounts.balanceCents} - ${accounts.heldCents} as available, ${accounts.plan} as plan
    from ${accounts} where ${accounts.id} = ${p.accountId} for update
  ),
  existing as (
    select ${holds.amountCents} as amount, ${holds.quotaWeek} is not null as covered from ${holds} where ${holds.requestId} = ${p.requestId}
  ),
  plan_cap as (
    select account.id, ${weeklyCapSql(sql`account.plan`)} as cap from account
  ),
  counted as (
    insert into ${weeklyChatUsage} as w (account_id, week_start, reserved, plan_cap)
    select plan_cap.id, ${p.week}::date, 1, plan_cap.cap from plan_cap
    where plan_cap.cap > 0 and not exists (select 1 from existing)
    on conflict (account_id, week_start) do update set reserved = w.reserved + 1, plan_cap = excluded.plan_cap
      where w.used + w.reserved < excluded.plan_cap + ${WEEKLY_BOOST.chats} * w.boosts
    returning w.used + w.reserved as taken, w.plan_cap + ${WEEKLY_BOOST.chats} * w.boosts as allowance
  ),
  week as (
    select w.used + w.reserved as taken, w.boosts from ${weeklyChatUsage} w
    where w.account_id = (select id from account) and w.week_start = ${p.week}::date for update
  ),
  granted as (
    select account.id, least(${p.worstCase}::bigint, account.available) as amount from account
    where account.available >= ${MIN_CHARGE_CENTS} and not exists (select 1 from existing) and not exists (select 1 from counted)
  ),
  held as (
    update ${accounts} set held_cents = ${accounts.heldCents} + granted.amount
    from granted where ${accounts.id} = granted.id returning granted.amount
  ),
  inserted as (
    insert into ${holds} (id, account_id, request_id, amount_cents, status, api_key_id, endpoint, model, stream, identity, created_at, expires_at, quota_week)
    select ${p.holdId}, ${p.accountId}, ${p.requestId}, x.amount, 'active', ${p.apiKeyId}, ${p.endpoint}, ${p.model},
      ${p.stream}::boolean, ${p.identity}::jsonb, ${p.at}::timestamptz, ${p.expiresAt}::timestamptz, x.week
    from (select held.amount, null::date as week from held union all select 0, ${p.week}::date from counted) x
    returning amount_cents, quota_week is not null as covered
  )
  select (select count(*) from account)::int as accounts,
    (select amount from existing)::text as existing, (select covered from existing) as existing_covered,
    (select amount_cents from inserted)::text as inserted, (select covered from inserted) as inserted_covered,
    (select cap from plan_cap)::text as cap,
    coalesce((select allowance from counted), (select cap from plan_cap) + ${WEEKLY_BOOST.chats} * (select boosts from week))::text as allowance,
    coalesce((select taken from counted), (select taken from week))::text as taken`);

export function createBilling({ db, clock, holdTtlMs }: BillingDeps) {
  const expiryFrom = (now: Date) => new Date(now.getTime() + holdTtlMs);
  // Requests that end together settle together: one statement and one lock of
  // each account per batch (group commit). Two lanes, so one slow batch (an
  // account lock held by a top-up, say) does not stop every settle.
  const closeHold: (input: CloseHold) => Promise<ClosedHold> = naturalBatches((inputs) => closeHolds(db, inputs), {
    lanes: 2,
    maxBatch: 200,
    isolate: (error) => !isConnectionLoss(error),
  });

  /**
   * Locks the account that owns a request's hold, then reads the hold; null when there is no such hold.
   * Fix (found by test/faults/surface-faults.test.ts): the hold is read by a statement of its own, after
   * the lock. Read by the locking statement, it was as of before that statement waited for the lock
   * (PostgreSQL re-reads only the locked row), so a hold that a settle closed meanwhile (a realtime
   * session's last top-up racing its end) still looked active, was resized, and its account kept the
   * difference as held forever. Every close takes the account's lock first, so this read stays current.
   */
  async function lockHold(tx: Tx, requestId: string) {
    const [account] = await tx
      .select({ balanceCents: accounts.balanceCents, heldCents: accounts.heldCents })
      .from(holds)
      .innerJoin(accounts, eq(accounts.id, holds.accountId))
      .where(eq(holds.requestId, requestId))
      .for("update", { of: accounts });
    if (!account) return null;
    const [hold] = await tx.select().from(holds).where(eq(holds.requestId, requestId));
    return hold ? { ...account, hold } : null;
  }

  /**
   * Takes the hold: the worst case of an upper bound of the input, or all the
   * available balance when that is less, so a large estimate alone never
   * refuses a request the exact count may fit (the caller decides once it has
   * counted). Refuses with 402 only when not even the 1-cent minimum is
   * available, which needs no counting at all. Safe to retry: a hold that a
   * lost commit did create is returned as it was taken.
   */
  async function reserveHold(input: ReserveHoldInput): Promise<ReservedHold> {
    const { accountId, requestId, pricing, inputTokens, requestedMaxTokens, request } = input;
    assertOutputBudget(requestedMaxTokens);
    const worstCase = priceRequest(pricing, { inputTokens, outputTokens: requestedMaxTokens });
    const reserved = (amountCents: number): ReservedHold => ({
      amountCents,
      maxTokens: outputWithin(pricing, inputTokens, requestedMaxTokens, amountCents),
      limitedByBalance: amountCents < worstCase,
    });
    const now = clock.now();
    const values: ReserveHoldValues = {
      accountId,
      requestId,
      worstCase,
      holdId: newId.hold(),
      apiKeyId: request.apiKeyId,
      endpoint: request.endpoint,
      model: request.model,
      stream: request.stream,
      identity: JSON.stringify(request.identity),
      at: now.toISOString(),
      expiresAt: expiryFrom(now).toISOString(),
    };
    if (input.weeklyChat) return reserveChatHold(values, now, reserved, requestedMaxTokens);
    const [row] = await reserveHoldStatement<{ accounts: number; existing: string | null; inserted: string | null }>(db, values);
    if (!row || row.accounts === 0) throw new DomainError("not_found", `No account ${accountId}.`);
    const amount = row.existing ?? row.inserted;
    if (amount === null) throw insufficientBalance();
    return reserved(Number(amount));
  }

  /** reserveHold for a chat on a plan that covers chats: a chat of the week's allowance, else credits as overflow, else 429. */
  async function reserveChatHold(
    values: ReserveHoldValues,
    now: Date,
    reserved: (amountCents: number) => ReservedHold,
    requestedMaxTokens: number,
  ): Promise<ReservedHold> {
    const weekStart = weekStartOf(now);
    const [row] = await reserveChatHoldStatement<{
      accounts: number;
      existing: string | null;
      existing_covered: boolean | null;
      inserted: string | null;
      inserted_covered: boolean | null;
      cap: string | null;
      allowance: string | null;
      taken: string | null;
    }>(db, { ...values, week: weekKey(weekStart) });
    if (!row || row.accounts === 0) throw new DomainError("not_found", `No account ${values.accountId}.`);
    const cap = Number(row.cap);
    // Unlimited plans (and a plan changed to pay-as-you-go meanwhile) have no allowance to report.
    const capped = cap > 0 && cap < UNLIMITED_CAP;
    const allowance = row.allowance === null ? cap : Number(row.allowance);
    const weeklyChats: WeeklyChats | undefined = capped
      ? { limit: allowance, remaining: Math.max(0, allowance - Number(row.taken ?? 0)), resetsAt: nextWeekStart(weekStart) }
      : undefined;
    const amount = row.existing ?? row.inserted;
    if (amount === null) {
      if (weeklyChats) throw new WeeklyQuotaExceededError(weeklyChats, now);
      throw insufficientBalance();
    }
    const covered = (row.existing_covered ?? row.inserted_covered) === true;
    const hold = covered
      ? { amountCents: 0, maxTokens: requestedMaxTokens, limitedByBalance: false, covered: true }
      : reserved(Number(amount));
    return weeklyChats ? { ...hold, weeklyChats } : hold;
  }

  /** Resizes an active hold, under its account's lock, to what `fit` makes of the budget it may take. */
  function resizeHold<T extends { amountCents: number }>(requestId: string, fit: (budgetCents: number, heldCents: number) => T): Promise<T> {
    return db.transaction(async (tx) => {
      const locked = await lockHold(tx, requestId);
      if (!locked) throw new DomainError("not_found", `No hold for request ${requestId}.`);
      // Ended already: by the sweeper, when this process could not checkpoint it for a whole TTL. The request cannot go on.
      if (locked.hold.status !== "active") throw holdEnded();
      const { hold } = locked;
      const fitted = fit(locked.balanceCents - locked.heldCents + hold.amountCents, hold.amountCents);
      await tx.update(holds).set({ amountCents: fitted.amountCents }).where(eq(holds.id, hold.id));
      await tx
        .update(accounts)
        .set({ heldCents: sql`${accounts.heldCents} + ${fitted.amountCents - hold.amountCents}` })
        .where(eq(accounts.id, hold.accountId));
      return fitted;
    });
  }

  /**
   * Refits an active hold to the exact input, once attachments are resolved
   * and counted: it grows by what the balance allows (and the output budget
   * shrinks to fit), or refuses with 402 when not even one token fits.
   */
  function refitHold(input: Omit<ReserveHoldInput, "accountId" | "request">): Promise<Pick<ReservedHold, "amountCents" | "maxTokens">> {
    const { requestId, pricing, inputTokens, requestedMaxTokens } = input;
    assertOutputBudget(requestedMaxTokens);
    return resizeHold(requestId, (budget) => fitOutput(pricing, inputTokens, requestedMaxTokens, budget));
  }

  /**
   * Grows an active hold to at least `atLeastCents` (a measured input, or a
   * running session's cost so far), or refuses with 402 when the balance
   * cannot cover it; a hold already that large is left as it is.
   */
  function growHold({ requestId, atLeastCents }: { requestId: string; atLeastCents: number }): Promise<{ amountCents: number }> {
    return resizeHold(requestId, (budget, held) => {
      if (atLeastCents <= held) return { amountCents: held };
      if (atLeastCents > budget) throw insufficientBalance();
      return { amountCents: atLeastCents };
    });
  }

  /**
   * Writes running requests' delivered usage onto their holds, in one
   * statement, and pushes their expiry forward: a hold whose process keeps
   * checkpointing is never taken for abandoned. No account lock: only the
   * hold row changes, and a hold already closed is left as it is. A hold
   * locked right now is being closed (a settle batch holds it under its
   * account's lock), so it is skipped rather than waited for: waiting could
   * close a cycle with that batch, which locks holds in its own order.
   */
  async function checkpoint(checkpoints: readonly Checkpoint[]): Promise<void> {
    if (checkpoints.length === 0) return;
    const now = clock.now();
    // Arrays rather than a VALUES list, so the statement's text (and its prepared plan) is the same for any number of holds.
    const column = <T>(pick: (c: Checkpoint) => T) => sql.param(checkpoints.map(pick));
    await db.execute(sql`
      with v as (
        select * from unnest(${column((c) => c.requestId)}::text[], ${column((c) => c.inputTokens)}::bigint[],
          ${column((c) => c.outputTokens)}::bigint[], ${column((c) => c.costCents)}::bigint[]) as v(request_id, input_tokens, output_tokens, cost_cents)
      ),
      running as (
        select ${holds.id} as id, v.* from ${holds} join v on v.request_id = ${holds.requestId}
        where ${holds.status} = 'active' for update of ${holds} skip locked
      )
      update ${holds} set
        delivered_input_tokens = running.input_tokens,
        delivered_output_tokens = running.output_tokens,
        delivered_cost_cents = running.cost_cents,
        checkpointed_at = ${now.toISOString()}::timestamptz,
        expires_at = ${expiryFrom(now).toISOString()}::timestamptz
      from running where ${holds.id} = running.id`);
  }

  /**
   * Ends a held request, once: gives the hold back, charges `costCents` (0
   * charges nothing) and writes the request record, in one statement.
   * Repeating it (a retry after a lost commit) changes nothing and reports
   * the first charge; so does settling a hold the sweeper already ended.
   */
  async function settleHold({ requestId, costCents, ending }: { requestId: string; costCents: number; ending: RequestEnding }): Promise<SettledHold> {
    if (!Number.isSafeInteger(costCents) || costCents < 0) {
      throw new RangeError(`costCents must be a non-negative integer, got ${costCents}`);
    }
    const closed = await closeHold({ requestId, costCents, closeAs: costCents > 0 ? "settled" : "released", ending, now: clock.now() });
    if (!closed.found) throw new DomainError("not_found", `No hold for request ${requestId}.`);
    return { chargedCents: closed.chargedCents, settledNow: closed.closedNow, endedBySweeper: !closed.closedNow && closed.status === "expired" };
  }

  /**
   * The sweeper (SPEC 5): ends the holds whose process stopped checkpointing
   * them (it crashed), charging what their last checkpoint delivered, once.
   * Safe to run on several instances at once, and beside a late settle: each
   * hold is closed by one statement that closes it only if it is still
   * active, still expired and still at the checkpoint read here.
   */
  async function settleAbandonedHolds(): Promise<number> {
    const now = clock.now();
    let settled = 0;
    let after = "";
    for (;;) {
      const due = await db
        .select({
          requestId: holds.requestId,
          stream: holds.stream,
          deliveredInputTokens: holds.deliveredInputTokens,
          deliveredOutputTokens: holds.deliveredOutputTokens,
          deliveredCostCents: holds.deliveredCostCents,
        })
        .from(holds)
        .where(and(eq(holds.status, "active"), lt(holds.expiresAt, now), sql`${holds.requestId} > ${after}`))
        .orderBy(asc(holds.requestId))
        .limit(SWEEP_BATCH);
      for (const hold of due) {
        const delivered = hold.deliveredOutputTokens > 0;
        // SPEC 5: the process died; what its last checkpoint says was delivered is billed, once.
        const ending = interruptedEnding(hold.stream, delivered, {
          inputTokens: delivered ? hold.deliveredInputTokens : 0,
          outputTokens: hold.deliveredOutputTokens,
        });
        const [closed] = await closeHolds(db, [{
          requestId: hold.requestId,
          costCents: hold.deliveredCostCents,
          closeAs: "expired",
          ending,
          now,
          abandoned: { deliveredCostCents: hold.deliveredCostCents },
        }]);
        if (closed!.found && closed!.closedNow) settled++;
      }
      if (due.length < SWEEP_BATCH) return settled;
      after = due[due.length - 1]!.requestId;
    }
  }

  /** The account's balance less its holds, as committed now: a cheap look before anything costly is read. */
  async function availableCents(accountId: string): Promise<number> {
    const [row] = await db
      .select({ available: sql<string>`${accounts.balanceCents} - ${accounts.heldCents}` })
      .from(accounts)
      .where(eq(accounts.id, accountId));
    return row ? Number(row.available) : 0;
  }

  return { reserveHold, refitHold, growHold, checkpoint, settleHold, settleAbandonedHolds, availableCents };
}

export type Billing = ReturnType<typeof createBilling>;
