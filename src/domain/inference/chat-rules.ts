import { DomainError } from "../errors.js";
import type { ChatMessage, ContentPart } from "./provider.js";

// SPEC 2: the caller's system/developer text, all messages together.
export const MAX_SYSTEM_CHARACTERS = 2000;

const textOf = (content: ChatMessage["content"]): string =>
  typeof content === "string"
    ? content
    : (content ?? []).map((part) => (part.type === "text" && typeof part.text === "string" ? part.text : "")).join("");

/** Characters as a person counts them (code points), not UTF-16 units. */
const characterCount = (text: string): number => {
  let n = 0;
  for (const _ of text) n++;
  return n;
};

export function assertSystemMessagesWithinLimit(messages: ChatMessage[]): void {
  const total = messages
    .filter((m) => m.role === "system" || m.role === "developer")
    .reduce((sum, m) => sum + characterCount(textOf(m.content)), 0);
  if (total > MAX_SYSTEM_CHARACTERS) {
    throw new DomainError(
      "system_message_too_long",
      `System and developer messages may hold at most ${MAX_SYSTEM_CHARACTERS} characters in total; this request has ${total}.`,
      "messages",
    );
  }
}

/** SPEC 2: only data: URLs and Files API ids; the platform never fetches URLs for a caller. */
export function assertNoRemoteUrls(messages: ChatMessage[]): void {
  messages.forEach((message, i) => {
    if (!Array.isArray(message.content)) return;
    message.content.forEach((part: ContentPart, j) => {
      if (part.type !== "image_url") return;
      const url = (part as { image_url?: { url?: unknown } }).image_url?.url;
      if (typeof url !== "string" || !url.startsWith("data:")) {
        throw new DomainError(
          "unsupported_url_scheme",
          "Only data: URLs are accepted for images. Use data: or Files API.",
          `messages[${i}].content[${j}].image_url.url`,
        );
      }
    });
  });
}

/** The platform's safety prompt comes first and takes precedence over the caller's (SPEC 2). */
export const withSafetyPrompt = (safetyPrompt: string, messages: ChatMessage[]): ChatMessage[] => [
  { role: "system", content: safetyPrompt },
  ...messages,
];
