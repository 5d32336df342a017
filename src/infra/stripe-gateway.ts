import Stripe from "stripe";
import { DomainError } from "../domain/errors.js";
import type { CheckoutSessionRequest, StripeGateway } from "../domain/top-ups/stripe-port.js";

export interface StripeSettings {
  secretKey: string;
  webhookSecret: string;
  /** Another address for Stripe's API (stripe-mock, a proxy); null for Stripe's own. */
  apiBase: URL | null;
}

// Stripe answers a Checkout Session in well under a second; the owner is waiting on this one.
const API_TIMEOUT_MS = 20_000;

/** Stripe through its SDK: Checkout Sessions out (and read back), verified webhook events in. */
export function createStripeGateway({ secretKey, webhookSecret, apiBase }: StripeSettings): StripeGateway {
  const stripe = new Stripe(secretKey, {
    timeout: API_TIMEOUT_MS,
    // Retries reuse the idempotency key, so a retried create returns the session the first one opened.
    maxNetworkRetries: 2,
    ...(apiBase && {
      protocol: apiBase.protocol === "http:" ? "http" : "https",
      host: apiBase.hostname,
      port: apiBase.port || (apiBase.protocol === "http:" ? 80 : 443),
    }),
  });

  return {
    async createCheckoutSession({ topUpId, accountId, amountCents, currency, successUrl, cancelUrl }: CheckoutSessionRequest) {
      const metadata = { account_id: accountId, top_up_id: topUpId, amount_cents: String(amountCents) };
      const session = await stripe.checkout.sessions.create(
        {
          mode: "payment",
          line_items: [{ quantity: 1, price_data: { currency, unit_amount: amountCents, product_data: { name: "SentX credits" } } }],
          client_reference_id: topUpId,
          metadata,
          // On the PaymentIntent too: a refunded charge that carries it finds its top-up even before the payment is credited.
          payment_intent_data: { metadata },
          success_url: successUrl,
          cancel_url: cancelUrl,
        },
        { idempotencyKey: topUpId },
      );
      if (!session.url) throw new Error(`Stripe returned Checkout Session ${session.id} without a URL.`);
      return { id: session.id, url: session.url };
    },

    async verifyEvent(rawBody, signature) {
      if (!signature) throw new DomainError("invalid_request_error", "Missing Stripe-Signature header.");
      let event: Stripe.Event;
      try {
        // Stripe's default tolerance: a signature more than 5 minutes old is refused, so a captured request cannot be replayed later.
        event = await stripe.webhooks.constructEventAsync(Buffer.from(rawBody), signature, webhookSecret);
      } catch (error) {
        throw new DomainError("invalid_request_error", "The Stripe-Signature header does not verify (wrong secret, altered body or too old).", null, {
          cause: error,
        });
      }
      return { id: event.id, type: event.type, object: event.data.object };
    },

    retrieveCheckoutSession: (id) => stripe.checkout.sessions.retrieve(id),
  };
}
