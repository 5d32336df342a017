import { documentTextOf } from "../../attachments.js";
import { characterCount } from "../../chat-rules.js";
import type { ChatMessage, ContentPart } from "../../provider.js";

// SPEC 9: the demo answers deterministically and says what it received, so a
// fresh install proves the whole path (auth, metering, billing, streaming)
// without a model, and an integrator can see what their request turned into.

/** How much of the caller's last message the reply quotes, in characters. */
export const QUOTE_MAX_CHARACTERS = 200;

export interface ReceivedSummary {
  messages: number;
  images: number;
  videos: number;
  /** Document extractions (text parts besides the user's own text) and file references. */
  documents: number;
  /** Characters of text in those documents. */
  documentCharacters: number;
  /** The last user message's own text, if there is one. */
  lastUserText: string | undefined;
}

const isTextPart = (part: ContentPart): part is { type: "text"; text: string } =>
  part.type === "text" && typeof part.text === "string";

const isFileReference = (part: ContentPart) => part.type === "input_file" || part.type === "file";

export function summarizeReceived(messages: readonly ChatMessage[]): ReceivedSummary {
  const summary: ReceivedSummary = {
    messages: messages.length,
    images: 0,
    videos: 0,
    documents: 0,
    documentCharacters: 0,
    lastUserText: undefined,
  };
  const lastUser = messages.findLast((m) => m.role === "user");
  for (const message of messages) {
    // Attachments arrive on user messages; system and assistant text is conversation, not a document.
    if (message.role !== "user") continue;
    const content = message.content;
    if (typeof content === "string" || content == null) {
      if (message === lastUser) summary.lastUserText = content ?? undefined;
      continue;
    }
    // The first text part of a message is what the person wrote; any further
    // text parts are extracted documents placed next to it.
    let ownTextSeen = false;
    for (const part of content) {
      if (part.type === "image_url") summary.images++;
      else if (part.type === "video_url") summary.videos++;
      else if (isFileReference(part)) summary.documents++;
      else if (isTextPart(part)) {
        const extracted = documentTextOf(part);
        if (!ownTextSeen && extracted === null) {
          ownTextSeen = true;
          if (message === lastUser) summary.lastUserText = part.text;
        } else {
          summary.documents++;
          summary.documentCharacters += characterCount(extracted ?? part.text);
        }
      }
    }
  }
  return summary;
}

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;

/** One line, at most QUOTE_MAX_CHARACTERS characters, so a long paste does not become a long reply. */
function quote(text: string): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  const codePoints = Array.from(oneLine);
  return codePoints.length <= QUOTE_MAX_CHARACTERS
    ? oneLine
    : `${codePoints.slice(0, QUOTE_MAX_CHARACTERS).join("").trimEnd()}…`;
}

export function demoReply(messages: readonly ChatMessage[]): string {
  const s = summarizeReceived(messages);
  const documents =
    s.documentCharacters > 0
      ? `${plural(s.documents, "document")} with ${plural(s.documentCharacters, "character")} of text`
      : plural(s.documents, "document");
  const videos = s.videos > 0 ? `, ${plural(s.videos, "video")}` : "";
  const received = `I received ${plural(s.messages, "message")} (${plural(s.images, "image")}${videos}, ${documents}).`;
  const said = s.lastUserText?.trim() ? `You said: "${quote(s.lastUserText)}"` : "There was no user text to answer.";
  return `Demo reply from SentX (no model connected). ${received} ${said}`;
}
