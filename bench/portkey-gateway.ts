// Portkey's open-source gateway (npm @portkey-ai/gateway), the product SentX's
// targets are set against, measured in the same run as SentX. It is not a
// dependency of SentX: the benchmark installs it once into a cache folder
// under node_modules and reuses it.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { Agent, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chatBody, type ChatEndpoint, sendChat } from "./chat-client.js";
import { type HelperProcess, startNodeProcess } from "./helper-process.js";

export const PORTKEY_VERSION = "1.15.2";
/**
 * The package's range (^1.3.3) would take @hono/node-server 1.19, with which
 * Portkey answers every stream with a 500 ("TypeError: immutable",
 * Portkey-AI/gateway#1389). 1.13.5 is what Portkey's own lockfile installs
 * (Portkey-AI/gateway#1604), so this is Portkey as its project builds it.
 */
export const PORTKEY_HONO_NODE_SERVER = "1.13.5";

const PORTKEY_INSTALL_DIR = fileURLToPath(new URL(`../node_modules/.cache/sentx-bench/portkey-${PORTKEY_VERSION}`, import.meta.url));
const packageDir = (name: string) => join(PORTKEY_INSTALL_DIR, "node_modules", name);
const bin = join(packageDir("@portkey-ai/gateway"), "build/start-server.js");

function installedVersion(name: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(packageDir(name), "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return null;
  }
}

/** npm's error code and first message, without the stack and the advice that follow them. */
function npmFailure(stderr: string): string {
  const lines = stderr.split("\n").filter((line) => line.startsWith("npm error ")).map((line) => line.slice("npm error ".length));
  const code = lines.find((line) => line.startsWith("code "))?.slice("code ".length);
  const message = lines.find((line) => line.trim() && !/^(code|syscall|errno) |^\s+at /.test(line));
  return [code && `(${code})`, message].filter(Boolean).join(" ");
}

/** Installs Portkey into its cache folder unless the right versions are already there; throws npm's reason if it cannot. */
async function installPortkey(): Promise<void> {
  if (installedVersion("@portkey-ai/gateway") === PORTKEY_VERSION && installedVersion("@hono/node-server") === PORTKEY_HONO_NODE_SERVER) return;
  console.log(`  installing @portkey-ai/gateway@${PORTKEY_VERSION} into ${PORTKEY_INSTALL_DIR}`);
  await mkdir(PORTKEY_INSTALL_DIR, { recursive: true });
  await writeFile(join(PORTKEY_INSTALL_DIR, "package.json"), JSON.stringify({ private: true, overrides: { "@hono/node-server": PORTKEY_HONO_NODE_SERVER } }));
  const args = ["install", "--prefix", PORTKEY_INSTALL_DIR, "--no-audit", "--no-fund", `@portkey-ai/gateway@${PORTKEY_VERSION}`];
  try {
    await promisify(execFile)("npm", args, { cwd: PORTKEY_INSTALL_DIR });
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    throw new Error(`npm install @portkey-ai/gateway@${PORTKEY_VERSION} failed: ${npmFailure(stderr ?? "") || message}`);
  }
}

/** Portkey takes a port but no host and listens on every interface, so the port is found free the same way. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * Portkey routes by headers rather than by a model table: provider "openai",
 * and the custom host as the OpenAI base URL, to which it appends
 * /chat/completions. `upstreamBaseUrl` is that base: the fast upstream's /v1,
 * or /slow/v1 for slow streams.
 */
export const portkeyEndpoint = (portkeyUrl: string, upstreamBaseUrl: string): ChatEndpoint => ({
  url: `${portkeyUrl}/v1/chat/completions`,
  headers: { "x-portkey-provider": "openai", "x-portkey-custom-host": upstreamBaseUrl },
});

/** One json and one streamed chat through Portkey must reach the upstream and answer 200, or it is not worth measuring. */
async function checkRelays(portkeyUrl: string, upstreamUrl: string): Promise<void> {
  const agent = new Agent({ keepAlive: false });
  try {
    for (const stream of [false, true]) {
      const { status } = await sendChat({ ...portkeyEndpoint(portkeyUrl, `${upstreamUrl}/v1`), body: chatBody("bench", stream) }, agent, "not-checked");
      if (status !== 200) throw new Error(`a ${stream ? "streamed" : "json"} chat through Portkey answered ${status || "a socket error"}`);
    }
  } finally {
    agent.destroy();
  }
}

/** Installs Portkey if needed and starts it in front of `upstreamUrl`; throws with the reason if it cannot be measured. */
export async function startPortkey(upstreamUrl: string): Promise<HelperProcess> {
  await installPortkey();
  const port = await freePort();
  // Its cwd is its install folder: Portkey's file cache, if ever used, writes ./data there.
  const server = await startNodeProcess([bin, `--port=${port}`, "--headless"], /Ready for connections/, { cwd: PORTKEY_INSTALL_DIR });
  const url = `http://127.0.0.1:${port}`;
  try {
    await checkRelays(url, upstreamUrl);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { url, pid: server.pid, stop: server.stop };
}
