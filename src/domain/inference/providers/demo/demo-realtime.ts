import { randomBytes } from "node:crypto";
import type { ChatMessage } from "../../provider.js";
import { countPromptTokens, countTextTokens } from "../../tokens.js";
import { demoReply } from "./demo-reply.js";

// SPEC 10: the demo's side of a realtime session, in OpenAI's realtime
// protocol (the text parts of it): it greets with session.created, keeps the
// conversation's text items, and answers each response.create with the chat
// demo's reply, word by word, ending with a response.done that reports exact
// usage, which is what the relay bills. Audio appended to the input buffer is
// acknowledged and counted, not heard.

type Event = { type: string; [field: string]: unknown };

const eventId = () => `event_${randomBytes(9).toString("base64url")}`;
const itemId = () => `item_${randomBytes(9).toString("base64url")}`;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** The text of a conversation item's content parts (input_text, text, output_text). */
function itemText(item: Record<string, unknown>): string {
  const content = Array.isArray(item.content) ? item.content : [];
  return content
    .map((part) => (isObject(part) && typeof part.text === "string" ? part.text : ""))
    .filter(Boolean)
    .join("\n");
}

const words = (text: string): string[] => text.match(/\s*\S+|\s+/g) ?? [];

export function createDemoRealtimeConversation(model: string) {
  const sessionId = `sess_${randomBytes(9).toString("base64url")}`;
  let session: Record<string, unknown> = { id: sessionId, object: "realtime.session", model, modalities: ["text"], instructions: "" };
  const messages: ChatMessage[] = [];
  let audioBytes = 0;

  const error = (code: string, message: string, cause?: unknown): Event => ({
    type: "error",
    event_id: eventId(),
    error: { type: "invalid_request_error", code, message, ...(cause !== undefined && { event_id: cause }) },
  });

  function respond(): Event[] {
    const responseId = `resp_${randomBytes(9).toString("base64url")}`;
    const item = itemId();
    const heard = audioBytes > 0 ? { role: "user" as const, content: `(${audioBytes} bytes of audio)` } : null;
    const conversation = heard ? [...messages, heard] : [...messages];
    const text = demoReply(conversation);
    messages.push({ role: "assistant", content: text });
    const usage = { promptTokens: countPromptTokens(conversation), completionTokens: countTextTokens(text) };
    const part = { response_id: responseId, item_id: item, output_index: 0, content_index: 0 };
    const output = [{ id: item, object: "realtime.item", type: "message", role: "assistant", status: "completed", content: [{ type: "output_text", text }] }];
    return [
      { type: "response.created", event_id: eventId(), response: { id: responseId, object: "realtime.response", status: "in_progress", output: [] } },
      ...words(text).map((delta) => ({ type: "response.output_text.delta", event_id: eventId(), ...part, delta })),
      { type: "response.output_text.done", event_id: eventId(), ...part, text },
      {
        type: "response.done",
        event_id: eventId(),
        response: {
          id: responseId,
          object: "realtime.response",
          status: "completed",
          output,
          usage: {
            total_tokens: usage.promptTokens + usage.completionTokens,
            input_tokens: usage.promptTokens,
            output_tokens: usage.completionTokens,
            input_token_details: { text_tokens: usage.promptTokens, audio_tokens: 0 },
            output_token_details: { text_tokens: usage.completionTokens, audio_tokens: 0 },
          },
        },
      },
    ];
  }

  return {
    /** What the demo says as the session opens. */
    greeting: (): Event[] => [{ type: "session.created", event_id: eventId(), session }],

    /** The events answering one client event (a text frame). */
    receive(frame: string): Event[] {
      let event: unknown;
      try {
        event = JSON.parse(frame);
      } catch {
        return [error("invalid_json", "The event is not JSON.")];
      }
      if (!isObject(event) || typeof event.type !== "string") return [error("invalid_event", "An event is an object with a type.")];
      const cause = event.event_id;
      switch (event.type) {
        case "session.update":
          session = { ...session, ...(isObject(event.session) ? event.session : {}), id: sessionId };
          return [{ type: "session.updated", event_id: eventId(), session }];
        case "conversation.item.create": {
          const item = isObject(event.item) ? event.item : {};
          const role = item.role === "system" || item.role === "assistant" ? item.role : "user";
          messages.push({ role, content: itemText(item) });
          return [{ type: "conversation.item.created", event_id: eventId(), item: { ...item, id: typeof item.id === "string" ? item.id : itemId() } }];
        }
        case "input_audio_buffer.append":
          audioBytes += typeof event.audio === "string" ? Buffer.byteLength(event.audio, "base64") : 0;
          return [];
        case "input_audio_buffer.commit":
          return [{ type: "input_audio_buffer.committed", event_id: eventId(), item_id: itemId() }];
        case "input_audio_buffer.clear":
          audioBytes = 0;
          return [{ type: "input_audio_buffer.cleared", event_id: eventId() }];
        case "response.create":
          return respond();
        default:
          return [error("unknown_event", `The demo model does not handle ${event.type.slice(0, 64)} events.`, cause)];
      }
    },
  };
}
