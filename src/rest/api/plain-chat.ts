import type { Context } from "hono";
import { stream as streamBody } from "hono/streaming";
import { isDomainError } from "../../domain/errors.js";
import type { ChatCall, ChatInput, ChatService, ChatStreamEvent } from "../../domain/inference/chat.js";
import type { ChatMessage } from "../../domain/inference/provider.js";
import { coalescingWriter } from "../coalescing-sse.js";
import { callContextOf, type MeteredEnv } from "../call-context.js";
import { usageBlock } from "../openai/chat-completions.js";
import { chatCompletionRequest } from "../openai/chat-schema.js";
import { parseJsonBody } from "../request-input.js";
import { setWeeklyChatHeaders } from "../weekly-chat-headers.js";

// SPEC 10: chat for simple clients. The same chat as /v1/chat/completions (the
// ChatService meters, bills and refuses alike); only the wire differs: the
// reply's text, streamed as plain UTF-8 or answered as {text, usage}.

type Env = MeteredEnv;

export const PLAIN_CHAT_ENDPOINT = "/api/v1/chat";

/**
 * `{messages, stream, model?, max_tokens?}`, with the OpenAI request's own
 * rules for each field, and its end-user fields (SPEC 3). Unknown fields are
 * dropped, as there.
 */
export const plainChatRequest = chatCompletionRequest
  .pick({ messages: true, stream: true, max_tokens: true, user: true, user_name: true })
  .extend({ model: chatCompletionRequest.shape.model.optional() });

/**
 * The reply's text as it is generated, piece by piece (empty deltas skipped).
 * A stream that broke throws its error, once the service has billed what was
 * generated before it.
 */
async function* textPieces(events: AsyncIterable<ChatStreamEvent>): AsyncGenerator<string> {
  for await (const event of events) {
    if (event.type === "failed") throw event.error;
    if (event.type !== "delta") continue;
    const text = event.choices.map((choice) => choice.delta.content ?? "").join("");
    if (text) yield text;
  }
}

export function plainChatHandler(chat: ChatService, { defaultModel }: { defaultModel: string }) {
  return async (c: Context<Env>) => {
    const body = await parseJsonBody(c, plainChatRequest);
    const call: ChatCall = callContextOf(c, PLAIN_CHAT_ENDPOINT, body);
    const input: ChatInput = {
      // No model named: the one an unknown name would get (SPEC 2).
      model: body.model ?? defaultModel,
      messages: body.messages as ChatMessage[],
      ...(body.max_tokens != null && { maxTokens: body.max_tokens }),
      params: {},
    };
    // Aborted when the client goes away, which stops the upstream generation (SPEC 2).
    const abort = new AbortController();
    c.req.raw.signal.addEventListener("abort", () => abort.abort(), { once: true });

    if (!body.stream) {
      const result = await chat.complete(call, input, abort.signal);
      setWeeklyChatHeaders(c, result.weeklyChats);
      const text = result.choices.map((choice) => choice.message.content ?? "").join("");
      return c.json({ text, usage: usageBlock(result.usage, 0, false) });
    }

    const reply = await chat.stream(call, input, abort.signal);
    setWeeklyChatHeaders(c, reply.weeklyChats);
    const pieces = textPieces(reply.events);
    // Read up to the first text before the status is sent: a failure until then is a plain JSON error with its status.
    const first = await pieces.next();
    c.header("content-type", "text/plain; charset=utf-8");
    c.header("cache-control", "no-cache");
    return streamBody(c, async (out) => {
      out.onAbort(() => abort.abort());
      const writer = coalescingWriter((text) => out.write(text));
      try {
        if (!first.done) await writer.send(first.value);
        for await (const piece of pieces) {
          // Leaving the loop ends the service's stream, which bills what was generated and releases the hold.
          if (out.aborted) break;
          await writer.send(piece);
        }
      } catch (error) {
        // The status is sent: the body ends with the text so far, which the service has billed.
        if (!isDomainError(error)) throw error;
      }
      await writer.drained();
    });
  };
}
