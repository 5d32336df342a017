import type { IncomingMessage } from "node:http";
import type { HttpBindings } from "@hono/node-server";
import { Hono } from "hono";
import type { StripeWebhookIntake } from "../domain/top-ups/webhook-intake.js";
import { jsonBodyLimit } from "./json-body-limit.js";

// Stripe's events are a few kilobytes; this leaves room for large metadata without letting anyone stream megabytes at us.
const MAX_EVENT_BYTES = 256 * 1024;

/**
 * `POST /webhooks/stripe` (SPEC 5): no API key, Stripe's signature instead.
 * The body is read raw and whole (capped) before anything else, since the
 * signature covers its exact bytes; errors are SPEC 8 bodies, and anything but
 * a 2xx makes Stripe send the event again later.
 */
export function stripeWebhookRoutes(intake: StripeWebhookIntake) {
  return new Hono<{ Bindings: HttpBindings }>().post("/webhooks/stripe", jsonBodyLimit(MAX_EVENT_BYTES), async (c) => {
    const { rawBody } = c.env.incoming as IncomingMessage & { rawBody: Buffer };
    await intake.receive(rawBody, c.req.header("stripe-signature"));
    return c.json({ received: true });
  });
}
