import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import { createClamdScanner, parseClamdUrl } from "../../src/infra/clamd-scanner.js";
import { testEnv } from "../support/env.js";

// Built from two halves so that this file itself never matches a scanner's signature.
const EICAR = Buffer.from("X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");
const MiB = 1024 * 1024;
const UNAVAILABLE = { code: "service_unavailable", message: "The virus scanner is unavailable; the file was not stored. Try again shortly." };

const scanner = createClamdScanner({ url: testEnv.clamdUrl });

/** `total` bytes of incompressible data in 64 KiB pieces, generated as they are pulled. */
async function* randomData(total: number): AsyncGenerator<Uint8Array> {
  const piece = randomBytes(64 * 1024);
  for (let sent = 0; sent < total; sent += piece.length) yield piece.subarray(0, Math.min(piece.length, total - sent));
}

/** A one-entry-per-file ustar archive: clamd unpacks it and scans each member on its own. */
function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${size.toString(8).padStart(11, "0")}\0`, 124);
  header.write("00000000000\0", 136);
  header.write("0", 156);
  header.write("ustar\x0000", 257);
  header.write("        ", 148);
  const checksum = header.reduce((sum, byte) => sum + byte, 0);
  header.write(`${checksum.toString(8).padStart(6, "0")}\0 `, 148);
  return header;
}

const tarPadding = (size: number) => Buffer.alloc((512 - (size % 512)) % 512);

// Nothing else in this file keeps a TCP connection open, so any socket still open once a scan has settled is a leak.
const expectNoOpenSockets = () =>
  vi.waitFor(() => expect(process.getActiveResourcesInfo().filter((kind) => kind === "TCPSocketWrap")).toEqual([]));

// Fake clamds, closed after each test with every connection they accepted.
const servers: Server[] = [];
const accepted: Socket[] = [];
afterEach(async () => {
  for (const socket of accepted.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => new Promise((done) => server.close(done))));
});

async function fakeClamd(onConnection: (socket: Socket) => void, listenOn: { port: number } | { path: string } = { port: 0 }): Promise<Server> {
  const server = createServer((socket) => {
    accepted.push(socket);
    socket.on("error", () => {});
    onConnection(socket);
  });
  servers.push(server);
  const address = "path" in listenOn ? listenOn : { ...listenOn, host: "127.0.0.1" };
  await new Promise<void>((listening) => server.listen(address, listening));
  return server;
}

const tcpUrl = (server: Server) => `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`;

describe("against clamd", () => {
  it("finds clean bytes clean", async () => {
    expect(await scanner.scan(Readable.from([Buffer.from("hello, world\n")]))).toEqual({ clean: true });
  });

  it("flags the EICAR test file", async () => {
    const verdict = await scanner.scan(Readable.from([EICAR]));
    expect(verdict).toEqual({ clean: false, signature: expect.stringMatching(/Eicar/) });
  });

  it("finds EICAR streamed after 5 MB of clean data", async () => {
    // The fixture signature is a whole-file hash, as EICAR detection is in ClamAV's own database:
    // EICAR must be a file of its own, so it follows 5 MB of clean data as the next member of an archive.
    const clean = 5 * MiB;
    async function* archive() {
      yield tarHeader("clean.bin", clean);
      yield* randomData(clean);
      yield tarHeader("eicar.com", EICAR.length);
      yield Buffer.concat([EICAR, tarPadding(EICAR.length), Buffer.alloc(1024)]);
    }
    const verdict = await scanner.scan(archive());
    expect(verdict).toEqual({ clean: false, signature: expect.stringMatching(/Eicar/) });
  });

  it("streams 25 MB of clean data through", async () => {
    const verdict = await scanner.scan(randomData(25 * MiB));
    expect(verdict).toEqual({ clean: true });
  });

  it("rejects with the source's own error when the source fails mid-way, and closes the socket", async () => {
    async function* failing() {
      yield* randomData(MiB);
      throw new Error("client went away");
    }
    await expect(scanner.scan(failing())).rejects.toThrow("client went away");
    await expectNoOpenSockets();
  });

  it("stops on the caller's abort, even while the source is stalled", async () => {
    const controller = new AbortController();
    async function* stalled() {
      yield Buffer.from("some bytes");
      controller.abort(new Error("request closed"));
      await new Promise(() => {});
    }
    await expect(scanner.scan(stalled(), controller.signal)).rejects.toThrow("request closed");
    await expectNoOpenSockets();
  });

  it("answers ping", async () => {
    expect(await scanner.ping()).toBe(true);
  });
});

describe("when clamd cannot give a verdict", () => {
  it("is unavailable at once when nothing listens on the port", async () => {
    const server = await fakeClamd(() => {});
    const url = tcpUrl(server);
    await new Promise((closed) => server.close(closed));
    const refused = createClamdScanner({ url });
    const started = performance.now();
    const error = await refused.scan(Readable.from([Buffer.from("x")])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject(UNAVAILABLE);
    // The detail is for the log, never the client.
    expect((error as DomainError).message).not.toContain("127.0.0.1");
    expect((error as DomainError).cause).toMatchObject({ code: "ECONNREFUSED" });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await refused.ping()).toBe(false);
  });

  it("gives up after the timeout when clamd accepts but never answers, having pulled only what the socket took", async () => {
    // Never reads either: with backpressure the source is pulled only as far as the socket buffers reach.
    const server = await fakeClamd(() => {});
    const silent = createClamdScanner({ url: tcpUrl(server), timeoutMs: 300 });
    let pulled = 0;
    let released = false;
    async function* endless() {
      try {
        for (;;) {
          const chunk = Buffer.alloc(64 * 1024);
          pulled += chunk.length;
          yield chunk;
        }
      } finally {
        released = true;
      }
    }
    const started = performance.now();
    await expect(silent.scan(endless())).rejects.toMatchObject(UNAVAILABLE);
    const elapsed = performance.now() - started;
    expect(pulled).toBeLessThan(64 * MiB);
    await vi.waitFor(() => expect(released).toBe(true));
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2_000);
    expect(await silent.ping()).toBe(false);
    for (const socket of accepted.splice(0)) socket.destroy();
    await expectNoOpenSockets();
  });

  it("times out on a source that stalls, without waiting for it", async () => {
    const server = await fakeClamd((socket) => socket.resume());
    const scannerWithDeadline = createClamdScanner({ url: tcpUrl(server), timeoutMs: 200 });
    async function* stalled() {
      yield Buffer.from("some bytes");
      await new Promise(() => {});
    }
    await expect(scannerWithDeadline.scan(stalled())).rejects.toMatchObject(UNAVAILABLE);
  });

  it("is unavailable when clamd refuses the stream as too large", async () => {
    // What clamd does once StreamMaxLength is passed: reply mid-stream and hang up.
    const server = await fakeClamd((socket) =>
      socket.once("data", () => socket.end("INSTREAM size limit exceeded. ERROR\0")),
    );
    const error = await createClamdScanner({ url: tcpUrl(server) })
      .scan(randomData(8 * MiB))
      .catch((e: unknown) => e);
    expect(error).toMatchObject(UNAVAILABLE);
    expect(String((error as DomainError).cause)).toContain("INSTREAM size limit exceeded");
  });

  it("is unavailable on a reply that is not clamd's", async () => {
    const server = await fakeClamd((socket) => socket.once("data", () => socket.end("HTTP/1.1 400 Bad Request\r\n\r\n")));
    await expect(createClamdScanner({ url: tcpUrl(server) }).scan(Readable.from([Buffer.from("x")]))).rejects.toMatchObject(UNAVAILABLE);
  });

  it("pings false when the answer is not PONG", async () => {
    const server = await fakeClamd((socket) => socket.once("data", () => socket.end("UNKNOWN COMMAND\0")));
    expect(await createClamdScanner({ url: tcpUrl(server) }).ping()).toBe(false);
  });
});

describe("clamd URLs", () => {
  it("parses tcp and unix forms into connect options", () => {
    expect(parseClamdUrl("tcp://127.0.0.1:3310")).toEqual({ host: "127.0.0.1", port: 3310 });
    expect(parseClamdUrl("tcp://clamav.internal:3310")).toEqual({ host: "clamav.internal", port: 3310 });
    expect(parseClamdUrl("tcp://[::1]:3310")).toEqual({ host: "::1", port: 3310 });
    expect(parseClamdUrl("unix:///var/run/clamav/clamd.ctl")).toEqual({ path: "/var/run/clamav/clamd.ctl" });
    expect(parseClamdUrl("unix:///tmp/my%20clamd.sock")).toEqual({ path: "/tmp/my clamd.sock" });
  });

  it.each([
    "",
    "127.0.0.1:3310",
    "tcp://127.0.0.1",
    "tcp://:3310",
    "tcp://127.0.0.1:0",
    "tcp://127.0.0.1:3310/scan",
    "http://127.0.0.1:3310",
    "unix://var/run/clamd.ctl",
    "unix:///",
  ])("refuses %j when the scanner is built", (url) => {
    expect(() => createClamdScanner({ url })).toThrow(/Invalid clamd URL .*expected tcp:\/\/host:port or unix:\/\/\//);
  });

  it("talks over a unix socket", async () => {
    const folder = await mkdtemp(join(tmpdir(), "sentx-clamd-"));
    try {
      const path = join(folder, "clamd.ctl");
      await fakeClamd((socket) => socket.once("data", () => socket.end("PONG\0")), { path });
      expect(await createClamdScanner({ url: `unix://${path}` }).ping()).toBe(true);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
