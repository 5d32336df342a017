import { DomainError, isDomainError } from "../errors.js";
import type { JobQueue } from "../jobs/job-queue.js";
import { isHandledStripeEvent, STRIPE_EVENT_JOB } from "./payment-events.js";
import { type StripeGateway, TOP_UPS_UNAVAILABLE_MESSAGE } from "./stripe-port.js";

/**
 * SPEC 5: a Stripe webhook is verified and queued, nothing more, so a slow
 * database never makes Stripe time out. The job id is the event id: a
 * redelivered event collapses into the job already queued.
 */
export function createStripeWebhookIntake({ stripe, queue }: { stripe: StripeGateway | null; queue: JobQueue }) {
  return {
    /** Whether the event was queued; false for a type top-ups do not use (acknowledged all the same). */
    async receive(rawBody: Uint8Array, signature: string | undefined): Promise<{ queued: boolean }> {
      // Not 2xx: Stripe keeps the events and sends them again once the keys are set.
      if (!stripe) throw new DomainError("top_ups_unavailable", TOP_UPS_UNAVAILABLE_MESSAGE);
      const event = await stripe.verifyEvent(rawBody, signature);
      if (!isHandledStripeEvent(event.type)) return { queued: false };
      try {
        await queue.enqueue({ name: STRIPE_EVENT_JOB, id: event.id, payload: event });
      } catch (error) {
        if (isDomainError(error)) throw error;
        throw new DomainError("service_unavailable", "The event could not be queued; Stripe will send it again.", null, { cause: error });
      }
      return { queued: true };
    },
  };
}

export type StripeWebhookIntake = ReturnType<typeof createStripeWebhookIntake>;
