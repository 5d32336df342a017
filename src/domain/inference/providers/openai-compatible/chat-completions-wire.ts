import type { ChunkChoice, CompletionChoice, ReportedUsage, UpstreamChatRequest, UpstreamChunk, UpstreamCompletion } from "../../provider.js";

// The OpenAI Chat Completions wire format, both ways: the body we send, and
// the responses we read back into the provider port's types. Readers throw
// WireFormatError on a shape the port cannot carry; the provider turns that
// into an UpstreamError.

export class WireFormatError extends Error {
  override readonly name = "WireFormatError";
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

export function chatCompletionsBody(request: UpstreamChatRequest, upstreamModel: string, stream: boolean): Json {
  // Ours win over pass-through parameters: the token budget was reduced to
  // what the balance covers (SPEC 5), and OpenAI refuses max_tokens together
  // with max_completion_tokens.
  const { max_completion_tokens: _, stream: __, stream_options: ___, ...params } = request.params;
  return {
    ...params,
    model: upstreamModel,
    messages: request.messages,
    max_tokens: request.maxTokens,
    // SPEC 2: the final chunk always carries usage, so ask for it whatever the caller asked.
    ...(stream && { stream: true, stream_options: { include_usage: true } }),
  };
}

const numberOrNothing = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : undefined);

/**
 * OpenAI's usage block, its numbers as sent: whether to believe them is the
 * metering's decision (SPEC 5). OpenAI sends `usage: null` on every chunk but the last.
 */
export function readUsage(value: unknown): ReportedUsage | undefined {
  if (!isObject(value)) return undefined;
  const promptTokens = numberOrNothing(value.prompt_tokens);
  const completionTokens = numberOrNothing(value.completion_tokens);
  return {
    ...(promptTokens !== undefined && { promptTokens }),
    ...(completionTokens !== undefined && { completionTokens }),
  };
}

/** The message of an error body: OpenAI's `{error: {message}}`, or the `{error: "…"}` / `{message}` / `{detail}` other servers use. */
export function readErrorMessage(value: unknown): string | undefined {
  if (!isObject(value)) return undefined;
  const { error } = value;
  if (isObject(error) && typeof error.message === "string") return error.message;
  if (typeof error === "string") return error;
  if (typeof value.message === "string") return value.message;
  if (typeof value.detail === "string") return value.detail;
  return undefined;
}

function readChoices(value: Json): unknown[] {
  if (value.error !== undefined && value.error !== null) {
    throw new WireFormatError(`the upstream reported an error: ${readErrorMessage(value) ?? "no message"}`);
  }
  if (value.choices === undefined || value.choices === null) return [];
  if (!Array.isArray(value.choices)) throw new WireFormatError("`choices` is not an array");
  return value.choices;
}

export function readCompletion(value: unknown): UpstreamCompletion {
  if (!isObject(value)) throw new WireFormatError("the response is not a JSON object");
  const choices = readChoices(value);
  if (choices.length === 0) throw new WireFormatError("the response has no choices");
  const usage = readUsage(value.usage);
  return {
    choices: choices.map((choice, i): CompletionChoice => {
      if (!isObject(choice) || !isObject(choice.message)) throw new WireFormatError("a choice has no message");
      return {
        ...choice,
        index: typeof choice.index === "number" ? choice.index : i,
        message: {
          ...choice.message,
          role: "assistant",
          content: typeof choice.message.content === "string" ? choice.message.content : null,
        },
        finish_reason: typeof choice.finish_reason === "string" ? choice.finish_reason : null,
      };
    }),
    ...(usage && { usage }),
  };
}

export function readChunk(value: unknown): UpstreamChunk {
  if (!isObject(value)) throw new WireFormatError("a chunk is not a JSON object");
  const usage = readUsage(value.usage);
  return {
    choices: readChoices(value).map((choice, i): ChunkChoice => {
      if (!isObject(choice)) throw new WireFormatError("a chunk's choice is not an object");
      return {
        ...choice,
        index: typeof choice.index === "number" ? choice.index : i,
        delta: isObject(choice.delta) ? choice.delta : {},
        finish_reason: typeof choice.finish_reason === "string" ? choice.finish_reason : null,
      };
    }),
    ...(usage && { usage }),
  };
}
