import type { CallTrace } from "../call-trace.js";

// The provider port: how the domain talks to an upstream model. Messages and
// choices keep OpenAI's wire shape, since every supported upstream speaks it.

export type ChatRole = "system" | "developer" | "user" | "assistant" | "tool";

export type ContentPart =
  | { type: "text"; text: string }
  | { type: "image_url"; image_url: { url: string; detail?: string } }
  | { type: string; [key: string]: unknown };

export interface ChatMessage {
  role: ChatRole;
  content: string | ContentPart[] | null;
  name?: string;
  tool_calls?: unknown[];
  tool_call_id?: string;
}

export interface UpstreamChatRequest {
  /** The public model id, for logs; each upstream sends its own configured model name. */
  model: string;
  messages: ChatMessage[];
  /** Already reduced to what the account's balance covers. */
  maxTokens: number;
  /** Sampling and tool parameters passed through unchanged (temperature, tools, stop, …). */
  params: Record<string, unknown>;
  /** The request's access log record: the failover notes which upstream answered, after how many attempts. */
  trace?: CallTrace;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/**
 * Usage as an upstream reported it: untrusted (SPEC 5). Each field is any
 * number it sent (negative, fractional, astronomically large), or absent.
 */
export interface ReportedUsage {
  promptTokens?: number;
  completionTokens?: number;
}

/** An OpenAI chat.completion choice, as the upstream sent it. */
export interface CompletionChoice {
  index: number;
  message: { role: "assistant"; content: string | null; tool_calls?: unknown[]; [key: string]: unknown };
  finish_reason: string | null;
  [key: string]: unknown;
}

/** An OpenAI chat.completion.chunk choice, as the upstream sent it. */
export interface ChunkChoice {
  index: number;
  delta: { role?: string; content?: string | null; tool_calls?: unknown[]; [key: string]: unknown };
  finish_reason: string | null;
  [key: string]: unknown;
}

export interface UpstreamCompletion {
  choices: CompletionChoice[];
  /** Absent when the upstream does not report usage; the domain then counts tokens itself. */
  usage?: ReportedUsage;
}

export interface UpstreamChunk {
  choices: ChunkChoice[];
  usage?: ReportedUsage;
}

export interface ChatProvider {
  /** The upstream it calls, as logs and metric labels name it (a host, never a URL or a key). */
  readonly name?: string;
  /** Resolves with the whole completion. */
  complete(request: UpstreamChatRequest, signal: AbortSignal): Promise<UpstreamCompletion>;
  /**
   * Resolves once the upstream has accepted the request and its first bytes have
   * arrived, so everything before that may be retried; the iterator then yields
   * chunks until the upstream ends. Aborting the signal stops the upstream.
   */
  stream(request: UpstreamChatRequest, signal: AbortSignal): Promise<AsyncIterable<UpstreamChunk>>;
}

/** Raised by providers; `beforeOutput` tells whether retrying or failing over is still safe. */
export class UpstreamError extends Error {
  override readonly name = "UpstreamError";
  constructor(
    message: string,
    readonly kind: "unavailable" | "bad_response",
    readonly beforeOutput: boolean,
    readonly status?: number,
  ) {
    super(message);
  }
}
