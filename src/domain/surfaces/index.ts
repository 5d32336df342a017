import { createEmbeddings } from "./embeddings.js";
import { createImages } from "./images.js";
import { createRerank } from "./rerank.js";
import { createSpeech } from "./speech.js";
import { createSurfaceCalls, type SurfaceDeps } from "./surface-call.js";
import { createTranscription, type TranscriptionDeps } from "./transcription.js";

/** The surfaces beside chat (SPEC 10), each an adapter on the one metered call. */
export function createSurfaces(deps: SurfaceDeps & TranscriptionDeps) {
  const calls = createSurfaceCalls(deps);
  return {
    embeddings: createEmbeddings(calls),
    images: createImages(calls),
    transcription: createTranscription(calls, deps),
    speech: createSpeech(calls),
    rerank: createRerank(calls),
  };
}

export type Surfaces = ReturnType<typeof createSurfaces>;
