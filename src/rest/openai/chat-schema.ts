import { z } from "zod";
import { checkContentPartLimits, messageContent } from "../../domain/inference/content-parts.js";
import { passThrough } from "./pass-through.js";

// The OpenAI Chat Completions request, with OpenAI's ranges (SPEC 2). Unknown
// fields are dropped, not rejected; the listed pass-through ones reach the upstream.

export const between = (name: string, min: number, max: number) =>
  z
    .number({ error: `${name} must be a number.` })
    .min(min, { error: `${name} must be between ${min} and ${max}.` })
    .max(max, { error: `${name} must be between ${min} and ${max}.` });

export const positiveInt = (name: string) =>
  z.number({ error: `${name} must be an integer.` }).int({ error: `${name} must be an integer.` }).min(1, {
    error: `${name} must be at least 1.`,
  });

/** Messages in one request, as many as OpenAI's API takes. */
export const MAX_MESSAGES_PER_REQUEST = 2048;
/** model, and a message's name and tool_call_id. */
export const MAX_IDENTIFIER_LENGTH = 256;

const identifier = (field: string) =>
  z
    .string({ error: `${field} must be a string.` })
    .max(MAX_IDENTIFIER_LENGTH, { error: `${field} must be at most ${MAX_IDENTIFIER_LENGTH} characters.` });

const name = identifier("name").optional();

// OpenAI's message of each role, with the content parts that role may send.
const message = z.discriminatedUnion(
  "role",
  [
    z.object({ role: z.literal("system"), content: messageContent("system"), name }),
    z.object({ role: z.literal("developer"), content: messageContent("developer"), name }),
    z.object({ role: z.literal("user"), content: messageContent("user"), name }),
    z
      .object({
        role: z.literal("assistant"),
        content: messageContent("assistant").nullable().optional(),
        name,
        tool_calls: z.array(z.unknown()).optional(),
      })
      .refine((m) => m.content != null || m.tool_calls?.length, {
        error: "content is required for this message.",
        path: ["content"],
      }),
    z.object({ role: z.literal("tool"), content: messageContent("tool"), tool_call_id: identifier("tool_call_id").optional() }),
  ],
  { error: "role must be one of system, developer, user, assistant, tool." },
);

/** Bounded and NUL-free: the name is kept in the request log (PostgreSQL text cannot hold NUL). */
export const modelName = z
  .string({ error: "model is required." })
  .min(1, { error: "model is required." })
  .max(MAX_IDENTIFIER_LENGTH, { error: `model must be at most ${MAX_IDENTIFIER_LENGTH} characters.` })
  .refine((name) => !name.includes("\u0000"), { error: "model must not contain NUL characters." });

/** The body's end-user fields, on every surface; the identity headers win over them (SPEC 3). */
export const identity = {
  user: z.string({ error: "user must be a string." }).optional(),
  user_name: z.string({ error: "user_name must be a string." }).optional(),
};

export const chatCompletionRequest = z.object({
  model: modelName,
  // Counted, messages and parts, before any message is parsed.
  messages: z
    .array(z.unknown(), { error: "messages must be an array." })
    .min(1, { error: "messages must not be empty." })
    .max(MAX_MESSAGES_PER_REQUEST, { error: `messages may have at most ${MAX_MESSAGES_PER_REQUEST} entries.` })
    .superRefine(checkContentPartLimits)
    .pipe(z.array(message)),
  stream: z.boolean({ error: "stream must be a boolean." }).nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: positiveInt("max_tokens").nullish(),
  max_completion_tokens: positiveInt("max_completion_tokens").nullish(),
  n: z.literal(1, { error: "Only n = 1 is supported." }).nullish(),
  temperature: between("temperature", 0, 2).nullish(),
  top_p: between("top_p", 0, 1).nullish(),
  presence_penalty: between("presence_penalty", -2, 2).nullish(),
  frequency_penalty: between("frequency_penalty", -2, 2).nullish(),
  ...identity,
  // Passed through unchanged to the upstream.
  tools: z.array(z.unknown(), { error: "tools must be an array." }).optional(),
  tool_choice: z.unknown().optional(),
  parallel_tool_calls: z.boolean().optional(),
  response_format: z.unknown().optional(),
  stop: z
    .union([z.string(), z.array(z.string()).max(4, { error: "stop may have at most 4 strings." })], {
      error: "stop must be a string or up to 4 strings.",
    })
    .nullish(),
  seed: z.number().int({ error: "seed must be an integer." }).nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
});

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequest>;

const PASS_THROUGH = [
  "temperature",
  "top_p",
  "presence_penalty",
  "frequency_penalty",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "response_format",
  "stop",
  "seed",
  "logit_bias",
  "logprobs",
  "top_logprobs",
] as const;

export const passThroughParams = (request: ChatCompletionRequest): Record<string, unknown> => passThrough(request, PASS_THROUGH);
