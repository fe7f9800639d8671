// Real backend servers for the demo, the tests and the benchmarks: an HTTP server that says who it
// is (and echoes what it got), and a TCP echo server that prefixes its name.
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';

export interface RunningBackend {
  name: string;
  host: string;
  port: number;
  /** Requests (HTTP) or connections (TCP) received. */
  hits(): number;
  stop(): Promise<void>;
}

function stopper(server: Server | ReturnType<typeof createTcpServer>, sockets: Set<Socket>): () => Promise<void> {
  return () => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
}

function track(server: Server | ReturnType<typeof createTcpServer>): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return sockets;
}

/** GET /health answers 200; any other path answers JSON naming the backend, with the request's headers. */
export async function startHttpBackend(name: string, host = '127.0.0.1', port = 0): Promise<RunningBackend> {
  let hits = 0;
  const server = createHttpServer((req, res) => {
    if (req.url === '/health') {
      res.end('ok');
      return;
    }
    hits += 1;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ backend: name, method: req.method, path: req.url, headers: req.headers, bodyBytes: Buffer.concat(chunks).length });
      res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 10_000;
  const sockets = track(server);
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return { name, host, port: (server.address() as AddressInfo).port, hits: () => hits, stop: stopper(server, sockets) };
}

/** Echoes every byte back after a `name:` greeting line; ends its side when the client ends. */
export async function startTcpBackend(name: string, host = '127.0.0.1', port = 0): Promise<RunningBackend> {
  let hits = 0;
  const server = createTcpServer({ allowHalfOpen: true }, (socket) => {
    hits += 1;
    socket.on('error', () => socket.destroy());
    socket.write(`${name}:`);
    socket.pipe(socket);
  });
  const sockets = track(server);
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return { name, host, port: (server.address() as AddressInfo).port, hits: () => hits, stop: stopper(server, sockets) };
}
