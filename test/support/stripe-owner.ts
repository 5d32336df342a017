import { randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { expect } from "vitest";
import { ledgerEntries, topUps } from "../../src/domain/schema/index.js";
import { dashboard } from "./dashboard.js";
import type { TestPlatform } from "./platform.js";
import type { PaidTopUp } from "./stripe-stand-in.js";

const OPEN_CHECKOUT = /* GraphQL */ `
  mutation ($amountCents: Int!) { createTopUpCheckout(amountCents: $amountCents) { topUp { id } } }
`;

/** An owner signed in to `t`'s dashboard, with what the top-up scenarios read and do. */
export async function stripeOwner(t: TestPlatform) {
  const api = dashboard(t);
  const owner = await api.owner();
  const db = t.platform.services.db;
  return {
    ...owner,
    graphql: (query: string, variables: Record<string, unknown> = {}) => api.graphql(query, variables, owner.token),
    /** A top-up opened through the dashboard (pending, its session open on Stripe), as Stripe's events will name it. */
    async openTopUp(amountCents = 1_000): Promise<PaidTopUp> {
      const answer = await api.graphql(OPEN_CHECKOUT, { amountCents }, owner.token);
      expect(answer.errors).toBeUndefined();
      const topUpId = answer.data!.createTopUpCheckout.topUp.id as string;
      const [row] = await db.select().from(topUps).where(eq(topUps.id, topUpId));
      return { topUpId, accountId: owner.accountId, amountCents, sessionId: row!.checkoutSessionId!, paymentIntentId: `pi_${randomUUID().replaceAll("-", "")}` };
    },
    balance: async () => (await api.graphql(`{ me { balanceCents } }`, {}, owner.token)).data!.me.balanceCents as number,
    entries: (kind: "topup" | "refund") =>
      db.select().from(ledgerEntries).where(and(eq(ledgerEntries.accountId, owner.accountId), eq(ledgerEntries.kind, kind))),
    topUp: async (id: string) => (await db.select().from(topUps).where(eq(topUps.id, id)))[0]!,
  };
}
