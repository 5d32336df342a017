import { parseFile } from "music-metadata";
import { DomainError } from "../errors.js";
import type { AudioFile, TranscriptionRequest, UpstreamTranscription } from "../inference/surface-provider.js";
import { INSUFFICIENT_BALANCE_MESSAGE } from "../ledger.js";
import { MIN_CHARGE_CENTS } from "../pricing.js";
import { type Charged, inputPricing, type SurfaceCall, type SurfaceCalls } from "./surface-call.js";
import { coverInput } from "./token-input.js";

/** OpenAI's limit on an uploaded audio file. */
export const MAX_AUDIO_BYTES = 25 * 1024 * 1024;

export interface TranscriptionInput {
  model: string;
  audio: Omit<AudioFile, "seconds">;
  responseFormat: TranscriptionRequest["responseFormat"];
  params: Record<string, unknown>;
}

export interface TranscriptionDeps {
  /** The account's balance less its holds, read at once. */
  availableCents(accountId: string): Promise<number>;
}

/** The audio's length in whole seconds, rounded up: what transcription is priced by. */
async function measuredSeconds(audio: Omit<AudioFile, "seconds">): Promise<number> {
  let duration: number | undefined;
  try {
    ({ duration } = (await parseFile(audio.path, { duration: true, skipCovers: true })).format);
  } catch {
    duration = undefined;
  }
  if (duration === undefined || !Number.isFinite(duration) || duration <= 0) {
    throw new DomainError(
      "invalid_file_format",
      "The file is not audio whose length could be read. Send flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg, wav or webm.",
      "file",
    );
  }
  return Math.ceil(duration);
}

/** SPEC 10: transcription, priced by the seconds of audio, measured from the file itself. */
export function createTranscription(calls: SurfaceCalls, deps: TranscriptionDeps) {
  return {
    /**
     * Refuse cheaply first: an account that cannot pay the 1-cent minimum is
     * refused before its upload is read, stored or decoded.
     */
    async admit(accountId: string): Promise<void> {
      if ((await deps.availableCents(accountId)) < MIN_CHARGE_CENTS) {
        throw new DomainError("insufficient_balance", INSUFFICIENT_BALANCE_MESSAGE);
      }
    },

    async transcribe(call: SurfaceCall, input: TranscriptionInput, signal: AbortSignal): Promise<Charged<UpstreamTranscription>> {
      const seconds = await measuredSeconds(input.audio);
      return calls.charged(
        call,
        "transcription",
        input.model,
        signal,
        (model) => {
          if (seconds > model.maxAudioSeconds) {
            throw new DomainError("invalid_request_error", `The audio is ${seconds} seconds long; ${model.id} takes at most ${model.maxAudioSeconds}.`, "file");
          }
          return { pricing: inputPricing(model.pricing.audioCentsPerMillionSeconds), inputUnits: seconds, outputUnits: 0 };
        },
        async (metered, provider, { pricing }) => {
          await coverInput(metered, pricing, seconds);
          const { responseFormat, params } = input;
          const transcript = await provider.transcribe(
            { model: metered.model.id, audio: { ...input.audio, seconds }, responseFormat, params, trace: call.trace },
            metered.signal,
          );
          return { result: transcript, usage: { promptTokens: seconds, completionTokens: 0 } };
        },
      );
    },
  };
}
