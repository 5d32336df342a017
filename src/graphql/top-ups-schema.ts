import { z } from "zod";
import type { TopUp } from "../domain/schema/index.js";
import { type TopUpCheckouts, topUpAmountCents } from "../domain/top-ups/checkout.js";
import { type DashboardContext, signedIn } from "./context.js";
import { pageAfterCursor, pageArguments, pageTypeDefs } from "./page-arguments.js";

export const topUpsTypeDefs = /* GraphQL */ `
  enum TopUpStatus {
    "The Checkout page is open, not paid yet."
    PENDING
    "Paid, and the credits are in the balance."
    PAID
    "The payment failed, or the checkout could not be opened."
    FAILED
    "The Checkout page ran out unpaid."
    EXPIRED
  }

  type TopUp {
    id: ID!
    "What the owner asked for."
    amountCents: Int!
    currency: String!
    status: TopUpStatus!
    "What the balance was credited: what Stripe charged. 0 until paid."
    creditedCents: Int!
    "Given back through Stripe so far, and debited from the balance. A refunded top-up stays PAID; it is fully refunded when this equals creditedCents."
    refundedCents: Int!
    createdAt: String!
    paidAt: String
  }

  ${pageTypeDefs("TopUp")}

  type TopUpCheckout {
    "Stripe's Checkout page: send the owner there to pay."
    url: String!
    topUp: TopUp!
  }

  extend type Query {
    "The signed-in account's top-ups, newest first."
    topUps(first: Int = 20, after: String): TopUpPage!
  }

  extend type Mutation {
    "Starts a Stripe Checkout for $5 to $1,000 (500 to 100000 cents); the balance is credited once Stripe reports the payment."
    createTopUpCheckout(amountCents: Int!): TopUpCheckout!
  }
`;

const listTopUpsArgs = z.object(pageArguments);
const createCheckoutArgs = z.object({ amountCents: topUpAmountCents });

const topUpView = (topUp: TopUp) => ({
  id: topUp.id,
  amountCents: topUp.amountCents,
  currency: topUp.currency,
  status: topUp.status.toUpperCase(),
  creditedCents: topUp.creditedCents,
  refundedCents: topUp.refundedCents,
  createdAt: topUp.createdAt.toISOString(),
  paidAt: topUp.paidAt?.toISOString() ?? null,
});

export function topUpsResolvers({ topUps }: { topUps: TopUpCheckouts }) {
  return {
    Query: {
      topUps: async (_: unknown, args: unknown, context: DashboardContext) => {
        const { first, after } = listTopUpsArgs.parse(args);
        const page = await pageAfterCursor(topUps.list(signedIn(context).accountId, { limit: first, cursor: after }));
        return { nodes: page.data.map(topUpView), nextCursor: page.nextCursor };
      },
    },
    Mutation: {
      // yoga's context carries the request: its origin is where the payer returns when PUBLIC_BASE_URL is unset.
      createTopUpCheckout: async (_: unknown, args: unknown, context: DashboardContext & { request: Request }) => {
        const { accountId } = signedIn(context);
        const { amountCents } = createCheckoutArgs.parse(args);
        const { url, topUp } = await topUps.createCheckout({
          accountId,
          amountCents,
          serverUrl: new URL(context.request.url).origin,
        });
        return { url, topUp: topUpView(topUp) };
      },
    },
  };
}
