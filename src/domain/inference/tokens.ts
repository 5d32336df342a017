// SPEC 5: token counts are exact — the upstream's reported usage when it has
// one, else this count of what was sent and generated. o200k_base is the
// encoding of OpenAI's current chat models (gpt-4o and later); importing its
// own entry point loads that one encoding's ranks, not every encoding's.
import { setImmediate as nextTurn } from "node:timers/promises";
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

// Byte-pair encoding is quadratic in the length of one pre-token (gpt-tokenizer
// rescans every pair of a piece after each merge), and a run without spaces (a
// repeated letter, base64, CJK prose) is one pre-token however long: 50 KB of
// one letter took seconds, 200 KB most of a minute. So text is encoded in
// pieces of at most this many characters, which makes counting linear in the
// text's length (about 1 µs a character at worst, for random letters).
export const MAX_PIECE_CHARACTERS = 256;

const SPACE = 0x20;
const WHITESPACE = /\s/; // the pre-tokenizer's \s
const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

/**
 * Where the piece starting at `start` ends. Preferably just before a space
 * that follows a non-space: o200k's pre-tokenizer always cuts there too (no
 * pre-token continues from a non-space into a space), so such cuts leave the
 * count exactly as one pass over the whole text gives it. A stretch of
 * MAX_PIECE_CHARACTERS without such a space is cut at that length (between
 * code points): each of those cuts splits one pre-token in two, so the count
 * may differ from one exact pass by the merges lost across the cut (at most
 * one token per cut in the tests), and only in text that long without a space.
 */
function pieceEnd(text: string, start: number): number {
  const limit = start + MAX_PIECE_CHARACTERS;
  if (limit >= text.length) return text.length;
  for (let cut = limit; cut > start; cut--) {
    if (text.charCodeAt(cut) === SPACE && !WHITESPACE.test(text[cut - 1]!)) return cut;
  }
  return isHighSurrogate(text.charCodeAt(limit - 1)) ? limit - 1 : limit;
}

/** The pieces `text` is encoded in (see pieceEnd). */
function* textPieces(text: string): Generator<string> {
  for (let start = 0; start < text.length; ) {
    const end = pieceEnd(text, start);
    yield text.slice(start, end);
    start = end;
  }
}

/** The tokens of `text`, linear in its length (see MAX_PIECE_CHARACTERS). */
export function countTextTokens(text: string): number {
  let tokens = 0;
  for (const piece of textPieces(text)) tokens += countTokens(piece, PLAIN_TEXT);
  return tokens;
}

/** What a prompt consists of for counting: fixed framing tokens, and the texts to measure. */
interface PromptTexts {
  framingTokens: number;
  texts: string[];
}

/**
 * OpenAI's chat accounting, as texts to measure: per message the role, the
 * text parts (other parts cost a flat NON_TEXT_PART_TOKENS), the name, and
 * what an assistant's tool calls put back into the conversation (each
 * function's name and arguments).
 */
function promptTexts(messages: readonly ChatMessage[]): PromptTexts {
  let framingTokens = REPLY_PRIMING_TOKENS;
  const texts: string[] = [];
  for (const message of messages) {
    framingTokens += TOKENS_PER_MESSAGE;
    texts.push(message.role);
    const { content } = message;
    if (typeof content === "string") texts.push(content);
    for (const part of Array.isArray(content) ? content : []) {
      if (part.type === "text" && typeof part.text === "string") texts.push(part.text);
      else framingTokens += NON_TEXT_PART_TOKENS;
    }
    if (message.name) {
      framingTokens += TOKENS_PER_NAME;
      texts.push(message.name);
    }
    for (const call of message.tool_calls ?? []) {
      const fn = (call as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
      if (typeof fn?.name === "string") texts.push(fn.name);
      if (typeof fn?.arguments === "string") texts.push(fn.arguments);
    }
  }
  return { framingTokens, texts };
}

/**
 * The prompt tokens of a chat request, as OpenAI bills them for its gpt-4o
 * family. Tool definitions (`tools`) are not messages and are not counted here.
 * Synchronous: for prompts of any size on the request path, use countPromptTokensInSlices.
 */
export function countPromptTokens(messages: readonly ChatMessage[]): number {
  const { framingTokens, texts } = promptTexts(messages);
  return texts.reduce((tokens, text) => tokens + countTextTokens(text), framingTokens);
}

/** How long counting runs before other requests get their turn on the event loop. */
export const COUNTING_SLICE_MS = 10;

/**
 * countPromptTokens without holding the event loop: it counts piece by piece
 * and yields (setImmediate) every COUNTING_SLICE_MS, so a prompt of megabytes
 * delays other requests by one slice at a time, not by its whole count. It
 * stops as soon as the count passes `atMost` (a prompt beyond the context
 * window is refused whatever its exact size) and returns that partial count.
 */
export async function countPromptTokensInSlices(messages: readonly ChatMessage[], { atMost = Infinity } = {}): Promise<number> {
  const { framingTokens, texts } = promptTexts(messages);
  return framingTokens + (await countTextsTokensInSlices(texts, { atMost: atMost - framingTokens }));
}

/** The tokens of several texts (embedding inputs, rerank documents), counted as countPromptTokensInSlices counts. */
export async function countTextsTokensInSlices(texts: readonly string[], { atMost = Infinity } = {}): Promise<number> {
  let tokens = 0;
  let sliceStarted = performance.now();
  for (const text of texts) {
    for (const piece of textPieces(text)) {
      tokens += countTokens(piece, PLAIN_TEXT);
      if (tokens > atMost) return tokens;
      if (performance.now() - sliceStarted >= COUNTING_SLICE_MS) {
        await nextTurn();
        sliceStarted = performance.now();
      }
    }
  }
  return tokens;
}

/**
 * An upper bound of countPromptTokens without tokenizing: a byte-level BPE
 * token is at least one UTF-8 byte. Linear and cheap, so it can size a hold
 * before anything is tokenized (parts that are not text count as in the exact
 * count; a document's text is only known once its file is resolved).
 */
export function promptTokensUpperBound(messages: readonly ChatMessage[]): number {
  const { framingTokens, texts } = promptTexts(messages);
  return texts.reduce((tokens, text) => tokens + Buffer.byteLength(text, "utf8"), framingTokens);
}

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
