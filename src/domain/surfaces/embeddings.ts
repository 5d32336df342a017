import type { Embedding, EmbeddingsRequest } from "../inference/surface-provider.js";
import { type Charged, inputPricing, type SurfaceCall, type SurfaceCalls } from "./surface-call.js";
import { countUnderHold, coverInput, inputUsage, tokensUpperBound } from "./token-input.js";

export type EmbeddingsInput = Omit<EmbeddingsRequest, "trace">;

const isTexts = (input: EmbeddingsInput["input"]): input is string[] => typeof input[0] === "string";

/** SPEC 10: embeddings, priced by the input tokens at the model's input price. */
export function createEmbeddings(calls: SurfaceCalls) {
  return (call: SurfaceCall, input: EmbeddingsInput, signal: AbortSignal): Promise<Charged<Embedding[]>> => {
    const tokenArrays = isTexts(input.input) ? null : (input.input as number[][]);
    const upperBound = tokenArrays ? tokenArrays.reduce((sum, tokens) => sum + tokens.length, 0) : tokensUpperBound(input.input as string[]);
    return calls.charged(
      call,
      "embeddings",
      input.model,
      signal,
      (model) => ({ pricing: inputPricing(model.pricing.inputCentsPerMillion), inputUnits: upperBound, outputUnits: 0 }),
      async (metered, provider, { pricing }) => {
        // Token arrays are counted already; texts are counted under the hold.
        const counted = tokenArrays ? upperBound : await countUnderHold(metered, pricing, input.input as string[]);
        if (tokenArrays) await coverInput(metered, pricing, counted);
        const answer = await provider.embeddings({ ...input, model: metered.model.id, trace: call.trace }, metered.signal);
        return { result: answer.data, usage: inputUsage(answer.usage, counted, upperBound) };
      },
    );
  };
}
