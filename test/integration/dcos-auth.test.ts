// --dcos-auth-credentials: the DC/OS service-account login against a fake login endpoint on a real
// socket, and Marathon calls that carry the token it returns.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Agent } from 'undici';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { MarathonClient, MarathonError } from '../../src/marathon/client.js';
import { DcosAuth, parseDcosCredentials } from '../../src/marathon/dcos-auth.js';
import { FakeDcosLogin } from '../support/fake-dcos-login.js';
import { app, startHarness } from '../support/harness.js';
import { until, within } from '../support/net.js';

const jwtPayload = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

describe('DC/OS service-account login (--dcos-auth-credentials)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  let login: FakeDcosLogin;
  let endpoint: string;
  const dispatcher = new Agent();

  before(async () => {
    login = new FakeDcosLogin(publicKey);
    endpoint = await login.listen();
  });
  after(async () => {
    await login.close();
    await dispatcher.close();
  });

  const credentials = () => parseDcosCredentials(JSON.stringify({ uid: 'turbine-svc', private_key: pem, login_endpoint: endpoint }));

  it('logs in with an RS256 JWT {uid, exp}, and renews the token before it expires', async () => {
    login.logins.length = 0;
    let now = 1_800_000_000;
    const auth = new DcosAuth(credentials(), { now: () => now });
    assert.equal(await auth.header(dispatcher), 'token=token-1');
    const first = login.logins[0]!;
    assert.equal(first.uid, 'turbine-svc');
    assert.equal(first.exp, now + 3600, 'asks for an hour, as marathon-lb does');
    assert.deepEqual(jwtPayload(first.token), { uid: 'turbine-svc', exp: now + 60 });
    assert.equal(JSON.parse(Buffer.from(first.token.split('.')[0]!, 'base64url').toString()).alg, 'RS256');

    now += 3000;
    assert.equal(await auth.header(dispatcher), 'token=token-1', 'still valid: no new login');
    assert.equal(login.logins.length, 1);
    now += 550; // 50 s before expiry
    assert.equal(await auth.header(dispatcher), 'token=token-2');
    assert.equal(login.logins.length, 2);
  });

  it('the event stream, which cannot wait, gets the token there is and a renewal in the background', async () => {
    login.logins.length = 0;
    let now = 1_800_000_000;
    const auth = new DcosAuth(credentials(), { now: () => now });
    assert.equal(auth.current(dispatcher), null, 'before the first login');
    await until(() => login.logins.length === 1, 'a login started by the stream');
    await until(() => auth.current(dispatcher) === 'token=token-1', 'the token for the next reconnect');
    now += 3590; // stale: the stale token is given, a new one fetched
    assert.equal(auth.current(dispatcher), 'token=token-1');
    await until(() => auth.current(dispatcher) === 'token=token-2', 'the renewed token');
    assert.equal(login.logins.length, 2);
  });

  it("a returned JWT's own exp, when sooner, decides when to renew", async () => {
    login.logins.length = 0;
    let now = 1_800_000_000;
    login.token = (n) => `x.${Buffer.from(JSON.stringify({ uid: 'turbine-svc', exp: now + 600 })).toString('base64url')}.sig${n}`;
    try {
      const auth = new DcosAuth(credentials(), { now: () => now });
      await auth.header(dispatcher);
      now += 500;
      await auth.header(dispatcher);
      assert.equal(login.logins.length, 1);
      now += 50;
      assert.match(await auth.header(dispatcher), /sig2$/);
    } finally {
      login.token = (n) => `token-${n}`;
    }
  });

  it('concurrent calls share one login', async () => {
    login.logins.length = 0;
    const auth = new DcosAuth(credentials());
    const headers = await Promise.all([auth.header(dispatcher), auth.header(dispatcher), auth.header(dispatcher)]);
    assert.deepEqual(new Set(headers), new Set(['token=token-1']));
    assert.equal(login.logins.length, 1);
  });

  it('Marathon calls carry the token; a 401 from Marathon renews it once', async () => {
    login.logins.length = 0;
    // Marathon accepts only the second token: the first call is refused, the client logs in again.
    const marathon = new FakeMarathon({ authorization: 'token=token-2' });
    await marathon.listen();
    const client = new MarathonClient({ urls: [marathon.url], authorization: new DcosAuth(credentials()), caCertFile: null, timeoutMs: 5000 });
    try {
      marathon.putApp(app('/web', 10100, { HAPROXY_GROUP: 'external' }), [{ host: '10.0.0.1', ports: [31000] }]);
      const { apps } = await client.fetchApps();
      assert.deepEqual(apps.map((a) => a.id), ['/web']);
      assert.equal(login.logins.length, 2);
      assert.deepEqual(client.headers(), { authorization: 'token=token-2' }, 'the event stream gets the same token');
      await client.fetchApps();
      assert.equal(login.logins.length, 2, 'no login while the token is good');
    } finally {
      await client.close();
      await marathon.close();
    }
  });

  it('a token Marathon still refuses after renewing is an auth error, not a loop', async () => {
    login.logins.length = 0;
    const marathon = new FakeMarathon({ authorization: 'token=never' });
    await marathon.listen();
    const client = new MarathonClient({ urls: [marathon.url], authorization: new DcosAuth(credentials()), caCertFile: null, timeoutMs: 5000 });
    try {
      await assert.rejects(client.fetchApps(), (e: MarathonError) => e.kind === 'auth');
      assert.equal(login.logins.length, 2);
    } finally {
      await client.close();
      await marathon.close();
    }
  });

  it('a login whose answer stalls fails after --marathon-timeout, and the next request logs in again', async () => {
    login.logins.length = 0;
    login.stallNext = 1;
    const marathon = new FakeMarathon({ authorization: 'token=token-2' });
    await marathon.listen();
    const client = new MarathonClient({ urls: [marathon.url], authorization: new DcosAuth(credentials()), caCertFile: null, timeoutMs: 300 });
    try {
      await assert.rejects(within(3000, client.fetchApps(), 'the first fetch'), (e: Error) => !e.message.includes('no answer in'));
      await within(3000, client.fetchApps(), 'the second fetch');
      assert.equal(login.logins.length, 2);
    } finally {
      login.stallNext = 0;
      await client.close();
      await marathon.close();
    }
  });

  it('a refused login is an auth error naming the endpoint', async () => {
    login.status = 403;
    try {
      await assert.rejects(new DcosAuth(credentials()).header(dispatcher), (e: MarathonError) => e.kind === 'auth' && e.message.includes(endpoint) && /HTTP 403/.test(e.message));
    } finally {
      login.status = 200;
    }
  });

  it('bad credentials are refused with the reason', () => {
    const parse = (value: unknown) => () => parseDcosCredentials(typeof value === 'string' ? value : JSON.stringify(value));
    assert.throws(parse('{not json'), /not valid JSON/);
    assert.throws(parse('/no/such/file'), /neither JSON nor a readable file/);
    assert.throws(parse({ private_key: pem, login_endpoint: endpoint }), /"uid"/);
    assert.throws(parse({ uid: 'u', private_key: 'nope', login_endpoint: endpoint }), /not a usable PEM key/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    assert.throws(parse({ uid: 'u', private_key: ec, login_endpoint: endpoint }), /must be an RSA key/);
    assert.throws(parse({ uid: 'u', private_key: pem, login_endpoint: 'ftp://x' }), /"login_endpoint"/);
  });
});

describe('Turbine with a DC/OS service account', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

  it('opens the event stream with a token at the first try, and renews a token Marathon stops taking', async () => {
    const login = new FakeDcosLogin(publicKey);
    const endpoint = await login.listen();
    const marathon = new FakeMarathon({ authorization: 'token=token-1' });
    marathon.putApp(app('/web', 10100, { HAPROXY_GROUP: 'external' }), [{ host: '127.0.0.1', ports: [31000] }]);
    const h = await startHarness({ dcosAuthCredentials: JSON.stringify({ uid: 'turbine-svc', private_key: pem, login_endpoint: endpoint }) }, marathon);
    try {
      await until(() => marathon.streamCount() === 1, 'the event stream');
      assert.equal(await h.metric('turbine_marathon_stream_reconnects_total'), 0, 'no stream was refused for want of a token');
      // The token is rotated: the stream's next connect is refused once, then carries a new token.
      marathon.requireAuthorization('token=token-2');
      marathon.dropStreams();
      await until(() => marathon.streamCount() === 1 && login.logins.length === 2, 'the stream back with a renewed token', 10_000);
      marathon.putApp(app('/api', 10101, { HAPROXY_GROUP: 'external' }), [{ host: '127.0.0.1', ports: [31001] }]);
      await h.waitTable((t) => t.services.some((s) => s.appId === '/api'), 'an app added after the rotation');
    } finally {
      await h.close();
      await login.close();
    }
  });
});
