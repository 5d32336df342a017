import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { ChatMessage } from "../../provider.js";
import { countPromptTokens, countTextTokens } from "../../tokens.js";
import { words } from "./demo-provider.js";
import { demoReply } from "./demo-reply.js";

// SPEC 10: the demo's side of a realtime session, in the text part of OpenAI's
// GA realtime protocol (the `RealtimeServerEvent…` schemas and the openai SDK's
// `resources/realtime` types, not the Beta ones): it greets with
// session.created, keeps the conversation's message items (conversation.item.added
// then .done, each naming the item before it), and answers each response.create
// with the chat demo's reply in the order a GA client tracks a response by:
// the output item and its text part are added, the text streams word by word,
// then part, item and response are done, the response.done reporting exact
// usage, which is what the relay bills. Audio appended to the input buffer is
// counted, not heard: a commit turns it into a user item the reply mentions.

type Event = { type: string; event_id: string; [field: string]: unknown };
type Item = { id: string; object: "realtime.item"; type: "message"; role: string; status: string; content: unknown[] };

const id = (prefix: string) => `${prefix}_${randomBytes(9).toString("base64url")}`;

// The client events the demo reads, parsed at this boundary; unknown fields are dropped.
const clientEvent = z.object({ type: z.string(), event_id: z.string().optional() });

const messagePart = <T extends readonly [string, ...string[]]>(types: T) => z.object({ type: z.enum(types), text: z.string().optional() });
const message = { id: z.string().min(1).max(64).optional(), type: z.literal("message") };
// The content part types OpenAI's RealtimeConversationItemMessage{System,User,Assistant} allow each role.
const messageItem = z.discriminatedUnion("role", [
  z.object({ ...message, role: z.literal("system"), content: z.array(messagePart(["input_text"])) }),
  z.object({ ...message, role: z.literal("user"), content: z.array(messagePart(["input_text", "input_audio", "input_image"])) }),
  z.object({ ...message, role: z.literal("assistant"), content: z.array(messagePart(["output_text", "output_audio"])) }),
]);
const itemCreate = z.object({ item: messageItem });

// A demo session is a realtime one (no transcription sessions); Beta clients send no `type`.
const sessionUpdate = z.object({ session: z.object({ type: z.literal("realtime").optional(), instructions: z.string().optional() }) });

const appendAudio = z.object({ audio: z.string() });

/** Where a client event was wrong, as OpenAI's error `param` names it: `item.content.0.type`. */
const paramOf = (error: z.ZodError) => error.issues[0]?.path.join(".") || null;

export function createDemoRealtimeConversation(model: string) {
  const sessionId = id("sess");
  const conversationId = id("conv");
  // The demo writes text only, whatever a client asks for.
  const session = { type: "realtime", id: sessionId, object: "realtime.session", model, output_modalities: ["text"], instructions: "" };
  const messages: ChatMessage[] = [];
  let lastItemId: string | null = null;
  let audioBytes = 0;

  const event = (type: string, fields: Record<string, unknown> = {}): Event => ({ type, event_id: id("event"), ...fields });

  const error = (code: string, message: string, cause: string | null, param: string | null = null): Event =>
    event("error", { error: { type: "invalid_request_error", code, message, param, event_id: cause } });

  /** Appends an item to the conversation: conversation.item.added, then .done as it is complete. */
  function addItem(item: Item): Event[] {
    const previous = lastItemId;
    lastItemId = item.id;
    return [event("conversation.item.added", { previous_item_id: previous, item }), event("conversation.item.done", { previous_item_id: previous, item })];
  }

  function respond(): Event[] {
    const text = demoReply(messages);
    const usage = { promptTokens: countPromptTokens(messages), completionTokens: countTextTokens(text) };
    messages.push({ role: "assistant", content: text });

    const responseId = id("resp");
    const itemId = id("item");
    const previous = lastItemId;
    lastItemId = itemId;
    const item = (status: string, content: unknown[]): Item => ({ id: itemId, object: "realtime.item", type: "message", role: "assistant", status, content });
    const response = (status: string, output: Item[]) => ({
      id: responseId,
      object: "realtime.response",
      status,
      conversation_id: conversationId,
      output_modalities: ["text"],
      max_output_tokens: "inf",
      output,
    });
    const at = { response_id: responseId, output_index: 0 };
    const part = { ...at, item_id: itemId, content_index: 0 };
    const done = item("completed", [{ type: "output_text", text }]);
    return [
      event("response.created", { response: response("in_progress", []) }),
      event("response.output_item.added", { ...at, item: item("in_progress", []) }),
      event("conversation.item.added", { previous_item_id: previous, item: item("in_progress", []) }),
      event("response.content_part.added", { ...part, part: { type: "text", text: "" } }),
      ...words(text).map((delta) => event("response.output_text.delta", { ...part, delta })),
      event("response.output_text.done", { ...part, text }),
      event("response.content_part.done", { ...part, part: { type: "text", text } }),
      event("response.output_item.done", { ...at, item: done }),
      event("conversation.item.done", { previous_item_id: previous, item: done }),
      event("response.done", {
        response: {
          ...response("completed", [done]),
          usage: {
            total_tokens: usage.promptTokens + usage.completionTokens,
            input_tokens: usage.promptTokens,
            output_tokens: usage.completionTokens,
            input_token_details: { text_tokens: usage.promptTokens, audio_tokens: 0, cached_tokens: 0 },
            output_token_details: { text_tokens: usage.completionTokens, audio_tokens: 0 },
          },
        },
      }),
    ];
  }

  function receive(type: string, body: unknown, cause: string | null): Event[] {
    switch (type) {
      case "session.update": {
        const update = sessionUpdate.safeParse(body);
        if (!update.success) return [error("invalid_value", "The demo model keeps a realtime session's instructions, a string.", cause, paramOf(update.error))];
        if (update.data.session.instructions !== undefined) session.instructions = update.data.session.instructions;
        return [event("session.updated", { session })];
      }
      case "conversation.item.create": {
        const create = itemCreate.safeParse(body);
        if (!create.success) return [error("invalid_value", "The demo model takes message items with its role's content parts.", cause, paramOf(create.error))];
        const { id: given, role, content } = create.data.item;
        messages.push({ role, content: content.flatMap((p) => (p.text ? [p.text] : [])).join("\n") });
        return addItem({ id: given ?? id("item"), object: "realtime.item", type: "message", role, status: "completed", content });
      }
      case "input_audio_buffer.append": {
        const append = appendAudio.safeParse(body);
        if (!append.success) return [error("invalid_value", "input_audio_buffer.append carries base64 audio.", cause, paramOf(append.error))];
        audioBytes += Buffer.byteLength(append.data.audio, "base64");
        return [];
      }
      case "input_audio_buffer.commit": {
        if (audioBytes === 0) return [error("input_audio_buffer_commit_empty", "The input audio buffer is empty.", cause)];
        messages.push({ role: "user", content: `(${audioBytes} bytes of audio)` });
        audioBytes = 0;
        const item: Item = { id: id("item"), object: "realtime.item", type: "message", role: "user", status: "completed", content: [{ type: "input_audio" }] };
        return [event("input_audio_buffer.committed", { previous_item_id: lastItemId, item_id: item.id }), ...addItem(item)];
      }
      case "input_audio_buffer.clear":
        audioBytes = 0;
        return [event("input_audio_buffer.cleared")];
      case "response.create":
        return respond();
      default:
        return [error("unknown_event", `The demo model does not handle ${type.slice(0, 64)} events.`, cause)];
    }
  }

  return {
    /** What the demo says as the session opens. */
    greeting: (): Event[] => [event("session.created", { session })],

    /** The events answering one client event (a text frame). */
    receive(frame: string): Event[] {
      let body: unknown;
      try {
        body = JSON.parse(frame);
      } catch {
        return [error("invalid_json", "The event is not JSON.", null)];
      }
      const parsed = clientEvent.safeParse(body);
      if (!parsed.success) return [error("invalid_event", "An event is an object with a type.", null, paramOf(parsed.error))];
      return receive(parsed.data.type, body, parsed.data.event_id ?? null);
    },
  };
}
