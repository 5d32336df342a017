import type { Clock } from "../clock.js";
import { DomainError } from "../errors.js";
import { newId } from "../ids.js";
import { billableUsage } from "../metering/billable-usage.js";
import type { CallContext, CallEnding, MeteredCall, MeterPlan, Metering } from "../metering/metered-call.js";
import type { WeeklyChats } from "../plans.js";
import { type AttachmentFiles, resolveAttachments } from "./attachments.js";
import { assertModelAllowed } from "./model-access.js";
import { assertSystemMessagesWithinLimit, withSafetyPrompt } from "./chat-rules.js";
import type { ModelCatalog, ModelConfig } from "./model-table.js";
import { createOutputTally, limitOutput } from "./output-limit.js";
import type {
  ChatMessage,
  ChatProvider,
  ChunkChoice,
  CompletionChoice,
  ReportedUsage,
  TokenUsage,
  UpstreamChatRequest,
  UpstreamChunk,
} from "./provider.js";
import { countCompletionTokens, countPromptTokensInSlices, promptTokensUpperBound } from "./tokens.js";

// Chat completions as a metered surface: the wire-independent chat request
// becomes a plan (cheap checks, an estimate), then, under the hold, the
// resolved upstream request; the pipeline in domain/metering owns the hold,
// the settle and the record.

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
export type ChatCall = Omit<CallContext, "requestedModel">;

export interface CompletionHeader {
  id: string;
  created: number;
  model: string;
  /** On a capped plan (SPEC 10): the week's chats after this one, for the surface to show. */
  weeklyChats?: WeeklyChats;
}

export interface ChatCompletionResult extends CompletionHeader {
  choices: CompletionChoice[];
  usage: TokenUsage;
  costCents: number;
}

export type ChatStreamEvent =
  | { type: "delta"; choices: ChunkChoice[] }
  | { type: "done"; usage: TokenUsage; costCents: number }
  /** The stream broke after it began: what was generated is billed, then the stream ends with the error. */
  | { type: "failed"; error: DomainError };

export interface ChatStream extends CompletionHeader {
  events: AsyncIterable<ChatStreamEvent>;
}

export interface ChatServiceDeps {
  catalog: ModelCatalog;
  providerFor(model: ModelConfig): ChatProvider;
  metering: Pick<Metering, "begin">;
  files: AttachmentFiles;
  clock: Clock;
  safetyPrompt: string;
}

function assertWithinModelOutput(model: ModelConfig, requested: number | undefined): void {
  if (requested !== undefined && requested > model.maxOutputTokens) {
    throw new DomainError(
      "invalid_request_error",
      `max_tokens is too large: ${requested}. This model supports at most ${model.maxOutputTokens} completion tokens.`,
      "max_tokens",
    );
  }
}

/** SPEC 10: the prompt and the answer must fit the model's context window. */
function outputTokenBudget(model: ModelConfig, promptTokens: number, requested: number | undefined): number {
  const room = model.contextWindow - promptTokens;
  const budget = requested ?? Math.min(model.defaultMaxTokens, room);
  if (budget < 1 || budget > room) {
    const demand =
      room < 1
        ? `the messages alone take at least ${promptTokens}`
        : `the messages take ${promptTokens} and ${budget} were requested for the answer`;
    throw new DomainError("context_length_exceeded", `This model's context window is ${model.contextWindow} tokens; ${demand}.`, "messages");
  }
  return budget;
}

const hasOutput = (choices: ChunkChoice[]): boolean =>
  choices.some((c) => Boolean(c.delta.content) || Boolean(c.delta.tool_calls?.length));

/** Tokens the upstream generated, counted by us when it reports no believable usage. */
function countGenerated(parts: Array<{ content?: string | null; tool_calls?: unknown[] }>): number {
  const text = parts.map((p) => p.content ?? "").join("");
  const toolArguments = parts.flatMap((p) =>
    (p.tool_calls ?? []).map((call) => (call as { function?: { arguments?: string } }).function?.arguments ?? ""),
  );
  return countCompletionTokens(text, toolArguments);
}

/**
 * Reads a stream's first chunk before the answer's status is sent, so an
 * upstream whose very first event is malformed is still a plain 502, not a
 * 200 stream that breaks at once.
 */
async function started(chunks: AsyncIterable<UpstreamChunk>): Promise<AsyncIterable<UpstreamChunk>> {
  const iterator = chunks[Symbol.asyncIterator]();
  const first = await iterator.next();
  return (async function* () {
    try {
      if (first.done) return;
      yield first.value;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    } finally {
      // A reader that stops early closes the upstream too.
      await iterator.return?.();
    }
  })();
}

interface PreparedChat {
  upstream: UpstreamChatRequest;
  promptTokens: number;
}

export function createChatService(deps: ChatServiceDeps) {
  const { catalog, metering, clock } = deps;

  /** Cheap checks only: no attachment is read and nothing is tokenized before the hold. */
  function plan(call: ChatCall, input: ChatInput, stream: boolean): MeterPlan {
    const model = catalog.resolveFor("chat", input.model);
    assertModelAllowed(call.caller, input.model, model);
    assertSystemMessagesWithinLimit(input.messages);
    assertWithinModelOutput(model, input.maxTokens);
    const withPrompt = withSafetyPrompt(deps.safetyPrompt, input.messages);
    return {
      model,
      stream,
      // A prompt beyond the window is refused once counted, so the window bounds what can be held for.
      inputTokensUpperBound: Math.min(promptTokensUpperBound(withPrompt), model.contextWindow),
      requestedMaxTokens: input.maxTokens ?? model.defaultMaxTokens,
      // SPEC 10: every chat, on whichever surface, counts against a plan's weekly chats.
      quota: "weekly_chat",
    };
  }

  /**
   * Under the hold: attachments resolved (within their budgets, each file read
   * once), the exact prompt counted in slices that leave the event loop to
   * other requests, and only as far as the context window, the output budget
   * fitted to the hold.
   */
  async function prepare(metered: MeteredCall, call: ChatCall, input: ChatInput): Promise<PreparedChat> {
    const { model } = metered;
    const resolved = await resolveAttachments(input.messages, { accountId: call.caller.account.id, model, files: deps.files });
    const messages = withSafetyPrompt(deps.safetyPrompt, resolved);
    const promptTokens = await countPromptTokensInSlices(messages, { atMost: model.contextWindow });
    const maxTokens = await metered.fitOutput(promptTokens, outputTokenBudget(model, promptTokens, input.maxTokens));
    return { upstream: { model: model.id, messages, maxTokens, params: input.params, trace: call.trace }, promptTokens };
  }

  function begin(call: ChatCall, input: ChatInput, stream: boolean, signal: AbortSignal) {
    return metering.begin({ ...call, requestedModel: input.model }, () => plan(call, input, stream), signal);
  }

  const header = ({ model, weeklyChats }: MeteredCall): CompletionHeader => ({
    id: newId.completion(),
    created: Math.floor(clock.now().getTime() / 1000),
    model: model.id,
    ...(weeklyChats && { weeklyChats }),
  });

  /** SPEC 5: the upstream's numbers are believed only within what the request could have used. */
  const usageOf = (metered: MeteredCall, prepared: PreparedChat, reported: ReportedUsage | undefined, counted: () => number) =>
    billableUsage(
      reported,
      { promptTokens: () => prepared.promptTokens, completionTokens: counted },
      { maxPromptTokens: metered.model.contextWindow, maxCompletionTokens: prepared.upstream.maxTokens },
    );

  return {
    async complete(call: ChatCall, input: ChatInput, signal: AbortSignal): Promise<ChatCompletionResult> {
      const metered = await begin(call, input, false, signal);
      return metered.guard(async () => {
        const prepared = await prepare(metered, call, input);
        const completion = await deps.providerFor(metered.model).complete(prepared.upstream, metered.signal);
        const choices = limitOutput(completion.choices, prepared.upstream.maxTokens);
        const usage = usageOf(metered, prepared, completion.usage, () => countGenerated(choices.map((c) => c.message)));
        // Not one byte of the answer leaves before its charge has committed.
        const { chargedCents } = await metered.end({ status: "succeeded", usage }, { beforeDelivery: true });
        return { ...header(metered), choices, usage, costCents: chargedCents };
      });
    },

    /**
     * Resolves once the upstream has started answering, so failures before that
     * are still plain errors; the events then end with "done" or "failed".
     */
    async stream(call: ChatCall, input: ChatInput, signal: AbortSignal): Promise<ChatStream> {
      const metered = await begin(call, input, true, signal);
      const { prepared, chunks } = await metered.guard(async () => {
        const prepared = await prepare(metered, call, input);
        return { prepared, chunks: await started(await deps.providerFor(metered.model).stream(prepared.upstream, metered.signal)) };
      });

      async function* events(): AsyncGenerator<ChatStreamEvent> {
        const generated: ChunkChoice["delta"][] = [];
        const tally = createOutputTally(prepared.upstream.maxTokens);
        let reported: ReportedUsage | undefined;
        let outputBegan = false;
        let ending: CallEnding | undefined;
        const usageSoFar = (exact: boolean) =>
          usageOf(metered, prepared, reported, exact ? () => countGenerated(generated) : () => tally.tokens);
        // Read at each checkpoint, not at each chunk: the hot loop only passes chunks on.
        metered.reportDelivery(() => (outputBegan ? usageSoFar(false) : undefined));
        try {
          let failure: DomainError | undefined;
          let usage: TokenUsage | undefined;
          try {
            for await (const chunk of chunks) {
              if (chunk.usage) reported = chunk.usage;
              if (chunk.choices.length === 0) continue;
              // An upstream that ignores max_tokens is cut off at the budget its hold covers.
              const { choices, exhausted } = tally.take(chunk.choices);
              generated.push(...choices.map((c) => c.delta));
              outputBegan ||= hasOutput(choices);
              yield { type: "delta", choices };
              if (exhausted) break;
            }
            usage = usageSoFar(true);
            ending = { status: "succeeded", ...(outputBegan && { usage }) };
          } catch (error) {
            if (outputBegan) usage = usageSoFar(true);
            ({ ending, error: failure } = metered.endingFor(error, usage));
          }
          const { chargedCents } = await metered.end(ending);
          yield failure ? { type: "failed", error: failure } : { type: "done", usage: usage!, costCents: chargedCents };
        } finally {
          // The consumer stopped reading (the client went away): bill what was generated.
          if (!ending) await metered.end(metered.endingFor(null, outputBegan ? usageSoFar(true) : undefined).ending);
        }
      }

      return { ...header(metered), events: events() };
    },
  };
}

export type ChatService = ReturnType<typeof createChatService>;
