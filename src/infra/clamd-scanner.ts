import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { DomainError } from "../domain/errors.js";
import { readChunks, type ByteSource } from "../domain/files/byte-source.js";
import type { ScanVerdict, VirusScanner } from "../domain/files/virus-scanner.js";

// ClamAV's clamd over its INSTREAM protocol (SPEC 7). Commands are z-prefixed,
// so clamd terminates each reply with a NUL byte and then closes.

export interface ClamdScannerOptions {
  /** `tcp://host:port` or `unix:///path/to/clamd.ctl`. */
  url: string;
  /** The whole exchange, from connecting to the verdict (default 30 s). */
  timeoutMs?: number;
  /**
   * A ping's deadline (default 2 s, or timeoutMs if shorter): readiness checks,
   * and uploads asking whether to scan at all, must not wait on a hung clamd.
   */
  pingTimeoutMs?: number;
  /** Largest INSTREAM chunk sent (default 64 KiB). */
  chunkBytes?: number;
}

/** What `net.connect` is given. */
export type ClamdEndpoint = { host: string; port: number } | { path: string };

const UNAVAILABLE_MESSAGE = "The virus scanner is unavailable; the file was not stored. Try again shortly.";
const INSTREAM = Buffer.from("zINSTREAM\0");
const PING = Buffer.from("zPING\0");
// Replies are a line ("stream: <Signature> FOUND"); anything longer is not clamd.
const MAX_REPLY_BYTES = 4096;

export function createClamdScanner(options: ClamdScannerOptions): VirusScanner {
  const endpoint = parseClamdUrl(options.url);
  const timeoutMs = positiveInteger("timeoutMs", options.timeoutMs ?? 30_000);
  const pingTimeoutMs = positiveInteger("pingTimeoutMs", options.pingTimeoutMs ?? Math.min(timeoutMs, 2_000));
  const chunkBytes = positiveInteger("chunkBytes", options.chunkBytes ?? 64 * 1024);
  return {
    async scan(source, signal) {
      const reply = await converse(endpoint, timeoutMs, signal, (socket, over) => sendInstream(socket, source, over, chunkBytes));
      return verdictFromReply(reply);
    },
    async ping() {
      try {
        return (await converse(endpoint, pingTimeoutMs, undefined, (socket, over) => write(socket, over, PING))) === "PONG";
      } catch {
        return false;
      }
    },
  };
}

/** Throws a plain Error (a configuration mistake, found at startup) for anything but the two supported forms. */
export function parseClamdUrl(url: string): ClamdEndpoint {
  const invalid = (why: string) =>
    new Error(`Invalid clamd URL ${JSON.stringify(url)}: ${why}; expected tcp://host:port or unix:///path/to/clamd.ctl`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid("not a URL");
  }
  if (parsed.protocol === "tcp:") {
    const port = Number(parsed.port);
    if (!parsed.hostname || !(port > 0)) throw invalid("a host and a port are required");
    if (parsed.pathname !== "" && parsed.pathname !== "/") throw invalid("a TCP address takes no path");
    // URL keeps the brackets of an IPv6 literal; net.connect wants the bare address.
    return { host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"), port };
  }
  if (parsed.protocol === "unix:") {
    // unix://var/run/clamd.ctl would silently mean host "var": demand the absolute form.
    if (parsed.host) throw invalid("the socket path must be absolute (unix:///…)");
    const path = decodeURIComponent(parsed.pathname);
    if (path === "" || path === "/") throw invalid("no socket path");
    return { path };
  }
  throw invalid(`unsupported scheme ${JSON.stringify(parsed.protocol)}`);
}

/** Maps one clamd reply to a verdict; an ERROR or anything unexpected means there is none. */
export function verdictFromReply(reply: string): ScanVerdict {
  if (reply === "stream: OK") return { clean: true };
  const found = /^stream: (.+) FOUND$/.exec(reply);
  if (found?.[1]) return { clean: false, signature: found[1] };
  // e.g. "INSTREAM size limit exceeded. ERROR": clamd's StreamMaxLength is below our file cap.
  throw scannerUnavailable(new Error(`clamd replied ${JSON.stringify(reply)}`));
}

/** The client sees a fixed message; hosts, paths and clamd's words stay in `cause` for the log. */
const scannerUnavailable = (cause: unknown): DomainError => new DomainError("service_unavailable", UNAVAILABLE_MESSAGE, null, { cause });

/**
 * One clamd conversation: connect, let `send` write the command, and return
 * the reply without its NUL. Settles on the first of: the reply, a connection
 * failure or the deadline (service_unavailable), the caller's abort (its
 * reason), or `send` failing (its error: the source broke). The socket is
 * destroyed on every path, and `over` tells `send` to stop feeding it.
 */
async function converse(
  endpoint: ClamdEndpoint,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  send: (socket: Socket, over: AbortSignal) => Promise<void>,
): Promise<string> {
  signal?.throwIfAborted();
  const over = new AbortController();
  let resolveReply!: (reply: string) => void;
  let rejectReply!: (error: unknown) => void;
  const reply = new Promise<string>((resolve, reject) => {
    resolveReply = resolve;
    rejectReply = reject;
  });
  const socket = connect(endpoint);
  const onAbort = () => finish(() => rejectReply(signal?.reason));
  const timer = setTimeout(() => fail(new Error(`clamd gave no verdict within ${timeoutMs} ms`)), timeoutMs);
  function finish(settle: () => void) {
    if (over.signal.aborted) return;
    over.abort();
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    socket.destroy();
    settle();
  }
  function fail(cause: unknown) {
    finish(() => rejectReply(scannerUnavailable(cause)));
  }

  signal?.addEventListener("abort", onAbort, { once: true });
  const received: Buffer[] = [];
  let receivedBytes = 0;
  socket.on("data", (data: Buffer) => {
    const end = data.indexOf(0);
    received.push(end === -1 ? data : data.subarray(0, end));
    receivedBytes += data.length;
    if (end !== -1) finish(() => resolveReply(Buffer.concat(received).toString("utf8")));
    else if (receivedBytes > MAX_REPLY_BYTES) fail(new Error("clamd's reply has no end"));
  });
  // Stays attached after destroy, so a late socket error is never unhandled.
  socket.on("error", fail);
  socket.on("close", () => fail(new Error("clamd closed the connection before replying")));
  // clamd may answer before the stream ends (a size limit): then the reply, not the failed write, is what happened.
  send(socket, over.signal).catch((error: unknown) => finish(() => rejectReply(error)));
  return reply;
}

async function sendInstream(socket: Socket, source: ByteSource, over: AbortSignal, chunkBytes: number): Promise<void> {
  await write(socket, over, INSTREAM);
  for await (const chunk of readChunks(source, over)) {
    // An empty chunk is never sent: its zero length would end the stream early and leave the rest unscanned.
    for (let at = 0; at < chunk.byteLength; at += chunkBytes) {
      const part = chunk.subarray(at, at + chunkBytes);
      await write(socket, over, lengthPrefix(part.byteLength), part);
    }
  }
  await write(socket, over, lengthPrefix(0));
}

/** Backpressure: the source is pulled no faster than clamd reads, so a file never sits in memory. */
async function write(socket: Socket, over: AbortSignal, ...buffers: Uint8Array[]): Promise<void> {
  socket.cork();
  let flowing = true;
  for (const buffer of buffers) flowing = socket.write(buffer);
  socket.uncork();
  if (!flowing) await once(socket, "drain", { signal: over });
}

function lengthPrefix(length: number): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(length);
  return prefix;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`clamd scanner: ${name} must be a positive integer, got ${value}`);
  return value;
}
