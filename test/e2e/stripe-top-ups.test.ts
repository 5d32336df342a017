import { randomUUID } from "node:crypto";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode } from "../support/dashboard.js";
import { testEnv } from "../support/env.js";
import { eventually } from "../support/eventually.js";
import { opsClient } from "../support/ops-client.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { stripeOwner } from "../support/stripe-owner.js";
import {
  checkoutSession,
  deliver,
  refundedCharge,
  STRIPE_TEST_ENV,
  type StripeStandIn,
  startStripeStandIn,
  stripeEvent,
} from "../support/stripe-stand-in.js";

// SPEC 5 top-ups end to end: the real server, Stripe's API played by a local
// server, and webhook events signed with the stripe SDK's test helper.

const CREATE_CHECKOUT = /* GraphQL */ `
  mutation ($amountCents: Int!) {
    createTopUpCheckout(amountCents: $amountCents) { url topUp { id amountCents currency status creditedCents refundedCents createdAt paidAt } }
  }
`;
const TOP_UPS = /* GraphQL */ `
  query ($first: Int, $after: String) { topUps(first: $first, after: $after) { nodes { id status amountCents creditedCents refundedCents paidAt } nextCursor } }
`;

let stripe: StripeStandIn;
const started = {} as Record<"embedded" | "redis" | "unconfigured", TestPlatform>;

beforeAll(async () => {
  stripe = await startStripeStandIn();
  const withStripe = { ...STRIPE_TEST_ENV, STRIPE_API_BASE: stripe.baseUrl };
  [started.embedded, started.redis, started.unconfigured] = await Promise.all([
    startTestPlatform({ env: { ...withStripe, PUBLIC_BASE_URL: "https://sentx.example/" } }),
    startTestPlatform({ env: { ...withStripe, REDIS_URL: testEnv.redisUrl, REDIS_PREFIX: `sentx-test-${randomUUID()}:` } }),
    startTestPlatform(),
  ]);
});
afterAll(async () => {
  await Promise.all(Object.values(started).map((t) => t?.close()));
  await stripe?.close();
});

/** The one-off queue has nothing left to run (waiting, delayed or active). */
async function jobsDone(t: TestPlatform): Promise<void> {
  const unfinished = async () => {
    const stats = await opsClient(t.url).jobs.stats.query();
    const counts = stats.find((q) => q.queue === "one-off")!.counts;
    return (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0);
  };
  expect(await eventually(unfinished, (n) => n === 0, 20_000)).toBe(0);
}

/** Every job the one-off queue holds or has run, whatever its state. */
async function jobsEverQueued(t: TestPlatform): Promise<number> {
  const stats = await opsClient(t.url).jobs.stats.query();
  return Object.values(stats.find((q) => q.queue === "one-off")!.counts).reduce((sum, n) => sum + n, 0);
}

async function expectBooksExact(t: TestPlatform): Promise<void> {
  expect(await t.platform.services.ledger.verify(t.platform.services.db)).toEqual([]);
}

async function send(t: TestPlatform, type: string, object: Record<string, unknown>) {
  const event = stripeEvent(type, object);
  const answer = await deliver(t.url, event);
  expect(answer).toEqual({ status: 200, body: { received: true } });
  return event;
}

describe("createTopUpCheckout", () => {
  it("opens a Checkout Session with exactly what Stripe needs, the top-up written first", async () => {
    const t = started.embedded;
    const owner = await stripeOwner(t);
    const before = stripe.requests.length;
    const answer = await owner.graphql(CREATE_CHECKOUT, { amountCents: 2_500 });
    expect(answer.errors).toBeUndefined();
    const { url, topUp } = answer.data!.createTopUpCheckout;
    expect(stripe.requests.length).toBe(before + 1);
    const sent = stripe.requests.at(-1)!;
    const sessionId = stripe.sessionIds.at(-1)!;
    expect(url).toBe(`https://checkout.stripe.com/c/pay/${sessionId}`);
    expect(topUp).toMatchObject({ amountCents: 2_500, currency: "usd", status: "PENDING", creditedCents: 0, refundedCents: 0, paidAt: null });

    expect(sent.method).toBe("POST");
    expect(sent.path).toBe("/v1/checkout/sessions");
    expect(sent.headers.authorization).toBe(`Bearer ${STRIPE_TEST_ENV.STRIPE_SECRET_KEY}`);
    expect(sent.headers["idempotency-key"]).toBe(topUp.id);
    expect(sent.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    const metadata = { account_id: owner.accountId, top_up_id: topUp.id, amount_cents: "2500" };
    expect(sent.form).toEqual({
      mode: "payment",
      "line_items[0][quantity]": "1",
      "line_items[0][price_data][currency]": "usd",
      "line_items[0][price_data][unit_amount]": "2500",
      "line_items[0][price_data][product_data][name]": "SentX credits",
      client_reference_id: topUp.id,
      ...Object.fromEntries(Object.entries(metadata).map(([k, v]) => [`metadata[${k}]`, v])),
      ...Object.fromEntries(Object.entries(metadata).map(([k, v]) => [`payment_intent_data[metadata][${k}]`, v])),
      success_url: "https://sentx.example/dashboard/credits/success?session_id={CHECKOUT_SESSION_ID}",
      cancel_url: "https://sentx.example/dashboard/credits/cancel",
    });
    const row = await owner.topUp(topUp.id);
    expect(row).toMatchObject({ accountId: owner.accountId, status: "pending", checkoutSessionId: sessionId, checkoutUrl: url });
  });

  it("sends the payer back to the server's own URL when PUBLIC_BASE_URL is unset", async () => {
    const t = started.redis;
    const owner = await stripeOwner(t);
    await owner.openTopUp(500);
    expect(stripe.requests.at(-1)!.form.cancel_url).toBe(`${t.url}/dashboard/credits/cancel`);
  });

  it("refuses amounts outside $5 to $1,000 or not in whole cents, without calling Stripe", async () => {
    const owner = await stripeOwner(started.embedded);
    const before = stripe.requests.length;
    for (const amountCents of [499, 100_001, -500, 0]) {
      const answer = await owner.graphql(CREATE_CHECKOUT, { amountCents });
      expect(errorCode(answer), `${amountCents}`).toBe("invalid_request_error");
      expect(answer.errors![0]!.extensions!.param).toBe("amountCents");
      expect(answer.errors![0]!.message).toMatch(/500 to 100000 cents \(\$5 to \$1,000\)/);
    }
    // Not an Int: refused by GraphQL's own type check before any resolver runs.
    const fractional = await owner.graphql(CREATE_CHECKOUT, { amountCents: 1000.5 });
    expect(fractional.errors?.[0]?.message).toMatch(/Int cannot represent non-integer value/);
    expect(fractional.data ?? null).toBeNull();
    for (const amountCents of [500, 100_000]) expect((await owner.graphql(CREATE_CHECKOUT, { amountCents })).errors).toBeUndefined();
    expect(stripe.requests.length).toBe(before + 2);
    expect((await owner.graphql(TOP_UPS)).data!.topUps.nodes.map((n: { amountCents: number }) => n.amountCents)).toEqual([100_000, 500]);
  });

  it("marks the top-up failed and answers upstream_error when Stripe refuses, without Stripe's words", async () => {
    const owner = await stripeOwner(started.embedded);
    stripe.refuseNext(400, "Invalid API key sk_test_leak; request req_internal_42");
    const answer = await owner.graphql(CREATE_CHECKOUT, { amountCents: 700 });
    expect(errorCode(answer)).toBe("upstream_error");
    expect(answer.errors![0]!.message).not.toMatch(/sk_test|req_internal|Invalid API key/);
    const nodes = (await owner.graphql(TOP_UPS)).data!.topUps.nodes;
    expect(nodes).toMatchObject([{ status: "FAILED", amountCents: 700, creditedCents: 0 }]);
  });

  it("lets an owner start at most 10 checkouts an hour", async () => {
    const owner = await stripeOwner(started.embedded);
    for (let i = 0; i < 10; i++) expect((await owner.graphql(CREATE_CHECKOUT, { amountCents: 500 })).errors).toBeUndefined();
    const refused = await owner.graphql(CREATE_CHECKOUT, { amountCents: 500 });
    expect(errorCode(refused)).toBe("rate_limit_exceeded");
    expect(refused.errors![0]!.extensions!.retryAfter).toBeGreaterThan(3_000);
  });

  it("says top-ups are not configured on a server without Stripe keys, and everything else works", async () => {
    const t = started.unconfigured;
    const owner = await stripeOwner(t);
    const answer = await owner.graphql(CREATE_CHECKOUT, { amountCents: 1_000 });
    expect(errorCode(answer)).toBe("top_ups_unavailable");
    expect(answer.errors![0]!.message).toBe("Top-ups are not configured on this server: set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET.");
    expect((await owner.graphql(TOP_UPS)).data!.topUps).toEqual({ nodes: [], nextCursor: null });
    expect((await owner.graphql(`mutation { createKey(name: "works") { key } }`)).errors).toBeUndefined();
    const webhook = await deliver(t.url, stripeEvent("checkout.session.completed", {}));
    expect(webhook.status).toBe(503);
    expect(webhook.body.error).toMatchObject({ code: "top_ups_unavailable", type: "server_error" });
  });
});

describe("topUps", () => {
  it("pages newest first and never shows another owner's top-ups", async () => {
    const t = started.embedded;
    const [alice, bob] = [await stripeOwner(t), await stripeOwner(t)];
    const opened = [];
    for (const amount of [500, 600, 700]) opened.push((await alice.openTopUp(amount)).topUpId);
    await bob.openTopUp(800);
    const first = (await alice.graphql(TOP_UPS, { first: 2 })).data!.topUps;
    expect(first.nodes.map((n: { id: string }) => n.id)).toEqual([opened[2], opened[1]]);
    const rest = (await alice.graphql(TOP_UPS, { first: 2, after: first.nextCursor })).data!.topUps;
    expect(rest).toMatchObject({ nodes: [{ id: opened[0] }], nextCursor: null });
    expect((await bob.graphql(TOP_UPS)).data!.topUps.nodes).toMatchObject([{ amountCents: 800 }]);
    // Alice's cursor names nothing Bob can page from.
    expect(errorCode(await bob.graphql(TOP_UPS, { after: first.nextCursor }))).toBe("invalid_request_error");
  });
});

describe.each(["embedded", "redis"] as const)("Stripe's events, queued %s", (kind) => {
  const t = () => started[kind];

  it("credits a paid checkout exactly once, however often the event comes", async () => {
    const owner = await stripeOwner(t());
    const topUp = await owner.openTopUp(1_500);
    const event = stripeEvent("checkout.session.completed", checkoutSession(topUp, "paid"));
    for (let i = 0; i < 3; i++) expect((await deliver(t().url, event)).status).toBe(200);
    await jobsDone(t());
    // Stripe retries with a new delivery of the same event id; a second event for the same session (async_payment_succeeded) is another id.
    await send(t(), "checkout.session.completed", checkoutSession(topUp, "paid"));
    await send(t(), "checkout.session.async_payment_succeeded", checkoutSession(topUp, "paid"));
    await jobsDone(t());
    expect(await owner.entries("topup")).toMatchObject([{ amountCents: 1_500, idempotencyKey: `stripe-checkout:${topUp.sessionId}` }]);
    expect(await owner.balance()).toBe(1_500);
    const [node] = (await owner.graphql(TOP_UPS)).data!.topUps.nodes;
    expect(node).toMatchObject({ status: "PAID", creditedCents: 1_500, refundedCents: 0 });
    expect(node.paidAt).not.toBeNull();
    expect(await owner.topUp(topUp.topUpId)).toMatchObject({ paymentIntentId: topUp.paymentIntentId });
    await expectBooksExact(t());
  });

  it("waits for an unpaid completion's async_payment_succeeded, then credits once", async () => {
    const owner = await stripeOwner(t());
    const topUp = await owner.openTopUp(2_000);
    await send(t(), "checkout.session.completed", checkoutSession(topUp, "unpaid"));
    await jobsDone(t());
    expect(await owner.entries("topup")).toEqual([]);
    expect((await owner.topUp(topUp.topUpId)).status).toBe("pending");
    const succeeded = stripeEvent("checkout.session.async_payment_succeeded", checkoutSession(topUp, "paid"));
    await deliver(t().url, succeeded);
    await deliver(t().url, succeeded);
    await jobsDone(t());
    expect(await owner.entries("topup")).toHaveLength(1);
    expect(await owner.balance()).toBe(2_000);
    await expectBooksExact(t());
  });

  it("marks failed and expired checkouts, and never downgrades a paid one", async () => {
    const owner = await stripeOwner(t());
    const [failing, expiring, paid] = [await owner.openTopUp(500), await owner.openTopUp(600), await owner.openTopUp(700)];
    await send(t(), "checkout.session.async_payment_failed", checkoutSession(failing, "unpaid"));
    await send(t(), "checkout.session.expired", checkoutSession(expiring, "unpaid", { status: "expired" }));
    await send(t(), "checkout.session.completed", checkoutSession(paid, "paid"));
    await jobsDone(t());
    await send(t(), "checkout.session.expired", checkoutSession(paid, "unpaid", { status: "expired" }));
    await jobsDone(t());
    const statuses = (await owner.graphql(TOP_UPS)).data!.topUps.nodes.map((n: { status: string }) => n.status);
    expect(statuses).toEqual(["PAID", "EXPIRED", "FAILED"]);
    expect(await owner.balance()).toBe(700);
    await expectBooksExact(t());
  });

  it("applies a refund that arrives before its payment once the payment is credited", async () => {
    const owner = await stripeOwner(t());
    const topUp = await owner.openTopUp(1_000);
    const refund = stripeEvent("charge.refunded", refundedCharge(topUp, 400));
    await deliver(t().url, refund);
    // The refund's job is retried (1 s, then 2 s) until the payment's event has credited the top-up.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await owner.entries("refund")).toEqual([]);
    await send(t(), "checkout.session.completed", checkoutSession(topUp, "paid"));
    await deliver(t().url, refund);
    await jobsDone(t());
    expect(await owner.entries("refund")).toMatchObject([{ amountCents: -400, idempotencyKey: `stripe-refund:ch_${topUp.paymentIntentId.slice(3)}:400` }]);
    expect(await owner.balance()).toBe(600);
    expect(await owner.topUp(topUp.topUpId)).toMatchObject({ status: "paid", creditedCents: 1_000, refundedCents: 400 });
    await expectBooksExact(t());
  });

  it("debits exactly the refunded total for two partial refunds, each delivered twice and in reverse order", async () => {
    const owner = await stripeOwner(t());
    const topUp = await owner.openTopUp(5_000);
    await send(t(), "checkout.session.completed", checkoutSession(topUp, "paid"));
    await jobsDone(t());
    // Stripe's charge.refunded carries the charge's running total: 1,200 after the first refund, 3,000 after the second.
    const first = stripeEvent("charge.refunded", refundedCharge(topUp, 1_200, { withMetadata: false }));
    const second = stripeEvent("charge.refunded", refundedCharge(topUp, 3_000, { withMetadata: false }));
    for (const event of [second, second]) expect((await deliver(t().url, event)).status).toBe(200);
    await jobsDone(t());
    for (const event of [first, first]) expect((await deliver(t().url, event)).status).toBe(200);
    await jobsDone(t());
    const refunds = await owner.entries("refund");
    expect(refunds.reduce((sum, e) => sum + e.amountCents, 0)).toBe(-3_000);
    expect(await owner.balance()).toBe(2_000);
    expect((await owner.graphql(TOP_UPS)).data!.topUps.nodes[0]).toMatchObject({ status: "PAID", creditedCents: 5_000, refundedCents: 3_000 });
    await expectBooksExact(t());
  });

  it("lets a refund take the balance below zero, and then refuses requests with 402", async () => {
    const owner = await stripeOwner(t());
    const topUp = await owner.openTopUp(500);
    await send(t(), "checkout.session.completed", checkoutSession(topUp, "paid"));
    await jobsDone(t());
    // The credits were spent before the payment was refunded.
    const { ledger, db, keys } = t().platform.services;
    await ledger.post(db, { accountId: owner.accountId, kind: "usage", amountCents: -450, idempotencyKey: "spent-before-refund" });
    await send(t(), "charge.refunded", refundedCharge(topUp, 500));
    await jobsDone(t());
    expect(await owner.balance()).toBe(-450);
    expect((await owner.graphql(`{ me { availableCents } }`)).data!.me.availableCents).toBe(-450);
    await expectBooksExact(t());

    const { key } = await keys.create({ accountId: owner.accountId, name: "after refund" });
    const error = await t()
      .openai(key)
      .chat.completions.create({ model: "sentx-v1", messages: [{ role: "user", content: "Hi" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(402);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("insufficient_balance");
    // Only a Stripe refund may overdraw: any other debit is still refused.
    await expect(ledger.post(db, { accountId: owner.accountId, kind: "refund", amountCents: -1, idempotencyKey: "ops-refund" })).rejects.toMatchObject({
      code: "insufficient_balance",
    });
  });

  it("refuses a bad, stale or missing signature and an oversized body, queuing and crediting nothing", async () => {
    const owner = await stripeOwner(t());
    const topUp = await owner.openTopUp(900);
    const event = stripeEvent("checkout.session.completed", checkoutSession(topUp, "paid"));
    const jobsBefore = await jobsEverQueued(t());
    const refusals = [
      await deliver(t().url, event, { secret: "whsec_someoneElse0123456789" }),
      await deliver(t().url, event, { timestamp: Math.floor(Date.now() / 1000) - 600 }),
      await deliver(t().url, event, { signature: null }),
      await deliver(t().url, event, { body: event.payload.replace('"amount_total":900', '"amount_total":90000') }),
    ];
    for (const refusal of refusals) {
      expect(refusal.status).toBe(400);
      expect(refusal.body.error).toMatchObject({ type: "invalid_request_error", code: "invalid_request_error", param: null });
    }
    const huge = stripeEvent("checkout.session.completed", { ...checkoutSession(topUp, "paid"), padding: "x".repeat(300_000) });
    const oversized = await deliver(t().url, huge);
    expect(oversized.status).toBe(413);
    expect(oversized.body.error.code).toBe("request_too_large");
    expect(await jobsEverQueued(t())).toBe(jobsBefore);
    expect(await owner.entries("topup")).toEqual([]);
    expect((await owner.topUp(topUp.topUpId)).status).toBe("pending");
  });

  it("acknowledges and ignores events it does not use, and sessions SentX did not open", async () => {
    const owner = await stripeOwner(t());
    const topUp = await owner.openTopUp(800);
    const unknown = await deliver(t().url, stripeEvent("customer.created", { id: "cus_123", object: "customer" }));
    expect(unknown).toEqual({ status: 200, body: { received: true } });
    // What `stripe trigger checkout.session.completed` sends: a session without SentX's metadata.
    await send(t(), "checkout.session.completed", { ...checkoutSession(topUp, "paid"), id: "cs_test_fixture", metadata: {}, client_reference_id: null });
    await jobsDone(t());
    expect(await owner.entries("topup")).toEqual([]);
    expect((await owner.topUp(topUp.topUpId)).status).toBe("pending");
    await expectBooksExact(t());
  });
});
