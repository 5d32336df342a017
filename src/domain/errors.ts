// SPEC 8: the one table of error codes. Every surface maps a DomainError once
// (REST → OpenAI error body, tRPC → TRPCError, GraphQL → extensions.code).

export const errorTable = {
  invalid_request_error: { status: 400, type: "invalid_request_error" },
  system_message_too_long: { status: 400, type: "invalid_request_error" },
  unsupported_url_scheme: { status: 400, type: "invalid_request_error" },
  invalid_file_format: { status: 400, type: "invalid_request_error" },
  image_too_large: { status: 400, type: "invalid_request_error" },
  unsupported_attachment: { status: 400, type: "invalid_request_error" },
  context_length_exceeded: { status: 400, type: "invalid_request_error" },
  invalid_api_key: { status: 401, type: "authentication_error" },
  unauthorized: { status: 401, type: "authentication_error" },
  insufficient_balance: { status: 402, type: "insufficient_balance" },
  account_suspended: { status: 403, type: "permission_error" },
  model_not_allowed: { status: 403, type: "permission_error" },
  csrf_token_invalid: { status: 403, type: "permission_error" },
  not_found: { status: 404, type: "not_found_error" },
  model_not_found: { status: 404, type: "not_found_error" },
  file_not_found: { status: 404, type: "not_found_error" },
  conflict: { status: 409, type: "invalid_request_error" },
  max_keys_reached: { status: 409, type: "invalid_request_error" },
  max_files_reached: { status: 409, type: "invalid_request_error" },
  storage_quota_exceeded: { status: 409, type: "invalid_request_error" },
  file_too_large: { status: 413, type: "invalid_request_error" },
  request_too_large: { status: 413, type: "invalid_request_error" },
  av_hit: { status: 422, type: "invalid_request_error" },
  rate_limit_exceeded: { status: 429, type: "rate_limit_error" },
  // SPEC 10: the week's chats are used up and the balance cannot pay one as overflow.
  weekly_quota_exceeded: { status: 429, type: "rate_limit_error" },
  // nginx's convention: the client went away before the answer. Only request records see it.
  client_closed_request: { status: 499, type: "invalid_request_error" },
  internal_error: { status: 500, type: "server_error" },
  upstream_error: { status: 502, type: "server_error" },
  upstream_unavailable: { status: 503, type: "server_error" },
  service_unavailable: { status: 503, type: "server_error" },
  // The server has no Stripe keys: top-ups (and Stripe's webhook, which Stripe keeps retrying) wait for them.
  top_ups_unavailable: { status: 503, type: "server_error" },
} as const satisfies Record<string, { status: number; type: string }>;

export type ErrorCode = keyof typeof errorTable;

export class DomainError extends Error {
  override readonly name = "DomainError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly param: string | null = null,
    /** `cause` is for the log: never shown to the client. */
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  get status(): number {
    return errorTable[this.code].status;
  }

  get type(): string {
    return errorTable[this.code].type;
  }
}

export const isDomainError = (e: unknown): e is DomainError => e instanceof DomainError;

/** A refusal the caller may retry after a known wait (SPEC 6: a 429 carries Retry-After). */
export class RetryLaterError extends DomainError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(code, message);
  }
}
