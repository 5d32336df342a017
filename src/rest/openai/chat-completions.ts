import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { ChatCall, ChatInput, ChatService } from "../../domain/inference/chat.js";
import type { ChatMessage, CompletionChoice, TokenUsage } from "../../domain/inference/provider.js";
import { coalescingSse } from "../coalescing-sse.js";
import { errorBody } from "../errors.js";
import { callContextOf, type MeteredEnv } from "../call-context.js";
import { parseJsonBody } from "../request-input.js";
import { setWeeklyChatHeaders } from "../weekly-chat-headers.js";
import { chatCompletionRequest, passThroughParams } from "./chat-schema.js";

type Env = MeteredEnv;

/** OpenAI's usage block; `cost_cents` only when the caller asked with X-Include-Cost: 1 (SPEC 2). */
export function usageBlock(usage: TokenUsage, costCents: number, includeCost: boolean) {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    ...(includeCost && { cost_cents: costCents }),
  };
}

/**
 * OpenAI's choice object. Its schema requires `logprobs` and the message's
 * `refusal` (both nullable), which strict typed clients insist on; the demo
 * provider and sparse upstreams leave them out.
 */
const completionChoice = (choice: CompletionChoice) => ({
  ...choice,
  message: { ...choice.message, refusal: choice.message.refusal ?? null },
  logprobs: choice.logprobs ?? null,
});

export const wantsCost = (c: Context) => ["1", "true"].includes(c.req.header("x-include-cost")?.trim().toLowerCase() ?? "");

export function chatCompletionsHandler(chat: ChatService) {
  return async (c: Context<Env>) => {
    const body = await parseJsonBody(c, chatCompletionRequest);
    const call: ChatCall = callContextOf(c, "/v1/chat/completions", body);
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
    const input: ChatInput = {
      model: body.model,
      messages: body.messages as ChatMessage[],
      ...(maxTokens !== undefined && { maxTokens }),
      params: passThroughParams(body),
    };
    const includeCost = wantsCost(c);
    // Aborted when the client goes away, which stops the upstream generation (SPEC 2).
    const abort = new AbortController();
    c.req.raw.signal.addEventListener("abort", () => abort.abort(), { once: true });

    if (!body.stream) {
      const result = await chat.complete(call, input, abort.signal);
      setWeeklyChatHeaders(c, result.weeklyChats);
      return c.json({
        id: result.id,
        object: "chat.completion",
        created: result.created,
        model: result.model,
        choices: result.choices.map(completionChoice),
        usage: usageBlock(result.usage, result.costCents, includeCost),
      });
    }

    const stream = await chat.stream(call, input, abort.signal);
    setWeeklyChatHeaders(c, stream.weeklyChats);
    const header = { id: stream.id, object: "chat.completion.chunk", created: stream.created, model: stream.model };
    return streamSSE(c, async (sse) => {
      sse.onAbort(() => abort.abort());
      const events = coalescingSse(sse);
      for await (const event of stream.events) {
        if (sse.aborted) break;
        switch (event.type) {
          case "delta":
            await events.send(JSON.stringify({ ...header, choices: event.choices }));
            break;
          case "done":
            // SPEC 2: the final chunk has empty choices and always carries usage.
            await events.send(JSON.stringify({ ...header, choices: [], usage: usageBlock(event.usage, event.costCents, includeCost) }));
            await events.send("[DONE]");
            break;
          case "failed":
            // Headers are sent already; OpenAI's SDKs raise an APIError on an `error` event.
            await events.send(JSON.stringify(errorBody(event.error)));
            break;
        }
      }
      await events.drained();
    });
  };
}
