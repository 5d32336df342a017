import fc from "fast-check";
import { abbreviate } from "./hostile-text.js";

// One HTTP request of a property and the answer it got, both printable in a
// failure report (fast-check prints a counterexample through toStringMethod).

export interface HostileRequest {
  method: "GET" | "POST" | "DELETE";
  /** Path and query, already encoded as they go on the wire. */
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

export interface Answer {
  status: number;
  contentType: string;
  bytes: Buffer;
  /** The body as UTF-8 text. */
  text: string;
}

const describeBody = (body: string | Buffer | undefined) =>
  body === undefined ? "" : ` body=${abbreviate(JSON.stringify(typeof body === "string" ? body : body.toString("latin1")))}`;

/** `request`, printed abbreviated (see abbreviate) when fast-check reports it. */
export function printable<T extends HostileRequest>(request: T): T {
  return Object.assign(request, {
    [fc.toStringMethod]: () =>
      `${request.method} ${abbreviate(request.path)} headers=${abbreviate(JSON.stringify(request.headers))}${describeBody(request.body)}`,
  });
}

// A request the server never answers is a finding too (a hung handler), not a hung test run.
const ANSWER_WITHIN_MS = 20_000;

export async function send(baseUrl: string, request: HostileRequest): Promise<Answer> {
  const response = await fetch(`${baseUrl}${request.path}`, {
    method: request.method,
    headers: request.headers,
    // A copy: fetch takes a Uint8Array over a plain ArrayBuffer, which a pooled Buffer may not be.
    ...(request.body !== undefined && { body: typeof request.body === "string" ? request.body : new Uint8Array(request.body) }),
    signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  return { status: response.status, contentType: response.headers.get("content-type") ?? "", bytes, text: bytes.toString("utf8") };
}

/** A failed expectation about `answer`, with enough of it to see what went wrong. */
export const unexpected = (answer: Answer, expectation: string) =>
  new Error(`${expectation}; got ${answer.status} ${answer.contentType} ${abbreviate(answer.text)}`);
