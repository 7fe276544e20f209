/**
 * What `serve` hands a handler and makes of its answers, over real sockets: the CLI bundle runs a
 * stand-in handler (`--router-bundle`) that echoes its event, answers with cookies and a base64
 * body, throws, or never answers.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, startServe } from '../../bench/serve-process';

const STAND_IN = `
exports.handler = async (event, context) => {
  switch (event.rawPath) {
    case '/echo': return { event, remainingMs: context.getRemainingTimeInMillis() };
    case '/cookies': return {
      statusCode: 201,
      headers: { 'Content-Type': 'application/octet-stream', 'x-cache': 'miss' },
      cookies: ['a=1; Path=/', 'b=2; HttpOnly'],
      body: Buffer.from([0, 1, 2, 255]).toString('base64'),
      isBase64Encoded: true,
    };
    case '/throw': throw new Error('boom');
    default: return new Promise(() => undefined);
  }
};
`;

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

function request(port: number, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((done, fail) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.once('error', fail);
    req.end(body);
  });
}

let dir: string;
let child: ChildProcess;
let port: number;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx projen bundle" first`);
  dir = mkdtempSync(join(tmpdir(), 'serve-stand-in-'));
  const bundle = join(dir, 'index.js');
  writeFileSync(bundle, STAND_IN);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  const served = await startServe(['--port', '0', '--router-bundle', bundle, '--timeout-ms', '500', '--tenant', 'acme', '--quiet',
    '--bedrock-endpoint', 'http://127.0.0.1:9'], env);
  child = served.child;
  port = Number(new URL(served.url).port);
});

afterAll(() => {
  child?.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the event: route key, query, cookies, headers without the local identity, JWT claims from it, the deadline as remaining time', async () => {
  const reply = await request(port, '/echo?q=a&q=b', { 'x-local-user': 'ana', 'cookie': 'session=1; theme=dark', 'content-type': 'application/json' }, '{"x":1}');
  expect(reply.status).toBe(200);
  expect(reply.headers['content-type']).toBe('application/json');
  const { event, remainingMs } = JSON.parse(reply.body.toString('utf8'));
  expect(event).toMatchObject({
    version: '2.0',
    routeKey: 'POST /echo',
    rawPath: '/echo',
    rawQueryString: 'q=a&q=b',
    queryStringParameters: { q: 'a,b' },
    cookies: ['session=1', 'theme=dark'],
    body: '{"x":1}',
    isBase64Encoded: false,
    requestContext: { http: { method: 'POST', path: '/echo', sourceIp: '127.0.0.1' }, authorizer: { jwt: { claims: { tenant_id: 'acme', sub: 'ana' } } } },
  });
  expect(event.headers['x-local-user']).toBeUndefined();
  expect(event.headers.cookie).toBeUndefined();
  expect(remainingMs).toBeGreaterThan(0);
  expect(remainingMs).toBeLessThanOrEqual(500);
});

test('a structured result: its status, headers, one set-cookie per cookie and the decoded base64 body', async () => {
  const reply = await request(port, '/cookies');
  expect(reply.status).toBe(201);
  expect(reply.headers['content-type']).toBe('application/octet-stream');
  expect(reply.headers['x-cache']).toBe('miss');
  expect(reply.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; HttpOnly']);
  expect(reply.body).toEqual(Buffer.from([0, 1, 2, 255]));
});

test('a handler that throws is a 500 without details; one that does not answer in --timeout-ms is a 504', async () => {
  const thrown = await request(port, '/throw');
  expect(thrown.status).toBe(500);
  expect(JSON.parse(thrown.body.toString('utf8'))).toEqual({ message: 'Internal Server Error' });

  const hung = await request(port, '/hang');
  expect(hung.status).toBe(504);
  expect(JSON.parse(hung.body.toString('utf8')).error.code).toBe('timeout');
});
