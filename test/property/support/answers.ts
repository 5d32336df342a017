import { type Answer, unexpected } from "./exchange.js";

// What every answer to hostile input must be: never a 5xx; a 4xx in the
// surface's error shape; a 2xx only where the input happened to be valid
// (each property says what its 2xx looks like).

// SPEC 8's type for each status a client may see on /v1.
const TYPE_BY_STATUS: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "insufficient_balance",
  403: "permission_error",
  404: "not_found_error",
  409: "invalid_request_error",
  413: "invalid_request_error",
  422: "invalid_request_error",
  429: "rate_limit_error",
};

// SPEC 8: no stack trace or internal path reaches a client.
const INTERNALS = /node_modules|\n\s+at\s|\.ts:\d+|\/work\/|\/src\//;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const hasExactly = (value: Record<string, unknown>, keys: string[]) =>
  Object.keys(value).sort().join() === [...keys].sort().join();

function parsed(answer: Answer): unknown {
  try {
    return JSON.parse(answer.text);
  } catch {
    throw unexpected(answer, "expected a JSON body");
  }
}

/** Fails unless `answer` is not a 5xx and, when a 4xx, is SPEC 8's error body with the status's type. */
function expectRestRefusalShape(answer: Answer): void {
  if (answer.status >= 500) throw unexpected(answer, "expected no 5xx");
  if (answer.status < 400) return;
  const body = parsed(answer);
  const error = isRecord(body) && hasExactly(body, ["error"]) ? body.error : undefined;
  if (
    !isRecord(error) ||
    !hasExactly(error, ["message", "type", "code", "param"]) ||
    typeof error.message !== "string" ||
    error.message === "" ||
    typeof error.code !== "string" ||
    (error.param !== null && typeof error.param !== "string")
  ) {
    throw unexpected(answer, "expected SPEC 8's {error:{message,type,code,param}}");
  }
  const type = TYPE_BY_STATUS[answer.status];
  if (type !== undefined && error.type !== type) throw unexpected(answer, `expected type ${type} for ${answer.status}`);
  if (INTERNALS.test(error.message)) throw unexpected(answer, "expected no internals in the message");
}

/**
 * A REST answer to hostile input: a 4xx in SPEC 8's shape, or a 2xx that
 * `success` accepts (it throws when this input may not succeed or the body is wrong).
 */
export async function expectRestAnswer(answer: Answer, success: (answer: Answer) => void | Promise<void>): Promise<void> {
  expectRestRefusalShape(answer);
  if (answer.status >= 200 && answer.status < 300) return success(answer);
  if (answer.status < 400) throw unexpected(answer, "expected a 2xx or a 4xx");
}

/** Fails when the answer is a 4xx other than `status`: an oracle for inputs whose refusal the SPEC fixes. */
export function expectStatus(answer: Answer, status: number, why: string): void {
  if (answer.status !== status) throw unexpected(answer, `expected ${status} (${why})`);
}

/** The JSON body of a 2xx, checked by `isRight`. */
export function expectJsonBody(answer: Answer, what: string, isRight: (body: Record<string, unknown>) => boolean): Record<string, unknown> {
  const body = parsed(answer);
  if (!isRecord(body) || !isRight(body)) throw unexpected(answer, `expected ${what}`);
  return body;
}

/** A `success` for inputs that may not succeed. */
export const mustNotSucceed = (why: string) => (answer: Answer) => {
  throw unexpected(answer, `expected a refusal (${why})`);
};

const TRPC_CODE_BY_STATUS: Record<number, string> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  402: "PAYMENT_REQUIRED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  405: "METHOD_NOT_SUPPORTED",
  408: "TIMEOUT",
  409: "CONFLICT",
  412: "PRECONDITION_FAILED",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
  422: "UNPROCESSABLE_CONTENT",
  429: "TOO_MANY_REQUESTS",
  499: "CLIENT_CLOSED_REQUEST",
};

/**
 * An ops (tRPC) answer to hostile input: a 4xx whose error names the tRPC
 * code of its status and carries a message (BAD_REQUEST when `mustRefuse`,
 * i.e. the procedure's input schema refuses it), or a 2xx result.
 */
export function expectOpsAnswer(answer: Answer, { mustRefuse }: { mustRefuse: boolean }): void {
  if (answer.status >= 500) throw unexpected(answer, "expected no 5xx");
  const body = parsed(answer);
  if (answer.status >= 200 && answer.status < 300) {
    if (mustRefuse) throw unexpected(answer, "expected BAD_REQUEST: the procedure's input schema refuses this input");
    if (!isRecord(body) || !isRecord(body.result)) throw unexpected(answer, "expected a tRPC result");
    return;
  }
  if (answer.status < 400) throw unexpected(answer, "expected a 2xx or a 4xx");
  const error = isRecord(body) ? body.error : undefined;
  const data = isRecord(error) ? error.data : undefined;
  if (!isRecord(error) || typeof error.message !== "string" || error.message === "" || !isRecord(data)) {
    throw unexpected(answer, "expected a tRPC error with a message");
  }
  if (data.code !== TRPC_CODE_BY_STATUS[answer.status] || data.httpStatus !== answer.status) {
    throw unexpected(answer, `expected tRPC code ${TRPC_CODE_BY_STATUS[answer.status]} for ${answer.status}`);
  }
  if (mustRefuse && answer.status !== 400) throw unexpected(answer, "expected BAD_REQUEST: the procedure's input schema refuses this input");
  if (data.stack !== undefined || INTERNALS.test(error.message)) throw unexpected(answer, "expected no internals in the error");
}
