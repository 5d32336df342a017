import type { ApiCaller } from "../auth.js";
import type { Billing } from "../billing.js";
import type { Clock } from "../clock.js";
import { DomainError, isDomainError } from "../errors.js";
import type { EndUserIdentity } from "../identity.js";
import { newId } from "../ids.js";
import type { RequestLimits } from "../limits/request-limits.js";
import type { Logger } from "../logger.js";
import { priceRequest } from "../pricing.js";
import type { RequestLog } from "../request-log.js";
import type { RequestStatus } from "../schema/index.js";
import { type AttachmentFiles, resolveAttachments } from "./attachments.js";
import { assertSystemMessagesWithinLimit, withSafetyPrompt } from "./chat-rules.js";
import type { ModelCatalog, ModelConfig } from "./model-table.js";
import {
  type ChatMessage,
  type ChatProvider,
  type ChunkChoice,
  type CompletionChoice,
  type TokenUsage,
  type UpstreamChatRequest,
  type UpstreamChunk,
  UpstreamError,
} from "./provider.js";
import { countCompletionTokens, countPromptTokens } from "./tokens.js";

/** A chat request after the surface has validated it. */
export interface ChatInput {
  model: string;
  messages: ChatMessage[];
  /** max_completion_tokens, else max_tokens, as the caller sent it. */
  maxTokens?: number;
  /** Sampling and tool parameters passed through to the upstream. */
  params: Record<string, unknown>;
}

/** Who is asking, and for whom. */
export interface ChatCall {
  requestId: string;
  caller: ApiCaller;
  identity: EndUserIdentity;
  endpoint: string;
  startedAt: Date;
}

export interface CompletionHeader {
  id: string;
  created: number;
  model: string;
}

export interface ChatCompletionResult extends CompletionHeader {
  choices: CompletionChoice[];
  usage: TokenUsage;
  costCents: number;
}

export type ChatStreamEvent =
  | { type: "delta"; choices: ChunkChoice[] }
  | { type: "done"; usage: TokenUsage; costCents: number }
  /** The upstream broke after output began: what was generated is billed, then the stream ends with the error. */
  | { type: "failed"; error: DomainError; usage: TokenUsage; costCents: number };

export interface ChatStream extends CompletionHeader {
  events: AsyncIterable<ChatStreamEvent>;
}

export interface ChatServiceDeps {
  catalog: ModelCatalog;
  providerFor(model: ModelConfig): ChatProvider;
  billing: Billing;
  limits: Pick<RequestLimits, "acquireStreamSlot">;
  files: AttachmentFiles;
  requestLog: RequestLog;
  clock: Clock;
  logger: Logger;
  safetyPrompt: string;
}

interface PreparedChat {
  call: ChatCall;
  model: ModelConfig;
  header: CompletionHeader;
  upstream: UpstreamChatRequest;
  promptTokens: number;
  stream: boolean;
}

function toDomainError(error: unknown): DomainError {
  if (isDomainError(error)) return error;
  if (error instanceof UpstreamError) {
    if (!error.beforeOutput) {
      return new DomainError("upstream_error", "The model's upstream failed while answering; the answer is incomplete.");
    }
    return error.kind === "unavailable"
      ? new DomainError("upstream_unavailable", "The model is unavailable right now. Try again shortly.")
      : new DomainError("upstream_error", `The model's upstream returned an error: ${error.message}`);
  }
  throw error;
}

function assertModelAllowed(caller: ApiCaller, requested: string, model: ModelConfig): void {
  const allowed = caller.apiKey.allowedModels;
  if (allowed?.length && !allowed.includes(requested) && !allowed.includes(model.id)) {
    throw new DomainError("model_not_allowed", `This API key may not use the model ${requested}.`, "model");
  }
}

/** SPEC 10: the prompt and the answer must fit the model's context window. */
function outputTokenBudget(model: ModelConfig, promptTokens: number, requested: number | undefined): number {
  if (requested !== undefined && requested > model.maxOutputTokens) {
    throw new DomainError(
      "invalid_request_error",
      `max_tokens is too large: ${requested}. This model supports at most ${model.maxOutputTokens} completion tokens.`,
      "max_tokens",
    );
  }
  const room = model.contextWindow - promptTokens;
  const budget = requested ?? Math.min(model.defaultMaxTokens, room);
  if (budget < 1 || budget > room) {
    const demand =
      room < 1 ? `the messages alone take ${promptTokens}` : `the messages take ${promptTokens} and ${budget} were requested for the answer`;
    throw new DomainError("context_length_exceeded", `This model's context window is ${model.contextWindow} tokens; ${demand}.`, "messages");
  }
  return budget;
}

const hasOutput = (choices: ChunkChoice[]): boolean =>
  choices.some((c) => Boolean(c.delta.content) || Boolean(c.delta.tool_calls?.length));

/** Tokens the upstream generated, counted by us when it reports no usage. */
function countGenerated(parts: Array<{ content?: string | null; tool_calls?: unknown[] }>): number {
  const text = parts.map((p) => p.content ?? "").join("");
  const toolArguments = parts.flatMap((p) =>
    (p.tool_calls ?? []).map((call) => (call as { function?: { arguments?: string } }).function?.arguments ?? ""),
  );
  return countCompletionTokens(text, toolArguments);
}

export function createChatService(deps: ChatServiceDeps) {
  const { catalog, billing, requestLog, clock, logger } = deps;

  async function prepare(call: ChatCall, input: ChatInput, stream: boolean): Promise<PreparedChat> {
    const model = catalog.resolve(input.model);
    assertModelAllowed(call.caller, input.model, model);
    assertSystemMessagesWithinLimit(input.messages);
    const resolved = await resolveAttachments(input.messages, { accountId: call.caller.account.id, model, files: deps.files });
    const messages = withSafetyPrompt(deps.safetyPrompt, resolved);
    const promptTokens = countPromptTokens(messages);
    const requestedMaxTokens = outputTokenBudget(model, promptTokens, input.maxTokens);
    const hold = await billing.reserveHold({
      accountId: call.caller.account.id,
      requestId: call.requestId,
      pricing: model.pricing,
      inputTokens: promptTokens,
      requestedMaxTokens,
    });
    return {
      call,
      model,
      header: { id: newId.completion(), created: Math.floor(clock.now().getTime() / 1000), model: model.id },
      upstream: { model: model.id, messages, maxTokens: hold.maxTokens, params: input.params },
      promptTokens,
      stream,
    };
  }

  /** Settles the hold (or releases it when nothing billable happened) and writes the request log. */
  async function finish(
    prepared: PreparedChat,
    outcome: { status: RequestStatus; billable: boolean; usage: TokenUsage; error?: DomainError },
  ): Promise<number> {
    const { call, model } = prepared;
    let costCents = 0;
    try {
      if (outcome.billable) {
        const cost = priceRequest(model.pricing, {
          inputTokens: outcome.usage.promptTokens,
          outputTokens: outcome.usage.completionTokens,
        });
        costCents = (await billing.settleHold({ requestId: call.requestId, costCents: cost })).chargedCents;
        if (costCents < cost) {
          logger.warn({ requestId: call.requestId, cost, charged: costCents }, "usage exceeded the hold; charged what was available");
        }
      } else {
        await billing.releaseHold({ requestId: call.requestId });
      }
    } catch (error) {
      // The answer already exists; the hold will expire and be released by the sweeper.
      logger.error({ err: error, requestId: call.requestId }, "could not settle a request's hold");
    }
    await recordOutcome(call, {
      model: model.id,
      stream: prepared.stream,
      status: outcome.status,
      httpStatus: outcome.error ? outcome.error.status : 200,
      errorCode: outcome.error?.code ?? null,
      inputTokens: outcome.billable ? outcome.usage.promptTokens : 0,
      outputTokens: outcome.billable ? outcome.usage.completionTokens : 0,
      costCents,
    });
    return costCents;
  }

  async function recordOutcome(
    call: ChatCall,
    outcome: {
      model: string;
      stream: boolean;
      status: RequestStatus;
      httpStatus: number;
      errorCode: string | null;
      inputTokens: number;
      outputTokens: number;
      costCents: number;
    },
  ): Promise<void> {
    const at = clock.now();
    try {
      await requestLog.record({
        ...outcome,
        requestId: call.requestId,
        accountId: call.caller.account.id,
        apiKeyId: call.caller.apiKey.id,
        endpoint: call.endpoint,
        upstreamModel: null,
        identity: call.identity,
        latencyMs: Math.max(0, at.getTime() - call.startedAt.getTime()),
        at,
      });
    } catch (error) {
      logger.error({ err: error, requestId: call.requestId }, "could not write the request log");
    }
  }

  /** Runs `prepare`, logging a refused request (bad input, no balance) before rethrowing. */
  async function prepareOrRecord(call: ChatCall, input: ChatInput, stream: boolean): Promise<PreparedChat> {
    try {
      return await prepare(call, input, stream);
    } catch (error) {
      if (isDomainError(error)) {
        await recordOutcome(call, {
          model: input.model,
          stream,
          status: "failed",
          httpStatus: error.status,
          errorCode: error.code,
          inputTokens: 0,
          outputTokens: 0,
          costCents: 0,
        });
      }
      throw error;
    }
  }

  /** Calls the upstream; a failure before any output releases the hold unbilled and is rethrown as a DomainError. */
  async function callUpstream<T>(prepared: PreparedChat, signal: AbortSignal, call: (provider: ChatProvider) => Promise<T>): Promise<T> {
    try {
      return await call(deps.providerFor(prepared.model));
    } catch (error) {
      const failure = toDomainError(error);
      await finish(prepared, {
        status: signal.aborted ? "cancelled" : "failed",
        billable: false,
        usage: { promptTokens: 0, completionTokens: 0 },
        error: failure,
      });
      throw failure;
    }
  }

  return {
    async complete(call: ChatCall, input: ChatInput, signal: AbortSignal): Promise<ChatCompletionResult> {
      const prepared = await prepareOrRecord(call, input, false);
      const completion = await callUpstream(prepared, signal, (provider) => provider.complete(prepared.upstream, signal));
      const usage = completion.usage ?? {
        promptTokens: prepared.promptTokens,
        completionTokens: countGenerated(completion.choices.map((c) => c.message)),
      };
      const costCents = await finish(prepared, { status: "succeeded", billable: true, usage });
      return { ...prepared.header, choices: completion.choices, usage, costCents };
    },

    /**
     * Resolves once the upstream has started answering, so failures before that
     * are still plain errors; the events then end with "done" or "failed".
     */
    async stream(call: ChatCall, input: ChatInput, signal: AbortSignal): Promise<ChatStream> {
      const slot = await deps.limits.acquireStreamSlot(call.caller);
      let prepared: PreparedChat;
      let upstream: AsyncIterable<UpstreamChunk>;
      try {
        prepared = await prepareOrRecord(call, input, true);
        upstream = await callUpstream(prepared, signal, (provider) => provider.stream(prepared.upstream, signal));
      } catch (error) {
        await slot.release();
        throw error;
      }

      async function* events(): AsyncGenerator<ChatStreamEvent> {
        const generated: ChunkChoice["delta"][] = [];
        let reported: TokenUsage | undefined;
        let outputBegan = false;
        let finished = false;
        const usageSoFar = (): TokenUsage =>
          reported ?? { promptTokens: prepared.promptTokens, completionTokens: countGenerated(generated) };
        try {
          let status: RequestStatus = "succeeded";
          let failure: DomainError | undefined;
          try {
            for await (const chunk of upstream) {
              if (chunk.usage) reported = chunk.usage;
              if (chunk.choices.length === 0) continue;
              generated.push(...chunk.choices.map((c) => c.delta));
              outputBegan ||= hasOutput(chunk.choices);
              yield { type: "delta", choices: chunk.choices };
            }
          } catch (error) {
            status = signal.aborted ? "cancelled" : "failed";
            failure = signal.aborted ? undefined : toDomainError(error);
          }
          const usage = usageSoFar();
          finished = true;
          const costCents = await finish(prepared, { status, billable: outputBegan, usage, ...(failure && { error: failure }) });
          yield failure ? { type: "failed", error: failure, usage, costCents } : { type: "done", usage, costCents };
        } finally {
          // The consumer stopped early (the client went away): bill what was generated.
          if (!finished) await finish(prepared, { status: "cancelled", billable: outputBegan, usage: usageSoFar() });
          await slot.release();
        }
      }

      return { ...prepared.header, events: events() };
    },
  };
}

export type ChatService = ReturnType<typeof createChatService>;
