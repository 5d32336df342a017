// Counts what a server asks of PostgreSQL, from the wire: a TCP relay between
// the server and PostgreSQL that reads the backend's protocol messages as they
// pass. pg_stat_statements would need shared_preload_libraries and a restart
// of the machine's PostgreSQL, and pg_stat_database flushes a backend's
// counters only every second or so, up to 10 s late, so neither can be read
// per scenario. The relay adds a hop, so it is used in a separate pass of its
// own and never in a timed run.
//
// From the backend's messages:
// - ReadyForQuery ('Z') ends every exchange the client waits for (one Sync of
//   the extended protocol, or one simple Query): a round trip.
// - ParameterDescription ('t') answers a Describe, which postgres.js sends on
//   its own (Parse, Describe, Flush) and waits for before it binds a statement
//   it has not prepared on that connection yet: one more round trip.
// - A ReadyForQuery whose status is idle ('I') ends a transaction: a COMMIT or
//   ROLLBACK, or a statement that ran outside any explicit transaction. This is
//   what pg_stat_database's xact_commit + xact_rollback count.
// - CommandComplete ('C') tags ("INSERT 0 3", "UPDATE 1", "DELETE 2") give the
//   rows written by plain statements; rows written inside a statement's
//   writable CTEs are not in its tag, which says SELECT.
// Checked once against pg_stat_database read after its flush (100 requests):
// transactions and rows inserted and updated were equal.
import { createServer, connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export interface WireCounts {
  roundTrips: number;
  transactions: number;
  inserted: number;
  updated: number;
  deleted: number;
}

const READY_FOR_QUERY = "Z".charCodeAt(0);
const PARAMETER_DESCRIPTION = "t".charCodeAt(0);
const COMMAND_COMPLETE = "C".charCodeAt(0);
const IDLE = "I".charCodeAt(0);

/** Splits a backend byte stream into messages (type byte, int32 length including itself, body) and hands over the ones counted. */
function backendMessageReader(onMessage: (type: number, body: Buffer) => void): (chunk: Buffer) => void {
  let header = Buffer.alloc(0);
  let type = 0;
  let remaining = -1; // -1: reading a header
  let body: Buffer[] = [];
  return (chunk) => {
    let at = 0;
    while (at < chunk.length) {
      if (remaining < 0) {
        const take = Math.min(5 - header.length, chunk.length - at);
        header = Buffer.concat([header, chunk.subarray(at, at + take)]);
        at += take;
        if (header.length < 5) return;
        type = header[0]!;
        remaining = header.readInt32BE(1) - 4;
        header = Buffer.alloc(0);
        body = [];
      }
      const take = Math.min(remaining, chunk.length - at);
      if (type === READY_FOR_QUERY || type === COMMAND_COMPLETE) body.push(chunk.subarray(at, at + take));
      at += take;
      remaining -= take;
      if (remaining > 0) return;
      onMessage(type, Buffer.concat(body));
      remaining = -1;
    }
  };
}

export interface PgWireCensus {
  /** The database URL to give the server: the same database, reached through the relay. */
  url: string;
  counts(): WireCounts;
  reset(): void;
  close(): Promise<void>;
}

export async function startPgWireCensus(databaseUrl: string): Promise<PgWireCensus> {
  const target = new URL(databaseUrl);
  let counts: WireCounts;
  const reset = () => void (counts = { roundTrips: 0, transactions: 0, inserted: 0, updated: 0, deleted: 0 });
  reset();
  const count = (type: number, body: Buffer) => {
    if (type === READY_FOR_QUERY) {
      counts.roundTrips++;
      if (body[0] === IDLE) counts.transactions++;
      return;
    }
    if (type === PARAMETER_DESCRIPTION) {
      counts.roundTrips++;
      return;
    }
    const [command, ...numbers] = body.toString("latin1").replace(/\0$/, "").split(" ");
    const rows = Number(numbers.at(-1) ?? 0);
    if (command === "INSERT") counts.inserted += rows;
    else if (command === "UPDATE") counts.updated += rows;
    else if (command === "DELETE") counts.deleted += rows;
  };

  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const backend = connect(Number(target.port || 5432), target.hostname);
    for (const socket of [client, backend]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {
        client.destroy();
        backend.destroy();
      });
    }
    backend.on("data", backendMessageReader(count));
    client.pipe(backend);
    backend.pipe(client);
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String((relay.address() as AddressInfo).port);
  // The reader expects the protocol from the first byte: no TLS negotiation.
  url.searchParams.set("sslmode", "disable");
  return {
    url: url.toString(),
    counts: () => ({ ...counts }),
    reset,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
}
