import type { ApiCaller } from "../auth.js";
import { DomainError } from "../errors.js";
import { assertModelAllowed } from "../inference/model-access.js";
import type { ModelCatalog } from "../inference/model-table.js";
import type { CallContext, Delivery, Metering } from "../metering/metered-call.js";
import { priceRequest } from "../pricing.js";
import { type CallerWatch } from "./caller-watch.js";
import { type RealtimeTarget, realtimeTargets } from "./realtime-targets.js";
import { responseUsage } from "./realtime-usage.js";

// A realtime session (SPEC 10) as a metered call: one request, one stream
// slot, one hold that starts at what a first response could cost and is topped
// up after every response to the running cost plus the next response's worst
// case. Each response is priced on its own (SPEC 5's 1-cent minimum and
// 500-cent maximum per response); the session is charged their sum once, when
// it ends. The transport relays the frames; this module decides what they cost.

export interface RealtimeSessionsDeps {
  catalog: ModelCatalog;
  metering: Pick<Metering, "begin">;
  callerWatch: CallerWatch;
  /** The demo provider's realtime endpoint, when the model table has a demo model offering realtime. */
  demoBaseUrl?: string;
}

export interface OpenRealtimeSession {
  ctx: CallContext;
  /** Aborted when the client goes away. */
  clientSignal: AbortSignal;
  /** Authenticates the caller again, as at the start; it throws when the key or account no longer may call. */
  recheckCaller(): Promise<ApiCaller>;
}

export interface RealtimeSession {
  /** The upstreams to try, in order. */
  readonly targets: RealtimeTarget[];
  /** Aborted when the client goes away or the server shuts down. */
  readonly signal: AbortSignal;
  /**
   * Reads one text event from the upstream: a `response.done` adds its
   * response's price to the session and tops the hold up for the next one.
   * Throws 402 insufficient_balance when the balance cannot cover that.
   */
  upstreamEvent(text: string): Promise<void>;
  /** Calls `onLost` (once) when the key is revoked or the account suspended, on whichever instance that happened. */
  watchCaller(onLost: (reason: DomainError) => void): void;
  /**
   * Ends the session, once: no cause (undefined) is a session that ended
   * normally; null, a client that went away; anything else, a failure. What the
   * completed responses used is billed either way.
   */
  end(cause?: unknown): Promise<{ chargedCents: number }>;
}

export function createRealtimeSessions({ catalog, metering, callerWatch, demoBaseUrl }: RealtimeSessionsDeps) {
  return {
    /** admit (stream slot) → bound → hold: every refusal comes before any upstream connection is opened. */
    async open({ ctx, clientSignal, recheckCaller }: OpenRealtimeSession): Promise<RealtimeSession> {
      let targets: RealtimeTarget[] = [];
      const metered = await metering.begin(
        ctx,
        () => {
          const model = catalog.resolveFor("realtime", ctx.requestedModel);
          assertModelAllowed(ctx.caller, ctx.requestedModel, model);
          targets = realtimeTargets(model, demoBaseUrl);
          if (targets.length === 0) {
            throw new DomainError("upstream_unavailable", `The model ${model.id} has no upstream that serves realtime sessions.`);
          }
          // The hold starts at what a first response may cost; it grows as the session goes.
          return { model, stream: true, inputTokensUpperBound: 0, requestedMaxTokens: model.defaultMaxTokens };
        },
        clientSignal,
      );
      const { model } = metered;
      const pricing = model.pricing;
      const nextResponseWorstCase = priceRequest(pricing, { inputTokens: 0, outputTokens: model.defaultMaxTokens });
      const totals = { promptTokens: 0, completionTokens: 0, costCents: 0 };
      let responses = 0;
      const delivered = (): Delivery | undefined => (responses > 0 ? { ...totals } : undefined);
      metered.reportDelivery(delivered);
      // Responses are counted in the order they ended, each cover after the one before.
      let covering: Promise<void> = Promise.resolve();
      let unwatch: () => void = () => {};

      return {
        targets,
        signal: metered.signal,
        upstreamEvent(text) {
          const usage = responseUsage(text, model);
          if (!usage) return Promise.resolve();
          responses++;
          totals.promptTokens += usage.promptTokens;
          totals.completionTokens += usage.completionTokens;
          totals.costCents += priceRequest(pricing, { inputTokens: usage.promptTokens, outputTokens: usage.completionTokens });
          const costSoFar = totals.costCents;
          covering = covering.then(() => metered.cover(costSoFar + nextResponseWorstCase));
          return covering;
        },
        watchCaller(onLost) {
          unwatch = callerWatch.watch(ctx.caller, recheckCaller, onLost);
        },
        end(cause) {
          unwatch();
          const usage = delivered();
          if (cause === undefined) return metered.end({ status: "succeeded", ...(usage && { usage }) });
          return metered.end(metered.endingFor(cause, usage).ending);
        },
      };
    },
  };
}

export type RealtimeSessions = ReturnType<typeof createRealtimeSessions>;
