/**
 * What one API request's access log line reports from inside the domain. The
 * surface creates one per request (it is that line's record, so tracing costs
 * no allocation of its own) and passes it in the call context; the metered
 * call and the failover fill it in as the request goes.
 */
export interface CallTrace {
  readonly requestId: string;
  /** The model that served the call, or was to; null before one was chosen. */
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  /** What the ledger charged. */
  costCents: number;
  /** The upstream that answered, by its metric label; null when none did. */
  upstream: string | null;
  /** Upstream calls made, retries and failovers included. */
  attempts: number;
  /** How a metered call ended; null when the request never got that far. */
  outcome: "succeeded" | "failed" | "cancelled" | "interrupted" | null;
  /**
   * True while a metered call is open (from its hold until its settle), so a
   * response that ends first (a client gone mid-stream) leaves its line to
   * `afterSettle`, which the call runs once it has closed. Neither is ever
   * logged: the line is written once `settling` is undefined again, and
   * loggers skip functions.
   */
  settling: true | undefined;
  afterSettle: (() => void) | undefined;
}
