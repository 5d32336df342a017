// Parsing untrusted documents in a separate, disposable process, so that a
// parser that loops, blows its heap or crashes takes only that process down.
//
// Why a child process rather than a worker thread: a Worker's resourceLimits
// cap only its V8 heap; pdf.js inflates PDF streams into ArrayBuffers outside
// that heap, in the server's own address space (measured: a Worker capped at
// 64 MB allocated 3 GB of Uint8Arrays and the server's RSS followed). A child
// has its own address space, can be SIGKILLed at any point, and on Linux its
// RSS is watched here too. It costs ~80 ms more to start than a Worker
// (measured: ~190 ms against ~110 ms, both loading tsx).
import { fork } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { extname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ExtractionReply, ExtractionRequest } from "./extraction-child.js";
import type { ExtractedText } from "./extracted-text.js";
import { invalidFileFormat, unreadableDocument } from "../invalid-file-format.js";

// The child runs whatever this module is: .ts under `node --import tsx` and
// under vitest, .js if the code is ever built.
const ownExtension = extname(fileURLToPath(import.meta.url));
const CHILD_ENTRY = new URL(`./extraction-child${ownExtension}`, import.meta.url);

// TypeScript source needs tsx in the child. It must be said explicitly: vitest
// transforms TS in its own module runner, so its processes' execArgv have no
// tsx to inherit. The loader is resolved to an absolute URL because `--import
// tsx` resolves from the cwd, which need not be this project. (A Worker could
// not use `--import tsx` at all on Node 20: its entry still failed with
// ERR_UNKNOWN_FILE_EXTENSION.)
const TS_LOADER = ownExtension === ".ts" ? ["--import", pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href] : [];

// The child parses untrusted bytes: it gets no secrets (database URL, API
// keys) from the server's environment, and no inherited NODE_OPTIONS.
const CHILD_ENV_KEYS = ["PATH", "TMPDIR", "TMP", "TEMP", "SYSTEMROOT", "NODE_ENV"];

const RSS_POLL_MS = 100;
const TOO_MUCH_MEMORY = "it needs too much memory to process";

function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(CHILD_ENV_KEYS.flatMap((key) => (process.env[key] === undefined ? [] : [[key, process.env[key]]])));
}

/**
 * Calls `onExceeded` once the process `pid` is resident over `maxRssMb`:
 * buffers outside the V8 heap escape --max-old-space-size. Linux only (it
 * reads /proc); elsewhere the heap cap and the timeout still apply.
 */
function watchRss(pid: number, maxRssMb: number, onExceeded: () => void): NodeJS.Timeout | undefined {
  if (process.platform !== "linux") return undefined;
  return setInterval(() => {
    readFile(`/proc/${pid}/status`, "utf8").then(
      (status) => {
        if (Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) > maxRssMb * 1024) onExceeded();
      },
      () => {}, // the child has just exited; its close event reports how
    );
  }, RSS_POLL_MS);
}

/** What a child that ended without replying tells us, from its exit and the end of its stderr. */
function diedWithoutReply(code: number | null, signal: NodeJS.Signals | null, stderr: string) {
  const cause = `extraction child exited (${signal ?? `code ${code}`}): ${stderr}`;
  if (/heap out of memory|allocation failed/i.test(stderr)) return unreadableDocument(TOO_MUCH_MEMORY, cause);
  return unreadableDocument("its reader stopped unexpectedly", cause);
}

/** Parses one document in a fresh child process, killed at `limits.timeoutMs` or on too much memory. */
export function parseInChild(request: ExtractionRequest): Promise<ExtractedText> {
  const { limits } = request;
  return new Promise((resolve, reject) => {
    const child = fork(CHILD_ENTRY, [], {
      execArgv: [...TS_LOADER, `--max-old-space-size=${limits.maxHeapMb}`],
      env: childEnv(),
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (text: string) => {
      stderr = (stderr + text).slice(-4096);
    });

    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(rssWatch);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      outcome();
    };
    const timer = setTimeout(() => {
      settle(() => reject(unreadableDocument(`it took too long to process (limit ${limits.timeoutMs / 1000} s)`)));
    }, limits.timeoutMs);
    const rssWatch = child.pid === undefined ? undefined : watchRss(child.pid, limits.maxRssMb, () => {
      settle(() => reject(unreadableDocument(TOO_MUCH_MEMORY, `RSS over ${limits.maxRssMb} MB`)));
    });

    child.on("message", (reply: ExtractionReply) => {
      settle(() => (reply.ok ? resolve(reply.extracted) : reject(invalidFileFormat(reply.message, reply.detail))));
    });
    // 'close' (not 'exit') waits for the IPC channel, so a reply sent just
    // before exiting is never mistaken for a crash.
    child.on("close", (code, signal) => settle(() => reject(diedWithoutReply(code, signal, stderr))));
    // Only a failure to start lands here: the server's problem, not the document's.
    child.on("error", (e) => settle(() => reject(e)));
    // With a callback, a send to a child that died at once is reported by 'close', not 'error'.
    child.send(request, () => {});
  });
}
