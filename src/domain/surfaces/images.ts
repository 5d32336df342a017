import { DomainError } from "../errors.js";
import type { ModelConfig } from "../inference/model-table.js";
import { UpstreamError } from "../inference/provider.js";
import type { GeneratedImage, ImagesRequest } from "../inference/surface-provider.js";
import { INSUFFICIENT_BALANCE_MESSAGE } from "../ledger.js";
import { type Charged, type SurfaceCall, type SurfaceCalls } from "./surface-call.js";

export interface ImagesInput extends Omit<ImagesRequest, "trace" | "size"> {
  /** WIDTHxHEIGHT; absent: 1024x1024 when the model prices it, else its first size. */
  size?: string;
}

const PREFERRED_SIZE = "1024x1024";
const MILLION = 1_000_000;

function sizeFor(model: ModelConfig, requested: string | undefined): { size: string; cents: number } {
  const prices = model.pricing.imageCents;
  const size = requested ?? (PREFERRED_SIZE in prices ? PREFERRED_SIZE : Object.keys(prices)[0]!);
  const cents = prices[size];
  if (cents === undefined) {
    throw new DomainError("invalid_request_error", `Unsupported size '${size}'. ${model.id} makes: ${Object.keys(prices).join(", ")}.`, "size");
  }
  return { size, cents };
}

/** SPEC 10: images, priced per image by size; the hold covers every image asked for, or the request is refused. */
export function createImages(calls: SurfaceCalls) {
  return (call: SurfaceCall, input: ImagesInput, signal: AbortSignal): Promise<Charged<GeneratedImage[]>> => {
    return calls.charged(
      call,
      "images",
      input.model,
      signal,
      (model) => {
        const { size, cents } = sizeFor(model, input.size);
        // Images are output units, each at its size's price.
        return { pricing: { inputCentsPerMillion: 0, outputCentsPerMillion: cents * MILLION }, inputUnits: 0, outputUnits: input.n, size };
      },
      async (metered, provider, { size }) => {
        // Unlike a chat answer, a picture cannot be cut short to fit the balance: fewer images than asked is a refusal.
        if ((await metered.fitOutput(0, input.n)) < input.n) throw new DomainError("insufficient_balance", INSUFFICIENT_BALANCE_MESSAGE);
        const answer = await provider.images({ ...input, model: metered.model.id, size, trace: call.trace }, metered.signal);
        if (answer.data.length === 0) throw new UpstreamError("The upstream returned no image.", "bad_response", true);
        return { result: answer.data, usage: { promptTokens: 0, completionTokens: answer.data.length } };
      },
    );
  };
}
