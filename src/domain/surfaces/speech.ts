import type { SpeechRequest, UpstreamSpeech } from "../inference/surface-provider.js";
import { type Charged, inputPricing, type SurfaceCall, type SurfaceCalls } from "./surface-call.js";
import { coverInput } from "./token-input.js";

export type SpeechInput = Omit<SpeechRequest, "trace">;

/**
 * SPEC 10: speech, priced by the characters of its input, which are known
 * before the upstream is asked: the charge commits once the upstream has
 * begun sending audio, before the first byte goes to the client.
 */
export function createSpeech(calls: SurfaceCalls) {
  return (call: SurfaceCall, input: SpeechInput, signal: AbortSignal): Promise<Charged<UpstreamSpeech>> => {
    const characters = Array.from(input.input).length;
    return calls.charged(
      call,
      "speech",
      input.model,
      signal,
      (model) => ({ pricing: inputPricing(model.pricing.speechCentsPerMillionCharacters), inputUnits: characters, outputUnits: 0 }),
      async (metered, provider, { pricing }) => {
        await coverInput(metered, pricing, characters);
        const audio = await provider.speech({ ...input, model: metered.model.id, trace: call.trace }, metered.signal);
        return { result: audio, usage: { promptTokens: characters, completionTokens: 0 } };
      },
    );
  };
}
