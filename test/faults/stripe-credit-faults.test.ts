import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually.js";
import { checkoutSession, deliver, type PaidTopUp, STRIPE_TEST_ENV, stripeEvent } from "../support/stripe-stand-in.js";
import { type FaultStack, startFaultStack } from "./support/fault-stack.js";

// A Stripe credit cut off halfway: its transaction holds the top-up's row and
// waits for the account's when the database connection drops, or when the
// process running the job is killed. Either way the job runs again and the
// payment is credited exactly once.

// BullMQ hands a killed worker's job to another once its lock lapses (10 s) and a stalled-job check sees it (every 5 s).
const RECOVERY_AFTER_KILL_MS = 45_000;

let stack: FaultStack;

beforeAll(async () => {
  stack = await startFaultStack({ env: STRIPE_TEST_ENV });
});
afterAll(async () => {
  await stack?.close();
});

/** A pending top-up as createTopUpCheckout leaves it once Stripe has opened its session. */
async function pendingTopUp(accountId: string, amountCents: number): Promise<PaidTopUp> {
  const topUp = {
    topUpId: `topup_${randomUUID().replaceAll("-", "").slice(0, 20)}`,
    accountId,
    amountCents,
    sessionId: `cs_test_${randomUUID().replaceAll("-", "")}`,
    paymentIntentId: `pi_${randomUUID().replaceAll("-", "")}`,
  };
  await stack.sql`insert into top_ups (id, account_id, amount_cents, checkout_session_id)
    values (${topUp.topUpId}, ${accountId}, ${amountCents}, ${topUp.sessionId})`;
  return topUp;
}

/** Locks the account row from a connection of the test's own, so a credit stops inside its transaction. */
async function holdAccount(accountId: string) {
  const sql = postgres(stack.database.url, { max: 1, onnotice: () => {} });
  const connection = await sql.reserve();
  await connection`begin`;
  await connection`select id from accounts where id = ${accountId} for update`;
  const [backend] = await connection<{ pid: number }[]>`select pg_backend_pid() as pid`;
  return {
    pid: backend!.pid,
    async release() {
      await connection`rollback`;
      connection.release();
      await sql.end({ timeout: 5 });
    },
  };
}

/** Waits until some other connection is stuck behind the lock: the credit is halfway. */
async function creditWaitingOnLock(holderPid: number): Promise<void> {
  const waiting = await eventually(
    async () => (await stack.sql`select pid from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> ${holderPid}`).length,
    (n) => n > 0,
    10_000,
  );
  expect(waiting, "a credit is waiting on the account's lock").toBeGreaterThan(0);
}

async function creditedState(accountId: string, topUpId: string) {
  const [row] = await stack.sql<{ status: string; credits: number; balance: string }[]>`
    select t.status, (select count(*)::int from ledger_entries e where e.account_id = t.account_id and e.kind = 'topup') as credits,
      a.balance_cents::text as balance
    from top_ups t join accounts a on a.id = t.account_id where t.id = ${topUpId} and a.id = ${accountId}`;
  return row!;
}

describe("a Stripe credit cut off halfway", () => {
  it("is credited exactly once after the database drops the job's connection", async () => {
    const server = await stack.startServer();
    const { accountId } = await stack.customer(server, 100);
    const topUp = await pendingTopUp(accountId, 1_500);
    const holder = await holdAccount(accountId);
    try {
      const event = stripeEvent("checkout.session.completed", checkoutSession(topUp, "paid"));
      expect((await deliver(server.url, event)).status).toBe(200);
      await creditWaitingOnLock(holder.pid);
      await stack.sql`select pg_terminate_backend(pid) from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() and pid <> ${holder.pid}`;
      // Stripe sends it again meanwhile (as if our answer had been lost): it collapses into the job already queued.
      expect((await deliver(server.url, event)).status).toBe(200);
    } finally {
      await holder.release();
    }
    const state = await eventually(() => creditedState(accountId, topUp.topUpId), (s) => s.status === "paid", 20_000);
    expect(state).toEqual({ status: "paid", credits: 1, balance: "1600" });
    await stack.expectExactBooks();
    // The next test's job must go to the process it kills, not to this one.
    await server.stop();
  });

  it(
    "is credited exactly once by another process after the one running the job is killed",
    async () => {
      const doomed = await stack.startServer();
      const { accountId } = await stack.customer(doomed, 100);
      const topUp = await pendingTopUp(accountId, 2_500);
      const holder = await holdAccount(accountId);
      try {
        expect((await deliver(doomed.url, stripeEvent("checkout.session.completed", checkoutSession(topUp, "paid")))).status).toBe(200);
        await creditWaitingOnLock(holder.pid);
        await doomed.kill();
      } finally {
        await holder.release();
      }
      expect((await creditedState(accountId, topUp.topUpId)).status).toBe("pending");
      await stack.startServer();
      const state = await eventually(() => creditedState(accountId, topUp.topUpId), (s) => s.status === "paid", RECOVERY_AFTER_KILL_MS);
      expect(state).toEqual({ status: "paid", credits: 1, balance: "2600" });
      await stack.expectExactBooks();
    },
    RECOVERY_AFTER_KILL_MS + 30_000,
  );
});
