import { Readable } from "node:stream";
import type { Context } from "hono";
import type { StagedBlob } from "../../domain/files/blob-store.js";
import { newId } from "../../domain/ids.js";
import type { Surfaces } from "../../domain/surfaces/index.js";
import { MAX_AUDIO_BYTES } from "../../domain/surfaces/transcription.js";
import { callContextOf, type MeteredEnv } from "../call-context.js";
import { readIdentity } from "../identity-headers.js";
import { readMultipartUpload } from "../multipart-upload.js";
import { parseInput, parseJsonBody } from "../request-input.js";
import { wantsCost } from "./chat-completions.js";
import { passThrough } from "./pass-through.js";
import { embeddingsRequest, imagesRequest, rerankRequest, speechRequest, transcriptionFields } from "./surfaces-schema.js";

// The REST adapters of the surfaces beside chat (SPEC 10): OpenAI's request
// and response shapes around the domain's surfaces; rerank in Cohere's and Jina's.

type Env = MeteredEnv;

export interface SurfaceHandlerDeps {
  surfaces: Surfaces;
  /** Streams an upload to a private staging file, refusing it past `maxBytes` (SPEC 7's blob store). */
  stage(bytes: Readable, options: { maxBytes: number; signal: AbortSignal }): Promise<StagedBlob>;
  now(): Date;
}

/** `cost_cents` beside the usage only when asked for with X-Include-Cost: 1, as for chat (SPEC 2). */
const withCost = (c: Context, usage: Record<string, unknown>, costCents: number) => (wantsCost(c) ? { ...usage, cost_cents: costCents } : usage);

export function surfaceHandlers({ surfaces, stage, now }: SurfaceHandlerDeps) {
  const created = () => Math.floor(now().getTime() / 1000);

  return {
    async embeddings(c: Context<Env>) {
      const body = await parseJsonBody(c, embeddingsRequest);
      const input = {
        model: body.model,
        input: body.input,
        encodingFormat: body.encoding_format,
        ...(body.dimensions !== undefined && { dimensions: body.dimensions }),
        params: passThrough(body, ["user"]),
      };
      const answer = await surfaces.embeddings(callContextOf(c, "/v1/embeddings", body), input, c.req.raw.signal);
      const tokens = answer.usage.promptTokens;
      return c.json({
        object: "list",
        data: answer.result.map(({ index, embedding }) => ({ object: "embedding", index, embedding })),
        model: answer.model.id,
        usage: withCost(c, { prompt_tokens: tokens, total_tokens: tokens }, answer.costCents),
      });
    },

    async images(c: Context<Env>) {
      const body = await parseJsonBody(c, imagesRequest);
      const input = {
        model: body.model,
        prompt: body.prompt,
        n: body.n ?? 1,
        ...(body.size && { size: body.size }),
        ...(body.response_format && { responseFormat: body.response_format }),
        params: passThrough(body, ["quality", "style", "background", "output_format", "user"]),
      };
      const answer = await surfaces.images(callContextOf(c, "/v1/images/generations", body), input, c.req.raw.signal);
      return c.json({ created: created(), data: answer.result, ...(wantsCost(c) && { usage: { images: answer.usage.completionTokens, cost_cents: answer.costCents } }) });
    },

    async transcriptions(c: Context<Env>) {
      // Before the upload is read: a malformed identity header is refused, then an account that cannot pay.
      readIdentity(c, {});
      await surfaces.transcription.admit(c.get("caller").account.id);
      const signal = c.req.raw.signal;
      const upload = await readMultipartUpload(c.req.raw, (bytes) => stage(bytes, { maxBytes: MAX_AUDIO_BYTES, signal }), MAX_AUDIO_BYTES);
      try {
        const fields = parseInput(transcriptionFields, upload.fields);
        const input = {
          model: fields.model,
          audio: {
            path: upload.staged.path,
            filename: upload.filename || "audio",
            contentType: upload.contentType ?? "application/octet-stream",
            bytes: upload.staged.bytes,
          },
          responseFormat: fields.response_format,
          params: passThrough(fields, ["language", "prompt", "temperature"]),
        };
        const answer = await surfaces.transcription.transcribe(callContextOf(c, "/v1/audio/transcriptions", fields), input, signal);
        return c.body(answer.result.body, 200, { "content-type": answer.result.contentType });
      } finally {
        await upload.staged.discard();
      }
    },

    async speech(c: Context<Env>) {
      const body = await parseJsonBody(c, speechRequest);
      const input = {
        model: body.model,
        input: body.input,
        voice: body.voice,
        responseFormat: body.response_format,
        params: passThrough(body, ["speed", "instructions"]),
      };
      const answer = await surfaces.speech(callContextOf(c, "/v1/audio/speech", body), input, c.req.raw.signal);
      const headers: Record<string, string> = { "content-type": answer.result.contentType };
      // Audio has no usage block: the cost, when asked for, travels as a header.
      if (wantsCost(c)) headers["x-cost-cents"] = String(answer.costCents);
      // Cancelling the web stream (the client went away) destroys the Readable, which closes the upstream.
      return c.body(Readable.toWeb(Readable.from(answer.result.body)) as ReadableStream, 200, headers);
    },

    async rerank(c: Context<Env>) {
      const body = await parseJsonBody(c, rerankRequest);
      const topN = Math.min(body.top_n ?? body.documents.length, body.documents.length);
      const input = { model: body.model, query: body.query, documents: body.documents, topN, params: {} };
      const answer = await surfaces.rerank(callContextOf(c, "/v1/rerank", body), input, c.req.raw.signal);
      return c.json({
        id: newId.rerank(),
        model: answer.model.id,
        results: answer.result.map(({ index, relevance_score }) => ({
          index,
          relevance_score,
          ...(body.return_documents && { document: { text: body.documents[index] } }),
        })),
        usage: withCost(c, { total_tokens: answer.usage.promptTokens }, answer.costCents),
      });
    },
  };
}
