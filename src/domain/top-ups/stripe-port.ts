// What the top-ups need of Stripe; src/infra/stripe-gateway.ts does it with the `stripe` SDK.

export interface CheckoutSessionRequest {
  topUpId: string;
  accountId: string;
  amountCents: number;
  currency: "usd";
  successUrl: string;
  cancelUrl: string;
}

/** A webhook event whose signature verified: Stripe's event id and type, and its `data.object` as sent. */
export interface VerifiedStripeEvent {
  id: string;
  type: string;
  object: unknown;
}

export interface StripeGateway {
  /** Opens a Checkout Session, idempotently per top-up: asking twice for one top-up returns the same session. */
  createCheckoutSession(request: CheckoutSessionRequest): Promise<{ id: string; url: string }>;
  /** The event in `rawBody`; an invalid_request_error when the signature is missing, wrong or stale. */
  verifyEvent(rawBody: Uint8Array, signature: string | undefined): Promise<VerifiedStripeEvent>;
  /** The Checkout Session as Stripe's API reports it now, unparsed like an event's object: payment-events reads both alike. */
  retrieveCheckoutSession(id: string): Promise<unknown>;
}

export const TOP_UPS_UNAVAILABLE_MESSAGE = "Top-ups are not configured on this server: set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET.";
