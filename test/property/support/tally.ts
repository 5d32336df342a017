import type { Answer } from "./exchange.js";

// How a property's answers were spread over statuses and error codes: a
// property whose inputs all fail the same first check tests little, and this
// shows it.

const isAnswer = (value: unknown): value is Answer =>
  typeof value === "object" && value !== null && typeof (value as Answer).status === "number" && Buffer.isBuffer((value as Answer).bytes);

/** The answers in an exchange's outcome: the outcome itself, or the answers it holds. */
export const answersIn = (outcome: unknown): Answer[] =>
  isAnswer(outcome) ? [outcome] : Object.values(outcome ?? {}).filter(isAnswer);

/** "400 unsupported_url_scheme", "402 insufficient_balance", "200": what kind of answer this was. */
function kindOf(answer: Answer): string {
  try {
    const body = JSON.parse(answer.text) as { error?: { code?: unknown; data?: { code?: unknown } } };
    const code = body.error?.data?.code ?? body.error?.code;
    return typeof code === "string" ? `${answer.status} ${code}` : String(answer.status);
  } catch {
    return String(answer.status);
  }
}

export function tallyAnswers() {
  const counts = new Map<string, number>();
  return {
    add: (answer: Answer) => void counts.set(kindOf(answer), (counts.get(kindOf(answer)) ?? 0) + 1),
    summary: () =>
      [...counts]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([kind, n]) => `${kind}×${n}`)
        .join(", "),
  };
}
