import type { RerankRequest, RerankResult } from "../inference/surface-provider.js";
import { type Charged, inputPricing, type SurfaceCall, type SurfaceCalls } from "./surface-call.js";
import { countUnderHold, inputUsage, tokensUpperBound } from "./token-input.js";

export type RerankInput = Omit<RerankRequest, "trace">;

/** SPEC 10: rerank, priced by the tokens of the query and the documents at the model's input price. */
export function createRerank(calls: SurfaceCalls) {
  return (call: SurfaceCall, input: RerankInput, signal: AbortSignal): Promise<Charged<RerankResult[]>> => {
    const texts = [input.query, ...input.documents];
    const upperBound = tokensUpperBound(texts);
    return calls.charged(
      call,
      "rerank",
      input.model,
      signal,
      (model) => ({ pricing: inputPricing(model.pricing.inputCentsPerMillion), inputUnits: upperBound, outputUnits: 0 }),
      async (metered, provider, { pricing }) => {
        const counted = await countUnderHold(metered, pricing, texts);
        const answer = await provider.rerank({ ...input, model: metered.model.id, trace: call.trace }, metered.signal);
        // Best first, whatever order the upstream used, and never more than asked for.
        const results = [...answer.results].sort((a, b) => b.relevance_score - a.relevance_score).slice(0, input.topN);
        return { result: results, usage: inputUsage(answer.usage, counted, upperBound) };
      },
    );
  };
}
