import { openAsBlob } from "node:fs";
import { FormData } from "undici";
import { z } from "zod";
import type { ReportedUsage } from "../../provider.js";
import type { SurfaceProvider } from "../../surface-provider.js";
import type { UpstreamClient } from "./upstream-client.js";
import { malformedResponse, transportFailure } from "./upstream-failures.js";

// The surfaces beside chat over an openai-compatible upstream (SPEC 10):
// OpenAI's paths and shapes for embeddings, images and audio, and the rerank
// shape vLLM, Jina and Cohere share. Answers are read with schemas, so an
// upstream that sends something else is a 502, never a crash or a lie passed on.

const usageNumber = z.number().optional().catch(undefined);

const embeddingsAnswer = z.object({
  data: z.array(z.object({ index: z.number().int().nonnegative(), embedding: z.union([z.array(z.number()), z.string()]) })),
  usage: z.object({ prompt_tokens: usageNumber }).nullish().catch(undefined),
});

const imagesAnswer = z.object({
  data: z.array(
    z.object({ b64_json: z.string().optional(), url: z.string().optional(), revised_prompt: z.string().optional() })
      .refine((image) => image.b64_json !== undefined || image.url !== undefined, "an image has neither b64_json nor url"),
  ),
});

const transcriptionJson = z.looseObject({ text: z.string() });

const rerankAnswer = z.object({
  results: z.array(z.object({ index: z.number().int().nonnegative(), relevance_score: z.number() })),
  usage: z.object({ total_tokens: usageNumber, prompt_tokens: usageNumber }).nullish().catch(undefined),
});

const reported = (promptTokens: number | undefined): ReportedUsage | undefined =>
  promptTokens === undefined ? undefined : { promptTokens };

export function createOpenAICompatibleSurfaces(client: UpstreamClient): SurfaceProvider {
  const model = client.upstreamModel;

  function read<T>(schema: z.ZodType<T>, json: unknown): T {
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw malformedResponse(parsed.error.issues[0]?.message ?? "unexpected shape", client.redact);
    return parsed.data;
  }

  const postJson = async (path: string, body: Record<string, unknown>, signal: AbortSignal) =>
    client.readJson(await client.post(path, { json: body }, "application/json", signal), signal);

  return {
    async embeddings(request, signal) {
      const body = {
        ...request.params,
        model,
        input: request.input,
        encoding_format: request.encodingFormat,
        ...(request.dimensions !== undefined && { dimensions: request.dimensions }),
      };
      const answer = read(embeddingsAnswer, await postJson("/embeddings", body, signal));
      const indexes = new Set(answer.data.map((item) => item.index));
      if (answer.data.length !== request.input.length || indexes.size !== request.input.length || [...indexes].some((i) => i >= request.input.length)) {
        throw malformedResponse(`${answer.data.length} embeddings for ${request.input.length} inputs`, client.redact);
      }
      return { data: answer.data.sort((a, b) => a.index - b.index), usage: reported(answer.usage?.prompt_tokens) };
    },

    async images(request, signal) {
      const body = {
        ...request.params,
        model,
        prompt: request.prompt,
        n: request.n,
        size: request.size,
        ...(request.responseFormat && { response_format: request.responseFormat }),
      };
      const answer = read(imagesAnswer, await postJson("/images/generations", body, signal));
      // Never more images than were asked for, and paid for.
      return { data: answer.data.slice(0, request.n) };
    },

    async transcribe(request, signal) {
      const form = new FormData();
      for (const [name, value] of Object.entries(request.params)) form.append(name, String(value));
      form.append("model", model);
      form.append("response_format", request.responseFormat);
      const { audio } = request;
      form.append("file", await openAsBlob(audio.path, { type: audio.contentType }), audio.filename);
      const response = await client.post("/audio/transcriptions", { form }, "*/*", signal);
      const body = (await client.readAll(response, signal)).toString("utf8");
      const json = request.responseFormat === "json" || request.responseFormat === "verbose_json";
      if (json) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          throw malformedResponse("the transcript is not JSON", client.redact);
        }
        read(transcriptionJson, parsed);
      }
      const contentType = json ? "application/json" : String(response.headers["content-type"] ?? "text/plain; charset=utf-8");
      return { contentType, body };
    },

    async speech(request, signal) {
      const body = { ...request.params, model, input: request.input, voice: request.voice, response_format: request.responseFormat };
      const response = await client.post("/audio/speech", { json: body }, "*/*", signal);
      // As for a chat stream: resolved once the first bytes are in, so a connection lost before them is still retried.
      const started = await client.firstBytes(response, signal);
      if (!started) throw malformedResponse("the audio is empty", client.redact);
      const { first, rest } = started;
      const { timeoutMs } = client;
      return {
        contentType: String(response.headers["content-type"] ?? "application/octet-stream"),
        body: (async function* () {
          try {
            yield first;
            for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
          } catch (error) {
            signal.throwIfAborted();
            throw transportFailure(error, false, timeoutMs);
          } finally {
            await rest.return?.();
          }
        })(),
      };
    },

    async rerank(request, signal) {
      const body = { ...request.params, model, query: request.query, documents: request.documents, top_n: request.topN };
      const answer = read(rerankAnswer, await postJson("/rerank", body, signal));
      if (answer.results.some((result) => result.index >= request.documents.length)) {
        throw malformedResponse("a result names a document that was not sent", client.redact);
      }
      return { results: answer.results, usage: reported(answer.usage?.total_tokens ?? answer.usage?.prompt_tokens) };
    },
  };
}
