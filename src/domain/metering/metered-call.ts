import { setTimeout as delay } from "node:timers/promises";
import type { ApiCaller } from "../auth.js";
import type { CallTrace } from "../call-trace.js";
import { type Billing, interruptedEnding, type RequestEnding, type ReservedHold } from "../billing.js";
import { isConnectionLoss, retryOnConnectionLoss } from "../db.js";
import { DomainError, isDomainError } from "../errors.js";
import type { EndUserIdentity } from "../identity.js";
import type { ModelConfig } from "../inference/model-table.js";
import { type TokenUsage, UpstreamError } from "../inference/provider.js";
import { INSUFFICIENT_BALANCE_MESSAGE } from "../ledger.js";
import type { RequestLimits, StreamSlot } from "../limits/request-limits.js";
import type { Logger } from "../logger.js";
import { type DomainMetrics, upstreamFailureReason } from "../metrics.js";
import { plansCoverChats, type WeeklyChats } from "../plans.js";
import { outputWithin, type Pricing, priceRequest } from "../pricing.js";
import type { RequestLog } from "../request-log.js";
import type { Clock } from "../clock.js";
import type { Checkpoints } from "./checkpoints.js";

// The metered call (ARCHITECTURE "The metered call"): every billed surface runs
// admit → bound → hold → resolve → call → settle + record through here. A
// surface supplies the cheap plan and does the resolving and calling; the
// pipeline owns every ending. Once a hold exists the call ends exactly once,
// in one settle that charges (or releases) and records together, whatever
// throws, aborts or shuts down in between (SPEC 5: billed means recorded).

/** Who is asking, for whom, and where. */
export interface CallContext {
  requestId: string;
  caller: ApiCaller;
  identity: EndUserIdentity;
  endpoint: string;
  startedAt: Date;
  /** The model name as the caller sent it (bounded at the edge), for records of refusals. */
  requestedModel: string;
  /** The request's access log record, filled in as the call goes. */
  trace: CallTrace;
}

/** What a surface knows from cheap checks alone: nothing large read, decoded or tokenized. */
export interface MeterPlan {
  model: ModelConfig;
  stream: boolean;
  /**
   * What a unit of input and of output costs, per million: tokens for chat
   * (the model's token prices, the default), or a surface's own units
   * (images, seconds of audio, characters). The SPEC 5 rounding and bounds
   * apply to every surface alike.
   */
  pricing?: Pricing;
  /** An upper bound of the input units, from sizes alone; it sizes the hold. */
  inputTokensUpperBound: number;
  /** The output asked for, within the model's maximum; 0 for a surface whose output is not priced. */
  requestedMaxTokens: number;
  /** A chat (SPEC 10): on a plan that covers chats, it takes one of the week's allowance before any credits. */
  quota?: "weekly_chat";
}

/** Usage so far, and its charge when the surface prices it itself (a sum of separately priced parts). */
export type Delivery = TokenUsage & { costCents?: number };

/** How a call ended. `usage` is present exactly when output began: only then is it billed (SPEC 5). */
export type CallEnding =
  | { status: "succeeded"; usage?: Delivery }
  | { status: "failed"; error: DomainError; usage?: Delivery }
  | { status: "cancelled" | "interrupted"; usage?: Delivery };

export interface MeteredCall {
  readonly model: ModelConfig;
  /** Aborted when the client goes away or the server shuts down: pass it to the upstream. */
  readonly signal: AbortSignal;
  /** The week's chats after this one, on a capped plan's chat (SPEC 10). */
  readonly weeklyChats: WeeklyChats | undefined;
  /** The output budget the hold covers once the exact input is known; grows the hold when its estimate fell short. */
  fitOutput(inputTokens: number, requestedMaxTokens: number): Promise<number>;
  /** Grows the hold to at least `costCents` (the input once measured, or a session's running cost); 402 when the balance cannot. */
  cover(costCents: number): Promise<void>;
  /** How to read what has been delivered so far (undefined: no output yet), each time a checkpoint is written. */
  reportDelivery(read: () => Delivery | undefined): void;
  /**
   * Ends the call, once (later calls return the first result). With
   * `beforeDelivery`, the output is still unsent: the settle must commit now
   * or the call stays open and 503 is thrown, so nothing is delivered
   * unbilled. Otherwise a settle that cannot commit keeps being retried in
   * the background, while the checkpoint carries the charge.
   */
  end(ending: CallEnding, options?: { beforeDelivery?: boolean }): Promise<{ chargedCents: number }>;
  /** Runs a step of the call: whatever it throws ends the call unbilled (unless already ended) and is rethrown as a DomainError. */
  guard<T>(step: () => Promise<T>): Promise<T>;
  /**
   * How a failure at this point ends the call: by a shutdown, by the client, or
   * by the error itself; no error (null) means the reader stopped: cancelled.
   */
  endingFor(error: unknown, usage?: Delivery): { ending: CallEnding; error: DomainError };
}

export interface MeteringDeps {
  billing: Billing;
  requestLog: RequestLog;
  limits: Pick<RequestLimits, "acquireStreamSlot">;
  checkpoints: Checkpoints;
  clock: Clock;
  logger: Logger;
  metrics: Pick<DomainMetrics, "billed" | "upstreamFailed">;
}

const SETTLE_RETRY_FIRST_MS = 250;
const SETTLE_RETRY_MAX_MS = 30_000;

const serviceUnavailable = (message: string, cause?: unknown) =>
  new DomainError("service_unavailable", message, null, cause === undefined ? undefined : { cause });

const shuttingDown = () => serviceUnavailable("The server is restarting and stopped this request. Retry it.");
const clientGone = () => new DomainError("client_closed_request", "The client closed the request before it ended.");

/** SPEC 8 for upstream failures: unavailable before output is 503, anything else 502. */
function upstreamFailure(error: UpstreamError): DomainError {
  if (!error.beforeOutput) {
    return new DomainError("upstream_error", "The model's upstream failed while answering; the answer is incomplete.");
  }
  return error.kind === "unavailable"
    ? new DomainError("upstream_unavailable", "The model is unavailable right now. Try again shortly.")
    : new DomainError("upstream_error", `The model's upstream returned an error: ${error.message}`);
}

function recordOf(ending: CallEnding, stream: boolean): RequestEnding {
  const usage = ending.usage;
  const tokens = { inputTokens: usage?.promptTokens ?? 0, outputTokens: usage?.completionTokens ?? 0 };
  switch (ending.status) {
    case "succeeded":
      return { status: "succeeded", httpStatus: 200, errorCode: null, ...tokens };
    case "failed":
      // A stream's status line (200) went out with its first byte.
      return { status: "failed", httpStatus: stream && usage ? 200 : ending.error.status, errorCode: ending.error.code, ...tokens };
    case "cancelled":
      return { status: "cancelled", httpStatus: 499, errorCode: null, ...tokens };
    case "interrupted":
      return interruptedEnding(stream, usage !== undefined, tokens);
  }
}

export function createMetering({ billing, requestLog, limits, checkpoints, clock, logger, metrics }: MeteringDeps) {
  const shutdown = new AbortController();
  /** Calls from their hold until their settle committed (or was given up at shutdown). */
  const inFlight = new Set<Promise<void>>();
  let retriesStopped = false;
  let holdsOutstanding = 0;
  let activeStreams = 0;

  /** Any failure as the DomainError the client sees; an unexpected one is logged and hidden (SPEC 8). */
  function asDomainError(error: unknown, requestId: string): DomainError {
    if (isDomainError(error)) return error;
    if (error instanceof UpstreamError) return upstreamFailure(error);
    if (isConnectionLoss(error)) {
      logger.warn({ err: error, requestId }, "database connection lost during a request");
      return serviceUnavailable("The service is briefly unavailable. Try again shortly.", error);
    }
    logger.error({ err: error, requestId }, "unexpected failure in a metered call");
    return new DomainError("internal_error", "The server had an error while processing your request.");
  }

  /** Records a refusal that held nothing; its failure must not hide the refusal itself. */
  async function recordRefusal(ctx: CallContext, model: string, stream: boolean, error: DomainError): Promise<void> {
    try {
      await retryOnConnectionLoss(() =>
        requestLog.recordUnbilled({
          requestId: ctx.requestId,
          accountId: ctx.caller.account.id,
          apiKeyId: ctx.caller.apiKey.id,
          endpoint: ctx.endpoint,
          model,
          stream,
          status: "failed",
          httpStatus: error.status,
          errorCode: error.code,
          startedAt: ctx.startedAt,
          endedAt: clock.now(),
        }),
      );
    } catch (recordError) {
      logger.error({ err: recordError, requestId: ctx.requestId }, "could not record a refused request");
    }
  }

  /** Keeps settling until it commits: a settle never turns into a release (SPEC 5). Null if the server stopped first. */
  async function settleInBackground<T>(settle: () => Promise<T>, requestId: string): Promise<T | null> {
    for (let attempt = 0; !retriesStopped; attempt++) {
      const wait = Math.min(SETTLE_RETRY_MAX_MS, SETTLE_RETRY_FIRST_MS * 2 ** attempt);
      await delay(wait, undefined, { ref: false, signal: shutdown.signal }).catch(() => {});
      try {
        return await settle();
      } catch (error) {
        logger.error({ err: error, requestId, attempt }, "could not settle a request yet; its hold carries the charge meanwhile");
        if (shutdown.signal.aborted && attempt > 0) break;
      }
    }
    return null;
  }

  /** admit → bound → hold: refusals on the way are recorded and rethrown; the returned call owns its ending. */
  async function begin(ctx: CallContext, plan: () => MeterPlan, clientSignal: AbortSignal): Promise<MeteredCall> {
    let planned: MeterPlan | undefined;
    let slot: StreamSlot | undefined;
    let hold: ReservedHold;
    try {
      if (shutdown.signal.aborted) throw shuttingDown();
      planned = plan();
      ctx.trace.model = planned.model.id;
      if (planned.stream) slot = await limits.acquireStreamSlot(ctx.caller);
      const { model, stream, inputTokensUpperBound, requestedMaxTokens, pricing = model.pricing } = planned;
      // Pay-as-you-go keeps the plain reserve statement: no week to look up on its hot path.
      const weeklyChat = planned.quota === "weekly_chat" && plansCoverChats(ctx.caller.account.plan);
      hold = await retryOnConnectionLoss(() =>
        billing.reserveHold({
          accountId: ctx.caller.account.id,
          requestId: ctx.requestId,
          pricing,
          inputTokens: inputTokensUpperBound,
          requestedMaxTokens,
          request: { apiKeyId: ctx.caller.apiKey.id, endpoint: ctx.endpoint, model: model.id, stream, identity: ctx.identity },
          weeklyChat,
        }),
      );
    } catch (error) {
      await slot?.release();
      const refusal = asDomainError(error, ctx.requestId);
      if (planned && isConnectionLoss(error)) endUncertainHold(ctx, planned, refusal);
      else await recordRefusal(ctx, planned?.model.id ?? ctx.requestedModel, planned?.stream ?? false, refusal);
      throw refusal;
    }
    return open(ctx, planned, hold, slot, clientSignal);
  }

  /**
   * The connection was lost around the hold's commit, so the hold may exist
   * with its answer lost. It is ended (released, recorded with the refusal)
   * in the background once the database answers; with no hold, only the
   * refusal is recorded. Left alone, it would stay reserved until the sweeper.
   */
  function endUncertainHold(ctx: CallContext, plan: MeterPlan, refusal: DomainError): void {
    const ending: CallEnding = { status: "failed", error: refusal };
    const release = async () => {
      try {
        await billing.settleHold({ requestId: ctx.requestId, costCents: 0, ending: recordOf(ending, plan.stream) });
      } catch (error) {
        if (!isDomainError(error) || error.code !== "not_found") throw error;
        await recordRefusal(ctx, plan.model.id, plan.stream, refusal);
      }
    };
    const settling = settleInBackground(release, ctx.requestId).then(() => void inFlight.delete(settling));
    inFlight.add(settling);
  }

  function open(ctx: CallContext, plan: MeterPlan, hold: ReservedHold, slot: StreamSlot | undefined, clientSignal: AbortSignal): MeteredCall {
    const { model, stream } = plan;
    const { requestId, trace } = ctx;
    holdsOutstanding++;
    if (stream) activeStreams++;
    trace.settling = true;
    const signal = AbortSignal.any([clientSignal, shutdown.signal]);
    let holdCents = hold.amountCents;
    const pricing = plan.pricing ?? model.pricing;
    let delivered: () => Delivery | undefined = () => undefined;
    let ended: Promise<{ chargedCents: number }> | null = null;
    const price = (usage: Delivery) =>
      usage.costCents ?? priceRequest(pricing, { inputTokens: usage.promptTokens, outputTokens: usage.completionTokens });

    const untrack = checkpoints.track(() => {
      const usage = delivered();
      return {
        requestId,
        inputTokens: usage?.promptTokens ?? 0,
        outputTokens: usage?.completionTokens ?? 0,
        costCents: usage ? price(usage) : 0,
      };
    });
    let finished!: () => void;
    const lifetime = new Promise<void>((resolve) => (finished = resolve));
    inFlight.add(lifetime);
    /** `settled` false: the server stops before the settle could commit, so the checkpoint stays for the last flush. */
    let slotReleased: Promise<void> = Promise.resolve();
    const close = (settled = true) => {
      holdsOutstanding--;
      if (settled) untrack();
      // In flight until the slot is back too: a shutdown closes Redis only after that.
      void slotReleased.then(() => {
        inFlight.delete(lifetime);
        finished();
        trace.settling = undefined;
        trace.afterSettle?.();
      });
    };

    function endingFor(error: unknown, usage?: Delivery): { ending: CallEnding; error: DomainError } {
      const billed = usage ? { usage } : {};
      if (shutdown.signal.aborted) return { ending: { status: "interrupted", ...billed }, error: shuttingDown() };
      if (clientSignal.aborted || error === null) return { ending: { status: "cancelled", ...billed }, error: clientGone() };
      // The failover reported the attempts before an upstream answered; a failure after that is reported here.
      if (error instanceof UpstreamError && trace.upstream !== null) reportFailureMidAnswer(trace, trace.upstream, error);
      const failure = asDomainError(error, requestId);
      return { ending: { status: "failed", error: failure, ...billed }, error: failure };
    }

    async function end(ending: CallEnding, { beforeDelivery = false } = {}): Promise<{ chargedCents: number }> {
      if (ended) return ended;
      // The slot goes back at once (SPEC 6); the settle may take its time.
      if (slot) slotReleased = slot.release();
      if (stream) activeStreams--;
      const costCents = ending.usage ? price(ending.usage) : 0;
      // What the settle charges: nothing when the plan covers the call (its list price still counts the chat).
      const dueCents = hold.covered ? 0 : costCents;
      trace.outcome = ending.status;
      trace.inputTokens = ending.usage?.promptTokens ?? 0;
      trace.outputTokens = ending.usage?.completionTokens ?? 0;
      const settle = () => retryOnConnectionLoss(() => billing.settleHold({ requestId, costCents, ending: recordOf(ending, stream) }));
      const report = (settled: { chargedCents: number }) => {
        if (settled.chargedCents < dueCents) {
          logger.warn({ requestId, costCents, chargedCents: settled.chargedCents }, "usage exceeded what the balance allowed; charged what was available");
        }
        trace.costCents = settled.chargedCents;
        if (ending.usage) metrics.billed(model.id, ending.usage, settled.chargedCents);
        return { chargedCents: settled.chargedCents };
      };

      if (beforeDelivery) {
        try {
          const settled = await settle();
          // Found by test/faults/surface-faults.test.ts: the sweeper ends a hold whose checkpoints have not
          // reached the database for a whole TTL, recording the request interrupted, unbilled (and giving a
          // covered chat back to its week). Delivering the answer now would deliver it unbilled.
          if (settled.endedBySweeper) throw new Error("the hold was ended by the sweeper before the request settled");
          ended = Promise.resolve(report(settled));
          close();
          return ended;
        } catch (error) {
          logger.error({ err: error, requestId }, "could not settle a request before delivering it; not delivered");
          throw serviceUnavailable("The service could not record this request, so it did not deliver it. Try again shortly.", error);
        }
      }
      // Delivered output: until the settle commits, the checkpoint carries its whole charge.
      const final = ending.usage;
      if (final) delivered = () => final;
      ended = settle().then(
        (settled) => {
          close();
          return report(settled);
        },
        async (error) => {
          logger.error({ err: error, requestId }, "could not settle a request; retrying in the background");
          void settleInBackground(settle, requestId).then((settled) => {
            if (settled) report(settled);
            close(settled !== null);
          });
          trace.costCents = dueCents;
          return { chargedCents: dueCents };
        },
      );
      return ended;
    }

    return {
      model,
      signal,
      weeklyChats: hold.weeklyChats,
      async fitOutput(inputTokens, requestedMaxTokens) {
        // The plan covers it: no credits are held, so none bound the answer.
        if (hold.covered) return requestedMaxTokens;
        let maxTokens = outputWithin(pricing, inputTokens, requestedMaxTokens, holdCents);
        if (maxTokens < requestedMaxTokens && !hold.limitedByBalance) {
          // The estimate fell short (documents are counted only once resolved): grow the hold.
          const refit = await retryOnConnectionLoss(() => billing.refitHold({ requestId, pricing, inputTokens, requestedMaxTokens }));
          holdCents = refit.amountCents;
          maxTokens = refit.maxTokens;
        }
        if (maxTokens < 1) throw new DomainError("insufficient_balance", INSUFFICIENT_BALANCE_MESSAGE);
        return maxTokens;
      },
      async cover(costCents) {
        if (hold.covered || costCents <= holdCents) return;
        holdCents = (await retryOnConnectionLoss(() => billing.growHold({ requestId, atLeastCents: costCents }))).amountCents;
      },
      reportDelivery(read) {
        delivered = read;
      },
      end,
      endingFor,
      async guard(step) {
        try {
          return await step();
        } catch (error) {
          const { ending, error: failure } = endingFor(error);
          if (!ended) await end(ending);
          throw failure;
        }
      },
    };
  }

  /** An upstream that broke off after it had begun answering: past the failover, which reports the attempts before that. */
  function reportFailureMidAnswer(trace: CallTrace, upstream: string, error: UpstreamError): void {
    const reason = upstreamFailureReason(error);
    metrics.upstreamFailed(upstream, reason);
    logger.warn({ requestId: trace.requestId, model: trace.model, upstream, reason, error: error.message }, "upstream failed after it began answering");
  }

  return {
    begin,

    /** Calls still running or settling. */
    get inFlight(): number {
      return inFlight.size;
    },

    /** Holds this instance reserved and has not yet settled or released. */
    get holdsOutstanding(): number {
      return holdsOutstanding;
    },

    /** Streamed calls between their hold and their ending. */
    get activeStreams(): number {
      return activeStreams;
    },

    /**
     * SIGTERM (SPEC 13): lets running calls end by themselves for up to
     * `graceMs`, then stops the rest (each is billed for what it delivered,
     * recorded as interrupted), waits up to `settleMs` for their settles, and
     * writes the checkpoints of any that still could not settle, for the sweeper.
     */
    async drain({ graceMs, settleMs }: { graceMs: number; settleMs: number }): Promise<void> {
      const allDone = () => Promise.all([...inFlight]).then(() => true);
      const within = (ms: number) => delay(ms, false, { ref: false });
      if (inFlight.size > 0 && !(await Promise.race([allDone(), within(graceMs)]))) {
        logger.warn({ calls: inFlight.size }, "grace period over: stopping the requests still running");
      }
      shutdown.abort();
      if (inFlight.size > 0) await Promise.race([allDone(), within(settleMs)]);
      retriesStopped = true;
      await checkpoints.flush();
      checkpoints.stop();
    },
  };
}

export type Metering = ReturnType<typeof createMetering>;
