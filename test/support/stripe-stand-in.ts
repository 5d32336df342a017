import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import Stripe from "stripe";

// A real HTTP server on 127.0.0.1 standing in for Stripe's API (reached
// through the SDK's host/port/protocol, i.e. STRIPE_API_BASE): it opens
// Checkout Sessions and answers lookups of them in whatever state the test
// moves them to, records every request exactly as Stripe would receive it,
// and can be told to refuse the next create or every lookup of a session.
// Plus what a test needs to play Stripe's webhooks: events built like
// Stripe's and signed with the SDK's test-signature helper.

export const STRIPE_TEST_ENV = {
  STRIPE_SECRET_KEY: "sk_test_standIn0123456789abcdefghij",
  STRIPE_WEBHOOK_SECRET: "whsec_standIn0123456789abcdefghij",
};

export interface StripeApiRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The form-encoded body, one entry per field, as `metadata[account_id]`. */
  form: Record<string, string>;
}

export interface StripeStandIn {
  /** For STRIPE_API_BASE. */
  baseUrl: string;
  requests: StripeApiRequest[];
  /** The sessions opened so far, in order: their ids. */
  sessionIds: string[];
  /** The next Checkout Session create is refused with this status and message. */
  refuseNext(status: number, message: string): void;
  /** What Stripe says of the session from now on (`status`, `payment_status`, `payment_intent` …), as a lookup answers it. */
  updateSession(id: string, changes: Record<string, unknown>): void;
  /** Every lookup of the session is refused with this status (5xx: Stripe's SDK retries it first), until called with null. */
  refuseLookupsOf(id: string, refusal: { status: number; message: string } | null): void;
  close(): Promise<void>;
}

export async function startStripeStandIn(): Promise<StripeStandIn> {
  const requests: StripeApiRequest[] = [];
  const sessionIds: string[] = [];
  const sessions = new Map<string, Record<string, unknown>>();
  const idByIdempotencyKey = new Map<string, string>();
  const lookupRefusals = new Map<string, { status: number; message: string }>();
  let refusal: { status: number; message: string } | null = null;

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString("utf8")));
      requests.push({ method: req.method!, path: req.url!, headers: req.headers, form });
      const answer = (status: number, body: object) => {
        res.writeHead(status, { "content-type": "application/json", "request-id": `req_standin_${requests.length}` });
        res.end(JSON.stringify(body));
      };
      const lookedUp = req.method === "GET" ? /^\/v1\/checkout\/sessions\/([^/?]+)$/.exec(req.url!)?.[1] : undefined;
      if (lookedUp !== undefined) {
        const refused = lookupRefusals.get(lookedUp);
        if (refused) return answer(refused.status, { error: { type: refused.status >= 500 ? "api_error" : "invalid_request_error", message: refused.message } });
        const session = sessions.get(lookedUp);
        if (!session) return answer(404, { error: { type: "invalid_request_error", code: "resource_missing", message: `No such checkout.session: '${lookedUp}'` } });
        return answer(200, session);
      }
      if (req.method !== "POST" || req.url !== "/v1/checkout/sessions") {
        return answer(404, { error: { type: "invalid_request_error", message: `Unrecognized request URL (${req.method}: ${req.url}).` } });
      }
      if (refusal) {
        const { status, message } = refusal;
        refusal = null;
        return answer(status, { error: { type: "invalid_request_error", message } });
      }
      // Stripe's idempotency: the same key answers the same session.
      const key = String(req.headers["idempotency-key"]);
      const known = idByIdempotencyKey.get(key);
      if (known) return answer(200, sessions.get(known)!);
      const id = `cs_test_standin${String(sessionIds.length + 1).padStart(4, "0")}`;
      sessionIds.push(id);
      const session = {
        id,
        object: "checkout.session",
        mode: form.mode,
        url: `https://checkout.stripe.com/c/pay/${id}`,
        amount_total: Number(form["line_items[0][price_data][unit_amount]"]),
        currency: form["line_items[0][price_data][currency]"],
        client_reference_id: form.client_reference_id ?? null,
        metadata: Object.fromEntries(
          Object.entries(form).flatMap(([field, value]) => {
            const name = /^metadata\[(\w+)\]$/.exec(field)?.[1];
            return name ? [[name, value]] : [];
          }),
        ),
        payment_intent: null,
        payment_status: "unpaid",
        status: "open",
      };
      sessions.set(id, session);
      idByIdempotencyKey.set(key, id);
      answer(200, session);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    sessionIds,
    refuseNext: (status, message) => void (refusal = { status, message }),
    updateSession(id, changes) {
      const session = sessions.get(id);
      if (!session) throw new Error(`The stand-in opened no session ${id}.`);
      sessions.set(id, { ...session, ...changes });
    },
    refuseLookupsOf: (id, refused) => void (refused ? lookupRefusals.set(id, refused) : lookupRefusals.delete(id)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// Webhooks.

const signer = new Stripe(STRIPE_TEST_ENV.STRIPE_SECRET_KEY);
let events = 0;

export interface StripeEventBody {
  id: string;
  type: string;
  payload: string;
}

export function stripeEvent(type: string, object: Record<string, unknown>, id = `evt_test_${process.pid}_${++events}_${Date.now()}`): StripeEventBody {
  const payload = JSON.stringify({ id, object: "event", type, api_version: "2026-10-28.endive", created: Math.floor(Date.now() / 1000), livemode: false, data: { object } });
  return { id, type, payload };
}

export interface PaidTopUp {
  topUpId: string;
  accountId: string;
  amountCents: number;
  sessionId: string;
  paymentIntentId: string;
}

/** A Checkout Session as Stripe sends it in checkout.session.* events, for a top-up SentX opened. */
export const checkoutSession = (topUp: PaidTopUp, paymentStatus: "paid" | "unpaid", overrides: Record<string, unknown> = {}) => ({
  id: topUp.sessionId,
  object: "checkout.session",
  mode: "payment",
  amount_total: topUp.amountCents,
  currency: "usd",
  client_reference_id: topUp.topUpId,
  metadata: { account_id: topUp.accountId, top_up_id: topUp.topUpId, amount_cents: String(topUp.amountCents) },
  payment_intent: topUp.paymentIntentId,
  payment_status: paymentStatus,
  status: "complete",
  ...overrides,
});

/** A charge as charge.refunded sends it: `amountRefunded` is the running total of its refunds. */
export const refundedCharge = (topUp: PaidTopUp, amountRefunded: number, { withMetadata = true } = {}) => ({
  id: `ch_${topUp.paymentIntentId.slice(3)}`,
  object: "charge",
  amount: topUp.amountCents,
  amount_refunded: amountRefunded,
  currency: "usd",
  paid: true,
  refunded: amountRefunded === topUp.amountCents,
  payment_intent: topUp.paymentIntentId,
  metadata: withMetadata ? { account_id: topUp.accountId, top_up_id: topUp.topUpId, amount_cents: String(topUp.amountCents) } : {},
});

export interface Delivery {
  /** Seconds since the epoch to sign with; now by default. */
  timestamp?: number;
  secret?: string;
  /** The Stripe-Signature header as given, instead of a computed one; null sends none. */
  signature?: string | null;
  /** The body as sent, instead of the event's payload (what was signed). */
  body?: string;
}

/** POSTs the event to the server's webhook as Stripe does, signed with the SDK's test helper. */
export async function deliver(serverUrl: string, event: StripeEventBody, delivery: Delivery = {}): Promise<{ status: number; body: any }> {
  const signature =
    delivery.signature !== undefined
      ? delivery.signature
      : signer.webhooks.generateTestHeaderString({
          payload: event.payload,
          secret: delivery.secret ?? STRIPE_TEST_ENV.STRIPE_WEBHOOK_SECRET,
          ...(delivery.timestamp !== undefined && { timestamp: delivery.timestamp }),
        });
  const res = await fetch(`${serverUrl}/webhooks/stripe`, {
    method: "POST",
    headers: { "content-type": "application/json; charset=utf-8", ...(signature !== null && { "stripe-signature": signature }) },
    body: delivery.body ?? event.payload,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
