import { DomainError } from "../errors.js";
import type { ChatMessage } from "./provider.js";

// SPEC 2: the caller's system/developer text, all messages together.
export const MAX_SYSTEM_CHARACTERS = 2000;

const textOf = (content: ChatMessage["content"]): string =>
  typeof content === "string"
    ? content
    : (content ?? []).map((part) => (part.type === "text" && typeof part.text === "string" ? part.text : "")).join("");

/** Characters as a person counts them (code points), not UTF-16 units. */
export const characterCount = (text: string): number => {
  let n = 0;
  for (const _ of text) n++;
  return n;
};

export function assertSystemMessagesWithinLimit(messages: ChatMessage[]): void {
  let total = 0;
  for (const message of messages) {
    if (message.role !== "system" && message.role !== "developer") continue;
    const text = textOf(message.content);
    // A character is one or two UTF-16 units, so a text of more than twice the
    // limit in units is over it: refused without walking megabytes of it.
    total += text.length > 2 * MAX_SYSTEM_CHARACTERS ? text.length / 2 : characterCount(text);
    if (total > MAX_SYSTEM_CHARACTERS) {
      throw new DomainError(
        "system_message_too_long",
        `System and developer messages may hold at most ${MAX_SYSTEM_CHARACTERS} characters in total; this request has more.`,
        "messages",
      );
    }
  }
}

/** The platform's safety prompt comes first and takes precedence over the caller's (SPEC 2). */
export const withSafetyPrompt = (safetyPrompt: string, messages: ChatMessage[]): ChatMessage[] => [
  { role: "system", content: safetyPrompt },
  ...messages,
];
