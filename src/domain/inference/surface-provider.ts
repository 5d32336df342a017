import type { CallTrace } from "../call-trace.js";
import type { ReportedUsage } from "./provider.js";

// The provider port of the surfaces beside chat (SPEC 10): embeddings, images,
// transcription, speech and rerank. Requests carry what the surface decided
// (the upstream's model name is each upstream's own); answers keep the
// upstream's wire shapes where the client receives them unchanged.

interface SurfaceRequest {
  /** The public model id, for logs. */
  model: string;
  /** Parameters passed through unchanged (user, quality, language, …). */
  params: Record<string, unknown>;
  /** The request's access log record: the failover notes which upstream answered. */
  trace?: CallTrace;
}

export interface EmbeddingsRequest extends SurfaceRequest {
  /** Texts, or token arrays. */
  input: string[] | number[][];
  encodingFormat: "float" | "base64";
  dimensions?: number;
}

/** One embedding as OpenAI sends it: numbers, or little-endian float32 in base64. */
export interface Embedding {
  index: number;
  embedding: number[] | string;
}

export interface UpstreamEmbeddings {
  data: Embedding[];
  usage?: ReportedUsage;
}

export interface ImagesRequest extends SurfaceRequest {
  prompt: string;
  n: number;
  size: string;
  responseFormat?: "b64_json" | "url";
}

export interface GeneratedImage {
  b64_json?: string;
  url?: string;
  revised_prompt?: string;
}

export interface UpstreamImages {
  data: GeneratedImage[];
}

/** An uploaded audio file, on disk (uploads are streamed there, never held in memory). */
export interface AudioFile {
  path: string;
  filename: string;
  contentType: string;
  bytes: number;
  seconds: number;
}

export interface TranscriptionRequest extends SurfaceRequest {
  audio: AudioFile;
  responseFormat: "json" | "text" | "srt" | "verbose_json" | "vtt";
}

/** The transcript as the upstream formatted it: JSON for json and verbose_json, text otherwise. */
export interface UpstreamTranscription {
  contentType: string;
  body: string;
}

export interface SpeechRequest extends SurfaceRequest {
  input: string;
  voice: string;
  responseFormat: string;
}

/** Audio as it arrives: resolved once the upstream has accepted the request. */
export interface UpstreamSpeech {
  contentType: string;
  body: AsyncIterable<Uint8Array>;
}

export interface RerankRequest extends SurfaceRequest {
  query: string;
  documents: string[];
  /** How many results to return, the best first; at most the number of documents. */
  topN: number;
}

export interface RerankResult {
  index: number;
  relevance_score: number;
}

export interface UpstreamRerank {
  results: RerankResult[];
  /** Tokens read, as the upstream reported them (as `promptTokens`). */
  usage?: ReportedUsage;
}

export interface SurfaceProvider {
  readonly name?: string;
  embeddings(request: EmbeddingsRequest, signal: AbortSignal): Promise<UpstreamEmbeddings>;
  images(request: ImagesRequest, signal: AbortSignal): Promise<UpstreamImages>;
  transcribe(request: TranscriptionRequest, signal: AbortSignal): Promise<UpstreamTranscription>;
  speech(request: SpeechRequest, signal: AbortSignal): Promise<UpstreamSpeech>;
  rerank(request: RerankRequest, signal: AbortSignal): Promise<UpstreamRerank>;
}
