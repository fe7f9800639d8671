// A DC/OS IAM login endpoint for tests, on a real socket: checks the login JWT's RS256 signature
// against the service account's public key and answers {"token": "token-1"}, "token-2", ...
import { verify, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Login {
  uid: string;
  token: string;
  exp: number;
}

export class FakeDcosLogin {
  readonly logins: Login[] = [];
  status = 200;
  /** How many of the next logins get their answer's head and then nothing (a stalled body). */
  stallNext = 0;
  /** Builds the answer's token from the login count (defaults to token-N). */
  token = (n: number) => `token-${n}`;
  private server: Server;

  constructor(private readonly publicKey: KeyObject) {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c; });
      req.on('end', () => {
        const login = JSON.parse(body) as Login;
        const [header, payload, signature] = login.token.split('.') as [string, string, string];
        const valid = verify('sha256', Buffer.from(`${header}.${payload}`), this.publicKey, Buffer.from(signature, 'base64url'));
        if (req.method !== 'POST' || !valid) { res.writeHead(401).end(); return; }
        this.logins.push(login);
        if (this.stallNext > 0) {
          this.stallNext -= 1;
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' }).write('{"tok');
          return;
        }
        res.writeHead(this.status, { 'content-type': 'application/json' }).end(JSON.stringify({ token: this.token(this.logins.length) }));
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/acs/api/v1/auth/login`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
