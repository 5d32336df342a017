import { z } from "zod";
import { between, identity, modelName, positiveInt } from "./chat-schema.js";

// The requests of the surfaces beside chat (SPEC 10), with OpenAI's ranges
// (and, for rerank, the shape Cohere and Jina share). Unknown fields are
// dropped; the listed pass-through ones reach the upstream.

/** OpenAI's limits: inputs per embeddings request, and images per generation. */
export const MAX_EMBEDDING_INPUTS = 2048;
export const MAX_IMAGES = 10;
export const MAX_IMAGE_PROMPT_CHARACTERS = 32_000;
export const MAX_SPEECH_CHARACTERS = 4096;
export const MAX_RERANK_DOCUMENTS = 1000;

const nonEmptyText = (field: string) => z.string({ error: `${field} must be a string.` }).min(1, { error: `${field} must not be empty.` });

const tokenArray = z.array(z.number().int().nonnegative(), { error: "input must be a string, an array of strings, or token arrays." }).min(1, {
  error: "input must not contain an empty token array.",
});

/** Every form of `input` OpenAI takes, as a list: texts, or token arrays. */
const embeddingsInput = z
  .union([nonEmptyText("input"), z.array(nonEmptyText("input[]")), tokenArray, z.array(tokenArray)], {
    error: "input must be a string, an array of strings, or token arrays.",
  })
  .transform((input): string[] | number[][] =>
    typeof input === "string" ? [input] : typeof input[0] === "number" ? [input as number[]] : (input as string[] | number[][]),
  )
  .refine((input) => input.length >= 1 && input.length <= MAX_EMBEDDING_INPUTS, {
    error: `input must have between 1 and ${MAX_EMBEDDING_INPUTS} entries.`,
  });

export const embeddingsRequest = z.object({
  model: modelName,
  input: embeddingsInput,
  encoding_format: z.enum(["float", "base64"], { error: "encoding_format must be float or base64." }).default("float"),
  dimensions: positiveInt("dimensions").optional(),
  ...identity,
});

export const imagesRequest = z.object({
  model: modelName,
  prompt: nonEmptyText("prompt").max(MAX_IMAGE_PROMPT_CHARACTERS, { error: `prompt must be at most ${MAX_IMAGE_PROMPT_CHARACTERS} characters.` }),
  n: positiveInt("n").max(MAX_IMAGES, { error: `n must be between 1 and ${MAX_IMAGES}.` }).nullish(),
  size: z.string({ error: "size must be a string such as 1024x1024." }).max(32).nullish(),
  response_format: z.enum(["b64_json", "url"], { error: "response_format must be b64_json or url." }).nullish(),
  // Passed through unchanged to the upstream.
  quality: z.string().max(32).optional(),
  style: z.string().max(32).optional(),
  background: z.string().max(32).optional(),
  output_format: z.string().max(32).optional(),
  ...identity,
});

export const speechRequest = z.object({
  model: modelName,
  input: nonEmptyText("input").refine((text) => Array.from(text).length <= MAX_SPEECH_CHARACTERS, {
    error: `input must be at most ${MAX_SPEECH_CHARACTERS} characters.`,
  }),
  voice: nonEmptyText("voice").max(64),
  response_format: z.enum(["mp3", "opus", "aac", "flac", "wav", "pcm"], { error: "response_format must be one of mp3, opus, aac, flac, wav, pcm." }).default("mp3"),
  // Passed through unchanged to the upstream.
  speed: between("speed", 0.25, 4).optional(),
  instructions: z.string().max(4096).optional(),
  ...identity,
});

/** The multipart fields of a transcription, besides the file. */
export const transcriptionFields = z.object({
  model: modelName,
  response_format: z.enum(["json", "text", "srt", "verbose_json", "vtt"], { error: "response_format must be one of json, text, srt, verbose_json, vtt." }).default("json"),
  // Passed through unchanged to the upstream.
  language: z.string().max(16).optional(),
  prompt: z.string().max(4096).optional(),
  temperature: z.coerce.number().min(0).max(1).optional(),
  ...identity,
});

const rerankDocument = z.union([z.string(), z.object({ text: z.string() }).transform((document) => document.text)], {
  error: "each document must be a string or an object with text.",
});

export const rerankRequest = z
  .object({
    model: modelName,
    query: nonEmptyText("query"),
    documents: z
      .array(rerankDocument, { error: "documents must be an array." })
      .min(1, { error: "documents must not be empty." })
      .max(MAX_RERANK_DOCUMENTS, { error: `documents may have at most ${MAX_RERANK_DOCUMENTS} entries.` }),
    top_n: positiveInt("top_n").optional(),
    return_documents: z.boolean({ error: "return_documents must be a boolean." }).default(false),
    ...identity,
  });
