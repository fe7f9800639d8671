// A client that downloads slower than the backend sends: it stops reading whenever it is ahead of
// RATE, so the proxy in between has to hold the backend back (or buffer what it does not).
//   node dist/bench/slow-reader.js PORT PATH BYTES RATE_MIB_PER_S
// Asks for the first BYTES of PATH (a Range request); prints {bytes, seconds} as JSON once they arrived.
import { connect } from 'node:net';

const MiB = 1024 * 1024;

function download(port: number, path: string, expected: number, mibPerSecond: number): Promise<{ bytes: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nhost: bench.local\r\nrange: bytes=0-${expected - 1}\r\nconnection: close\r\n\r\n`));
    const started = performance.now();
    let head = '';
    let body = -1;
    socket.on('data', (chunk: Buffer) => {
      if (body === -1) {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        if (!/^HTTP\/1\.1 20[06] /.test(head)) {
          reject(new Error(`unexpected answer: ${head.slice(0, 80)}`));
          socket.destroy();
          return;
        }
        body = head.length - end - 4;
      } else body += chunk.length;
      const due = (body / (mibPerSecond * MiB)) * 1000 - (performance.now() - started);
      if (due > 1) {
        socket.pause();
        setTimeout(() => socket.resume(), due);
      }
    });
    socket.on('end', () => {
      if (body !== expected) reject(new Error(`got ${body} body bytes, expected ${expected}`));
      else resolve({ bytes: body, seconds: (performance.now() - started) / 1000 });
    });
    socket.on('error', reject);
  });
}

const [port, path, bytes, rate] = process.argv.slice(2);
download(Number(port), path ?? '/', Number(bytes), Number(rate)).then((r) => {
  process.stdout.write(JSON.stringify(r) + '\n');
}, (err: Error) => {
  process.stderr.write(`slow reader: ${err.message}\n`);
  process.exit(1);
});
