/**
 * `cdk-scalable-ai serve`, run as the real CLI bundle in a child process (`npx projen bundle`
 * first), running the real router bundle against a real Redis-protocol server and the local server
 * speaking Bedrock Converse over HTTP/2. The child gets no AWS settings from the machine: serve
 * must sign with dummy credentials because every endpoint is local.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { startServe as spawnServe } from '../../bench/serve-process';
import { isLoopback, parseServeArgs, serveConfig } from '../../lambdas/cli/serve';
import { Failures, LocalAwsServer } from '../support/aws-protocol-server';
import { RedisServer } from '../support/redis-server';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'assets/lambdas/cli/main/index.mjs');
const SMALL = 'us.amazon.nova-micro-v1:0';
/** serve's own body limit here: above the router's maxRequestBytes (32 KiB by default), so both limits can be hit. */
const SERVE_LIMIT = 65_536;

const cleanEnv = (): NodeJS.ProcessEnv => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));

interface Served {
  readonly child: ChildProcess;
  readonly url: URL;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

/** The CLI bundle's serve on a free port, with the shared spawn helper of the load and bench scripts. */
async function startServe(args: string[]): Promise<Served> {
  const s = await spawnServe(['--port', '0', ...args], cleanEnv());
  return { child: s.child, url: new URL(s.url), stderr: s.stderrTail, exited: s.exited };
}

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  readonly json: any;
  readonly socket: Socket;
}

interface RequestOptions {
  readonly path?: string;
  readonly method?: string;
  readonly body?: string;
  readonly headers?: Record<string, string>;
  readonly agent?: http.Agent;
}

function request(url: URL, options: RequestOptions = {}): Promise<Reply> {
  return new Promise((done, fail) => {
    const body = options.body;
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: options.path ?? '/v1/chat',
      method: options.method ?? 'POST',
      agent: options.agent ?? false,
      headers: { 'content-type': 'application/json', ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }), ...options.headers },
    }, (res) => {
      const socket = res.socket;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        done({ status: res.statusCode ?? 0, headers: res.headers, text, json, socket });
      });
    });
    req.once('error', fail);
    req.end(body);
  });
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`gave up waiting for ${what}`);
}

const chat = (text: string): string => JSON.stringify({ messages: [{ role: 'user', content: text }] });

let redis: RedisServer;
let aws: LocalAwsServer;
let serve: Served;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx projen bundle" first`);
  [redis, aws] = await Promise.all([RedisServer.start(), LocalAwsServer.start()]);
  serve = await startServe(['--redis', `redis://${redis.host}:${redis.port}`, '--bedrock-endpoint', aws.http2Url, '--max-body-bytes', String(SERVE_LIMIT)]);
});

afterAll(async () => {
  if (serve && serve.child.exitCode === null) {
    serve.child.kill('SIGKILL');
    await serve.exited;
  }
  await Promise.all([aws?.close(), redis?.dispose()]);
});

describe('POST /v1/chat through the router bundle', () => {
  test('a model answers first, then the exact cache (x-cache), per local tenant', async () => {
    const question = 'Where is my parcel, the one I ordered on Monday?';
    const first = await request(serve.url, { body: chat(question) });
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('miss');
    expect(first.headers['x-tier']).toBe('small');
    expect(first.headers['x-request-id']).toEqual(expect.any(String));
    expect(first.json.output.text).toBe(`[${SMALL}] ${question}`);
    const calls = aws.callsOf(SMALL);
    expect(calls).toHaveLength(1);
    // The router's real Bedrock client: Converse over HTTP/2, signed (with serve's dummy credentials).
    expect(calls[0].httpVersion).toBe('2.0');
    expect(calls[0].headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDLOCALSERVE\//);

    const again = await request(serve.url, { body: chat(question) });
    expect(again.status).toBe(200);
    expect(again.headers['x-cache']).toBe('exact');
    expect(again.json.output.text).toBe(first.json.output.text);
    expect(aws.callsOf(SMALL)).toHaveLength(1);
    // The access log on stderr (written once the answer is sent).
    await waitFor(() => /POST \/v1\/chat 200 x-cache=exact x-tier=none \d+ ms/.test(serve.stderr()), 'the access log line');

    // Another local tenant never gets tenant "local"'s cached answer.
    const other = await request(serve.url, { body: chat(question), headers: { 'x-local-tenant': 'acme', 'x-local-user': 'ana' } });
    expect(other.headers['x-cache']).toBe('miss');
    expect(aws.callsOf(SMALL)).toHaveLength(2);
  });

  test('the router\'s 4xx answers pass through: a bad body, an unknown route, a body over the router\'s limit', async () => {
    const bad = await request(serve.url, { body: JSON.stringify({ messages: 'hello' }) });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('invalid');

    const notFound = await request(serve.url, { path: '/v1/nothing', method: 'GET' });
    expect(notFound.status).toBe(404);
    expect(notFound.json.error.code).toBe('not-found');

    // Over the router's maxRequestBytes (32 KiB), under serve's limit: the router's own 413.
    const large = await request(serve.url, { body: chat('x'.repeat(40_000)) });
    expect(large.status).toBe(413);
    expect(large.json.error.message).toMatch(/the limit is 32768 bytes/);
  });

  test('a body over --max-body-bytes is answered 413 by serve, unread, and the connection closed', async () => {
    const declared = await request(serve.url, { body: chat('y'.repeat(SERVE_LIMIT)) });
    expect(declared.status).toBe(413);
    expect(declared.json.error.message).toMatch(/--max-body-bytes 65536/);
    expect(declared.headers.connection).toBe('close');

    // Without content-length (chunked): cut off once the limit is passed.
    const chunked = await new Promise<Reply>((done, fail) => {
      const req = http.request({ host: serve.url.hostname, port: serve.url.port, path: '/v1/chat', method: 'POST', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, text: '', json: JSON.parse(Buffer.concat(chunks).toString('utf8')), socket: res.socket }));
      });
      req.once('error', fail);
      for (let i = 0; i < 10; i++) req.write('z'.repeat(10_000));
      req.end();
    });
    expect(chunked.status).toBe(413);
    expect(chunked.json.error.code).toBe('too-large');
  });

  test('a malformed local identity is refused before the router', async () => {
    const reply = await request(serve.url, { body: chat('hi'), headers: { 'x-local-tenant': 'a/b' } });
    expect(reply.status).toBe(400);
    expect(reply.json.error.code).toBe('invalid-local-identity');
  });
});

describe('refusals', () => {
  test('a non-loopback --host is refused (exit 2) unless --allow-remote', async () => {
    const { code, stderr } = await new Promise<{ code: number; stderr: string }>((done) => {
      execFile(process.execPath, [CLI, 'serve', '--host', '0.0.0.0'], { env: cleanEnv(), timeout: 30_000 }, (err, _out, errText) => {
        done({ code: err ? Number(err.code) : 0, stderr: errText });
      });
    });
    expect(code).toBe(2);
    expect(stderr).toMatch(/--host 0\.0\.0\.0 is not a loopback address: serve has no authentication/);

    expect(() => parseServeArgs(['--host', '192.168.1.10'])).toThrow(/not a loopback address/);
    expect(parseServeArgs(['--host', '192.168.1.10', '--allow-remote']).host).toBe('192.168.1.10');
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopback(host)).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '::ffff:10.0.0.1']) expect(isLoopback(host)).toBe(false);
  });

  test('--redis with a password is refused: the router takes AUTH tokens from Secrets Manager only', () => {
    expect(() => serveConfig({ redis: 'redis://:secret@127.0.0.1:6379' })).toThrow(/connects without AUTH/);
    expect(serveConfig({ redis: 'rediss://cache.local' }).cache).toEqual({ host: 'cache.local', port: 6379, tls: true, keyPrefix: 'sai:', timeoutMs: 200 });
  });
});

describe('shutdown', () => {
  test('SIGTERM lets the request in flight finish, closes idle keep-alive connections and exits 0', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    // An idle keep-alive connection: the server must close it.
    const idle = await request(serve.url, { body: chat('Do you ship to Norway?'), agent });
    expect(idle.status).toBe(200);
    const idleClosed = new Promise<void>((done) => idle.socket.once('close', () => done()));

    // A request in flight: its model call is held by the model server until after the signal.
    aws.failNext(SMALL, Failures.hang(1_500));
    const callsBefore = aws.callsOf(SMALL).length;
    const inFlight = request(serve.url, { body: chat('Can I pay with a gift card?') });
    await waitFor(() => aws.callsOf(SMALL).length > callsBefore, 'the model call of the request in flight');

    serve.child.kill('SIGTERM');
    await idleClosed;
    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect(answered.headers.connection).toBe('close');
    expect(await serve.exited).toBe(0);
    await expect(request(serve.url, { body: chat('still there?') })).rejects.toThrow(/ECONNREFUSED/);
    agent.destroy();
  });
});
