import { randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import { eq } from "drizzle-orm";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../../src/domain/logger.js";
import { topUps } from "../../src/domain/schema/index.js";
import { createPaymentEvents } from "../../src/domain/top-ups/payment-events.js";
import { RECONCILE_GRACE_MS, RECONCILE_TOP_UPS_EVERY_MS, reconcileTopUpsJob } from "../../src/domain/top-ups/reconcile.js";
import { createStripeGateway } from "../../src/infra/stripe-gateway.js";
import { testEnv } from "../support/env.js";
import { eventually } from "../support/eventually.js";
import { opsClient } from "../support/ops-client.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { stripeOwner } from "../support/stripe-owner.js";
import { checkoutSession, deliver, type PaidTopUp, STRIPE_TEST_ENV, type StripeStandIn, startStripeStandIn, stripeEvent } from "../support/stripe-stand-in.js";

// SPEC 5 top-ups whose webhook event never came: the reconciliation job reads
// each pending top-up's Checkout Session from Stripe (the local stand-in) and
// applies it by the events' own steps. The job is run directly, with a clock
// past the grace period, against the real server's database and queue.

let stripe: StripeStandIn;
let t: TestPlatform;
const warnings: Array<Record<string, unknown>> = [];
const logger: Logger = { info() {}, warn: (obj) => void warnings.push(obj as Record<string, unknown>), error() {} };

beforeAll(async () => {
  stripe = await startStripeStandIn();
  t = await startTestPlatform({ env: { ...STRIPE_TEST_ENV, STRIPE_API_BASE: stripe.baseUrl } });
});
afterAll(async () => {
  await t?.close();
  await stripe?.close();
});

let runs = 0;
/** One run of the job as the platform schedules it, at `at`: by default well past every top-up's grace period, and later than any run before. */
async function reconcile({ at = new Date(Date.now() + 10 * 60_000 + ++runs), sessionsPerRun }: { at?: Date; sessionsPerRun?: number } = {}) {
  const { db, ledger } = t.platform.services;
  const clock = { now: () => at };
  const gateway = createStripeGateway({
    secretKey: STRIPE_TEST_ENV.STRIPE_SECRET_KEY,
    webhookSecret: STRIPE_TEST_ENV.STRIPE_WEBHOOK_SECRET,
    apiBase: new URL(stripe.baseUrl),
  });
  const payments = createPaymentEvents({ db, clock, ledger, logger });
  await reconcileTopUpsJob({ db, clock, logger, stripe: gateway, payments }, sessionsPerRun ? { sessionsPerRun } : {}).run();
}

/** How often the job asked Stripe for this session. */
const lookups = (sessionId: string) => stripe.requests.filter((r) => r.method === "GET" && r.path === `/v1/checkout/sessions/${sessionId}`).length;

/** Stripe's side of a paid checkout: what a lookup answers from now on. */
const pay = (topUp: PaidTopUp) => stripe.updateSession(topUp.sessionId, { status: "complete", payment_status: "paid", payment_intent: topUp.paymentIntentId });


/** Delivers a signed event to the webhook and waits until the queue has run it. */
async function sendEvent(type: string, object: Record<string, unknown>): Promise<void> {
  expect(await deliver(t.url, stripeEvent(type, object))).toEqual({ status: 200, body: { received: true } });
  await jobsDone();
}

async function jobsDone(): Promise<void> {
  const unfinished = async () => {
    const counts = (await opsClient(t.url).jobs.stats.query()).find((q) => q.queue === "one-off")!.counts;
    return (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0);
  };
  expect(await eventually(unfinished, (n) => n === 0, 20_000)).toBe(0);
}

async function expectBooksExact(): Promise<void> {
  expect(await t.platform.services.ledger.verify(t.platform.services.db)).toEqual([]);
}

describe("reconciling pending top-ups with Stripe", () => {
  it("credits a paid top-up whose webhook never came, exactly once, and the late webhook changes nothing", async () => {
    const owner = await stripeOwner(t);
    const topUp = await owner.openTopUp(1_500);
    pay(topUp);
    await reconcile();
    await reconcile();
    expect(lookups(topUp.sessionId), "the second run finds it paid and leaves it alone").toBe(1);
    expect(await owner.entries("topup")).toMatchObject([{ amountCents: 1_500, idempotencyKey: `stripe-checkout:${topUp.sessionId}` }]);
    expect(await owner.balance()).toBe(1_500);
    expect(await owner.topUp(topUp.topUpId)).toMatchObject({ status: "paid", creditedCents: 1_500, paymentIntentId: topUp.paymentIntentId });
    expect(warnings).toContainEqual(expect.objectContaining({ topUpId: topUp.topUpId, outcome: "paid" }));
    await expectBooksExact();

    // Stripe delivers the event after all, once the endpoint works again.
    await sendEvent("checkout.session.completed", checkoutSession(topUp, "paid"));
    await sendEvent("checkout.session.async_payment_succeeded", checkoutSession(topUp, "paid"));
    expect(await owner.entries("topup")).toHaveLength(1);
    expect(await owner.balance()).toBe(1_500);
    await expectBooksExact();
  });

  it("finds nothing to do for a top-up its webhook credited, and credits once when both come at the same moment", async () => {
    const owner = await stripeOwner(t);
    const [credited, racing] = [await owner.openTopUp(700), await owner.openTopUp(900)];
    pay(credited);
    pay(racing);
    await sendEvent("checkout.session.completed", checkoutSession(credited, "paid"));
    await reconcile();
    expect(lookups(credited.sessionId)).toBe(0);

    await Promise.all([deliver(t.url, stripeEvent("checkout.session.completed", checkoutSession(racing, "paid"))), reconcile()]);
    await jobsDone();
    expect((await owner.entries("topup")).map((e) => e.amountCents).sort((a, b) => a - b)).toEqual([700, 900]);
    expect(await owner.balance()).toBe(1_600);
    for (const topUp of [credited, racing]) expect((await owner.topUp(topUp.topUpId)).status).toBe("paid");
    await expectBooksExact();
  });

  it("marks a top-up whose session expired EXPIRED, and leaves one whose session is open PENDING", async () => {
    const owner = await stripeOwner(t);
    const [expiring, open] = [await owner.openTopUp(600), await owner.openTopUp(800)];
    stripe.updateSession(expiring.sessionId, { status: "expired" });
    await reconcile();
    expect((await owner.topUp(expiring.topUpId)).status).toBe("expired");
    expect((await owner.topUp(open.topUpId)).status).toBe("pending");
    await reconcile();
    // Closed, it is not looked up again; still pending, it is.
    expect([lookups(expiring.sessionId), lookups(open.sessionId)]).toEqual([1, 2]);
    // The expiry event arriving late leaves it as it is.
    await sendEvent("checkout.session.expired", checkoutSession(expiring, "unpaid", { status: "expired" }));
    expect((await owner.topUp(expiring.topUpId)).status).toBe("expired");
    expect(await owner.entries("topup")).toEqual([]);
    expect(await owner.balance()).toBe(0);
    await expectBooksExact();
  });

  it("leaves a top-up younger than the grace period to its webhook, without asking Stripe", async () => {
    const owner = await stripeOwner(t);
    const topUp = await owner.openTopUp(500);
    pay(topUp);
    const { createdAt } = await owner.topUp(topUp.topUpId);
    await reconcile({ at: new Date(createdAt.getTime() + RECONCILE_GRACE_MS - 1_000) });
    expect(lookups(topUp.sessionId)).toBe(0);
    expect((await owner.topUp(topUp.topUpId)).status).toBe("pending");
    await reconcile({ at: new Date(createdAt.getTime() + RECONCILE_GRACE_MS + 1_000) });
    expect(lookups(topUp.sessionId)).toBe(1);
    expect(await owner.balance()).toBe(500);
    await expectBooksExact();
  });

  it("goes on past a top-up whose lookup fails or whose session does not match, and tries it again next run", async () => {
    const owner = await stripeOwner(t);
    const [first, failing, mismatched, last] = [
      await owner.openTopUp(500),
      await owner.openTopUp(600),
      await owner.openTopUp(700),
      await owner.openTopUp(800),
    ];
    for (const topUp of [first, failing, mismatched, last]) pay(topUp);
    stripe.refuseLookupsOf(failing.sessionId, { status: 500, message: "An unknown error occurred" });
    // Says it was opened for another amount than the top-up asked: not ours to credit.
    stripe.updateSession(mismatched.sessionId, {
      metadata: { account_id: owner.accountId, top_up_id: mismatched.topUpId, amount_cents: "100000" },
    });
    await reconcile();
    const statuses = async () => Promise.all([first, failing, mismatched, last].map(async (topUp) => (await owner.topUp(topUp.topUpId)).status));
    expect(await statuses()).toEqual(["paid", "pending", "pending", "paid"]);
    for (const topUp of [failing, mismatched]) {
      expect(warnings).toContainEqual(expect.objectContaining({ topUpId: topUp.topUpId, sessionId: topUp.sessionId, err: expect.any(Error) }));
    }
    expect(await owner.balance()).toBe(1_300);
    await expectBooksExact();

    stripe.refuseLookupsOf(failing.sessionId, null);
    await reconcile();
    expect(await statuses()).toEqual(["paid", "paid", "pending", "paid"]);
    expect(await owner.balance()).toBe(1_900);
    await expectBooksExact();
  });

  it("looks at every pending top-up in turn, however many stay open", async () => {
    const owner = await stripeOwner(t);
    for (let i = 0; i < 3; i++) await owner.openTopUp(500 + i);
    const { db } = t.platform.services;
    const pending = await db.select({ sessionId: topUps.checkoutSessionId }).from(topUps).where(eq(topUps.status, "pending"));
    const before = pending.map(({ sessionId }) => lookups(sessionId!));
    // One per run: oldest first alone would ask for the same one every time.
    for (let i = 0; i < pending.length; i++) await reconcile({ sessionsPerRun: 1 });
    expect(pending.map(({ sessionId }, i) => lookups(sessionId!) - before[i]!)).toEqual(pending.map(() => 1));
  });
});

describe("scheduling", () => {
  const prefix = `sentx-test-${randomUUID()}:`;
  let probe: Redis;

  beforeAll(() => {
    probe = new Redis(testEnv.redisUrl, { maxRetriesPerRequest: null });
  });
  afterAll(() => probe?.disconnect());

  it("runs the reconciliation as a shared job with Stripe configured, and not at all without", async () => {
    const [configured, unconfigured] = await Promise.all([
      startTestPlatform({ env: { ...STRIPE_TEST_ENV, STRIPE_API_BASE: stripe.baseUrl, REDIS_URL: testEnv.redisUrl, REDIS_PREFIX: `${prefix}stripe:` } }),
      startTestPlatform({ env: { REDIS_URL: testEnv.redisUrl, REDIS_PREFIX: `${prefix}none:` } }),
    ]);
    const [withStripe, without] = ["stripe", "none"].map((name) => new Queue("recurring", { connection: probe, prefix: `${prefix}${name}:bull` }));
    const schedules = async (queue: Queue) => (await queue.getJobSchedulers()).map((s) => `${s.name}@${s.every}`).sort();
    try {
      const reconciliation = `reconcile-top-ups@${RECONCILE_TOP_UPS_EVERY_MS}`;
      const shared = await eventually(() => schedules(withStripe!), (names) => names.includes(reconciliation) && names.length === 4, 10_000);
      expect(shared).toContain(reconciliation);
      // Every other shared job, and only those.
      expect(await eventually(() => schedules(without!), (names) => names.length === 3, 10_000)).toEqual(shared.filter((name) => name !== reconciliation));
    } finally {
      await Promise.all([withStripe!.close(), without!.close(), configured.close(), unconfigured.close()]);
    }
  }, 30_000);
});
