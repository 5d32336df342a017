import { type UpstreamChatRequest, type UpstreamChunk, type UpstreamCompletion, UpstreamError } from "../../provider.js";
import type { Provider } from "../failover.js";
import { chatCompletionsBody, readCompletion, WireFormatError } from "./chat-completions-wire.js";
import { createOpenAICompatibleSurfaces } from "./surfaces-wire.js";
import { sseChunks } from "./sse-chunks.js";
import { createUpstreamClient, type OpenAICompatibleUpstream, type UpstreamClientDeps } from "./upstream-client.js";
import { malformedResponse } from "./upstream-failures.js";

// SPEC 9: any server speaking the OpenAI API (vLLM, llama.cpp server, Ollama,
// OpenAI itself), over keep-alive HTTP. Failures before the first byte are
// raised with beforeOutput = true so the failover around this may retry them.

export type { OpenAICompatibleUpstream };

export function createOpenAICompatibleProvider(upstream: OpenAICompatibleUpstream, deps: UpstreamClientDeps): Provider {
  const client = createUpstreamClient(upstream, deps);
  const { redact, timeoutMs } = client;

  const send = (request: UpstreamChatRequest, stream: boolean, signal: AbortSignal) =>
    client.post("/chat/completions", { json: chatCompletionsBody(request, upstream.model, stream) }, stream ? "text/event-stream" : "application/json", signal);

  return {
    name: client.name,
    ...createOpenAICompatibleSurfaces(client),
    async complete(request, signal): Promise<UpstreamCompletion> {
      const json = await client.readJson(await send(request, false, signal), signal);
      try {
        return readCompletion(json);
      } catch (error) {
        if (error instanceof WireFormatError) throw malformedResponse(error.message, redact);
        throw error;
      }
    },

    async stream(request, signal): Promise<AsyncIterable<UpstreamChunk>> {
      const started = await client.firstBytes(await send(request, true, signal), signal);
      if (!started) throw new UpstreamError("The upstream ended the stream without sending anything.", "bad_response", true);
      return sseChunks(started.first, started.rest, { signal, redact, timeoutMs });
    },
  };
}
