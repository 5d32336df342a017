// The yardstick: a pass-through proxy with no logic at all (no auth, no
// accounting, no parsing), plain node:http in front of the upstream given as
// the first argument, over keep-alive connections. Nothing a Node gateway
// does on this machine can be faster, so every SentX figure is read as a
// share of this one. Prints `listening on <url>` once it accepts connections.
import { Agent, createServer, request, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

const upstream = new URL(process.argv[2] ?? "");
const agent = new Agent({ keepAlive: true, keepAliveMsecs: 30_000 });

// Hop-by-hop headers belong to one connection; forwarding them would break keep-alive.
const hopByHop = new Set(["connection", "keep-alive", "transfer-encoding", "host"]);
const endToEnd = (headers: IncomingHttpHeaders) => Object.fromEntries(Object.entries(headers).filter(([name]) => !hopByHop.has(name)));

const server = createServer({ noDelay: true }, (req, res) => {
  const forward = request(
    { agent, host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: endToEnd(req.headers) },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
      answer.pipe(res);
    },
  );
  forward.on("socket", (socket) => socket.setNoDelay(true));
  forward.on("error", () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
  req.pipe(forward);
});
server.keepAliveTimeout = 120_000;
server.listen(0, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`));
