// SPEC 5: token counts are exact — the upstream's reported usage when it has
// one, else this count of what was sent and generated. o200k_base is the
// encoding of OpenAI's current chat models (gpt-4o and later); importing its
// own entry point loads that one encoding's ranks, not every encoding's.
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import type { ChatMessage } from "./provider.js";

// Callers' text is data, not control: "<|endoftext|>" typed by a user is
// counted as the ordinary characters it is (as OpenAI's API does), instead of
// making the encoder throw on a "disallowed special token".
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

// OpenAI's chat format, per the cookbook ("How to count tokens with tiktoken",
// section 6, gpt-4o): each message is wrapped as <|start|>{role}<|message|>{content}<|end|>
// — 3 tokens around the role and content — a `name` costs 1 more than its own
// tokens, and every reply is primed with <|start|>assistant<|message|> (3).
export const TOKENS_PER_MESSAGE = 3;
export const TOKENS_PER_NAME = 1;
export const REPLY_PRIMING_TOKENS = 3;

// An image's real cost depends on its size and `detail` (gpt-4o: 85 base + 170
// per 512 px tile at high detail). Decoding every image on the request path to
// count tiles is not worth it: upstreams that accept images report their own
// usage, which wins (SPEC 5). So each non-text part (image, file reference,
// audio, …) counts as OpenAI's flat low-detail image cost.
export const NON_TEXT_PART_TOKENS = 85;

export function countTextTokens(text: string): number {
  return text === "" ? 0 : countTokens(text, PLAIN_TEXT);
}

type TextMeasure = (text: string) => number;

function contentTokens(content: ChatMessage["content"], measure: TextMeasure): number {
  if (content == null) return 0;
  if (typeof content === "string") return measure(content);
  let tokens = 0;
  for (const part of content) {
    tokens += part.type === "text" && typeof part.text === "string" ? measure(part.text) : NON_TEXT_PART_TOKENS;
  }
  return tokens;
}

/** What an assistant's tool calls put back into the conversation: each function's name and arguments. */
function toolCallTokens(toolCalls: unknown[] | undefined, measure: TextMeasure): number {
  let tokens = 0;
  for (const call of toolCalls ?? []) {
    const fn = (call as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
    if (typeof fn?.name === "string") tokens += measure(fn.name);
    if (typeof fn?.arguments === "string") tokens += measure(fn.arguments);
  }
  return tokens;
}

function promptTokens(messages: readonly ChatMessage[], measure: TextMeasure): number {
  let tokens = REPLY_PRIMING_TOKENS;
  for (const message of messages) {
    tokens += TOKENS_PER_MESSAGE + measure(message.role) + contentTokens(message.content, measure);
    if (message.name) tokens += TOKENS_PER_NAME + measure(message.name);
    tokens += toolCallTokens(message.tool_calls, measure);
  }
  return tokens;
}

/**
 * The prompt tokens of a chat request, as OpenAI bills them for its gpt-4o
 * family. Tool definitions (`tools`) are not messages and are not counted here.
 */
export const countPromptTokens = (messages: readonly ChatMessage[]): number => promptTokens(messages, countTextTokens);

/**
 * An upper bound of countPromptTokens without tokenizing: a byte-level BPE
 * token is at least one UTF-8 byte. Linear and cheap, so it can size a hold
 * before anything is tokenized (parts that are not text count as in the exact
 * count; a document's text is only known once its file is resolved).
 */
export const promptTokensUpperBound = (messages: readonly ChatMessage[]): number =>
  promptTokens(messages, (text) => Buffer.byteLength(text, "utf8"));

/** The completion tokens of generated text plus the arguments of any tool calls the model made. */
export function countCompletionTokens(text: string, toolCallArgs: readonly string[] = []): number {
  let tokens = countTextTokens(text);
  for (const args of toolCallArgs) tokens += countTextTokens(args);
  return tokens;
}

/**
 * The longest prefix of `text`, cut between code points, that counts at most
 * `maxTokens` tokens. Decoding a prefix of the token ids instead would split
 * multi-byte characters into replacement characters.
 */
export function truncateToTokens(text: string, maxTokens: number): string {
  if (countTextTokens(text) <= maxTokens) return text;
  const codePoints = Array.from(text);
  // Binary search on the prefix length: `fits` always holds for `fits`, never for `tooLong`.
  let fits = 0;
  let tooLong = codePoints.length;
  while (tooLong - fits > 1) {
    const middle = (fits + tooLong) >>> 1;
    if (countTextTokens(codePoints.slice(0, middle).join("")) <= maxTokens) fits = middle;
    else tooLong = middle;
  }
  return codePoints.slice(0, fits).join("");
}
