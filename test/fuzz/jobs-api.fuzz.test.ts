/**
 * Property-based tests of the jobs API handler (`POST /v1/jobs`, `GET /v1/jobs/{id}`) against
 * the real local servers: DynamoDB (dynalite, with the results and idempotency tables) and SQS.
 *
 * Properties, for random and adversarial bodies, headers, ids, cursors and authorizer contexts:
 * - every answer is 2xx, or 4xx with `{ "error": { "code", "message" } }`: never a crash, never a 5xx;
 * - a refused submission stores nothing (no item in either table) and enqueues nothing;
 * - an accepted one enqueues one message per request, each made only of the characters SQS
 *   accepts in a message body, that parses back to exactly the request submitted.
 */
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import fc from 'fast-check';
import { fcParams, hostileId, hostileText, NASTY_CHARS, oneWrongField, POLLUTING_KEYS, prototypeIsClean, rawBodies, validChat, wrongValue } from './hostile';
import type { JobMessage } from '../../lambdas/core/jobs/job-model';
import type * as JobsApi from '../../lambdas/jobs-api/handler';
import { callApi, getEvent, IDEMPOTENCY_TABLE, jobsConfig, JOBS_TABLES, RESULTS_TABLE, routerConfig, submitEvent, TENANT_A_USER_1, useEnvironment, type ApiResponse } from '../jobs/harness';
import { TransactionalDynalite } from '../support/dynamodb-transactions';
import { ACCOUNT } from '../support/lambda-harness';
import { LocalSqsServer } from '../support/sqs-protocol-server';

const MAX_ITEMS = 4;
/** The characters SQS accepts in a message body (SendMessage: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF). */
const SQS_BODY = /^[\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]*$/u;

let dynamo: TransactionalDynalite;
let sqs: LocalSqsServer;
let queueUrl: string;
let handler: typeof JobsApi.handler;
let env: ReturnType<typeof useEnvironment>;
const submittedIds: string[] = [];

beforeAll(async () => {
  [dynamo, sqs] = await Promise.all([TransactionalDynalite.start(JOBS_TABLES), LocalSqsServer.start()]);
  queueUrl = sqs.createQueue('jobs');
  env = useEnvironment({ ...dynamo.env(), ...sqs.env() }, {
    router: routerConfig({ maxRequestBytes: 1_024 }),
    jobs: jobsConfig(queueUrl, { maxItemsPerJob: MAX_ITEMS }),
  });
  ({ handler } = jest.requireActual<typeof JobsApi>('../../lambdas/jobs-api/handler'));
}, 60_000);

afterAll(async () => {
  env?.restore();
  await Promise.all([dynamo?.stop(), sqs?.close()]);
});

async function itemCount(table: string): Promise<number> {
  const out = await dynamo.client().send(new ScanCommand({ TableName: table, Select: 'COUNT' }));
  return out.Count ?? 0;
}

async function state(): Promise<{ results: number; idempotency: number; messages: number }> {
  const [results, idempotency] = await Promise.all([itemCount(RESULTS_TABLE), itemCount(IDEMPOTENCY_TABLE)]);
  return { results, idempotency, messages: sqs.messages(queueUrl).length };
}

function expectAnswerOrRefusal(r: ApiResponse<any>, what: string): void {
  if (r.status >= 500 || r.status < 200) throw new Error(`${what}: answered ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  if (r.status >= 400) {
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.body).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
    expect(r.body.error!.message.length).toBeGreaterThan(0);
  }
  expect(prototypeIsClean()).toBe(true);
}

const envelope = fc.oneof(
  validChat.map((request) => ({ request })),
  fc.array(validChat, { minLength: 1, maxLength: MAX_ITEMS }).map((requests) => ({ requests })),
  fc.array(validChat, { minLength: 1, maxLength: 2 }).map((requests) => ({ requests, mode: 'queue' })),
);

const bodies = fc.oneof(
  envelope.map((e) => JSON.stringify(e)),
  rawBodies(envelope),
  oneWrongField(envelope).map((e) => JSON.stringify(e) ?? 'null'),
  rawBodies(validChat).map((chat) => `{"request":${chat}}`),
  fc.array(validChat, { minLength: MAX_ITEMS + 1, maxLength: MAX_ITEMS + 3 }).map((requests) => JSON.stringify({ requests })),
  fc.constantFrom(
    '{"request":{"messages":[{"role":"user","content":"hi"}]},"mode":"bulk"}',
    '{"requests":{"0":{"messages":[{"role":"user","content":"hi"}]},"length":1}}',
    '{"__proto__":{"request":{"messages":[{"role":"user","content":"hi"}]}}}',
    '{"request":{"messages":[{"role":"user","content":"hi"}]},"constructor":{"prototype":{"polluted":true}}}',
    '{"request":{"messages":[{"role":"user","content":"\\uffff\\ufffe"}]}}',
  ),
);

const idempotencyKey = fc.oneof(fc.constant(undefined), hostileText, fc.stringMatching(/^[\x20-\x7e]{1,255}$/), fc.constantFrom(' ', 'k'.repeat(256), 'a\u0000b', '\ud800'));

describe('POST /v1/jobs', () => {
  test('any body and Idempotency-Key: 202 or a 4xx; a refusal stores and enqueues nothing; an accepted job\'s messages are valid SQS bodies of its requests', async () => {
    await fc.assert(
      fc.asyncProperty(bodies, idempotencyKey, async (raw, key) => {
        const before = await state();
        const event = submitEvent({ raw, headers: key === undefined ? {} : { 'idempotency-key': key } });
        const r = await callApi<any>(handler, env.captured, event);
        const what = `submit ${JSON.stringify(raw.slice(0, 200))} key ${JSON.stringify(key)}`;
        expectAnswerOrRefusal(r, what);
        const after = await state();
        if (r.status >= 400) {
          expect({ what, ...after }).toEqual({ what, ...before });
          return;
        }
        submittedIds.push(r.body.jobId);
        const sent = sqs.messages(queueUrl).slice(before.messages);
        const parsed = JSON.parse(raw) as { request?: unknown; requests?: unknown[] };
        const requests = parsed.requests ?? [parsed.request];
        if (r.headers['idempotent-replayed'] === 'true') {
          expect(sent).toHaveLength(0);
          return;
        }
        expect(sent).toHaveLength(requests.length);
        for (const m of sent) {
          expect({ what, valid: SQS_BODY.test(m.body) }).toEqual({ what, valid: true });
          const message = JSON.parse(m.body) as JobMessage;
          // As JSON carries it: a -0 in the body is 0 in any JSON message (toEqual tells them apart).
          expect(message.request).toEqual(JSON.parse(JSON.stringify(requests[message.index])));
        }
      }),
      fcParams(120),
    );
  });
});

describe('GET /v1/jobs/{id}', () => {
  test('any id, cursor, limit and caller: 200, 404 or 400, never a 5xx; another caller\'s job reads as missing', async () => {
    // One job of tenant A's user 1 to look for (a personal one: a conversation).
    const own = await callApi<any>(handler, env.captured, submitEvent({ body: { request: { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }] } } }));
    expect(own.status).toBe(202);
    const ids = [own.body.jobId as string, ...submittedIds];
    const jobId = fc.oneof(fc.constantFrom(...ids), fc.uuid(), hostileId, fc.constantFrom(...ids).map((id) => id.toUpperCase()), fc.constantFrom(...ids).map((id) => `${id}/../x`));
    const caller = fc.oneof(
      fc.constant(TENANT_A_USER_1),
      fc.constant(null),
      hostileId.map((id) => `arn:aws:sts::${ACCOUNT}:assumed-role/${id}`),
      hostileId.filter((id) => id.length > 0 && !id.includes('/')).map((id) => `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/${id}`),
    );
    const query = fc.dictionary(fc.constantFrom('cursor', 'limit', ...POLLUTING_KEYS), fc.oneof(hostileText, fc.constantFrom('1', '100', '101', '0', '-1', '1e2', ' 5', 'AAAA', ...NASTY_CHARS)), { maxKeys: 3 });
    await fc.assert(
      fc.asyncProperty(jobId, caller, query, async (id, userArn, q) => {
        const before = await state();
        const event: APIGatewayProxyEventV2 = { ...getEvent(id, { userArn }), queryStringParameters: q };
        const r = await callApi<any>(handler, env.captured, event);
        expectAnswerOrRefusal(r, `get ${JSON.stringify(id)} by ${JSON.stringify(userArn)} ${JSON.stringify(q)}`);
        expect(await state()).toEqual(before);
        if (id === own.body.jobId && userArn !== TENANT_A_USER_1) expect(r.status).not.toBe(200);
        if (r.status === 200) expect(r.body.jobId).toBe(id);
      }),
      fcParams(120),
    );
  });

  test('hostile authorizer contexts are 401, never 5xx', async () => {
    const authorizer = fc.oneof(
      wrongValue,
      fc.record({ iam: fc.record({ userArn: fc.oneof(wrongValue, hostileText) }) }),
      fc.record({ jwt: fc.record({ claims: wrongValue }) }),
    );
    await fc.assert(
      fc.asyncProperty(authorizer, fc.constantFrom('POST /v1/jobs', 'GET /v1/jobs/{id}'), async (auth, route) => {
        const base = route === 'POST /v1/jobs' ? submitEvent({ body: { request: { messages: [{ role: 'user', content: 'hi' }] } } }) : getEvent(submittedIds[0] ?? 'x');
        const before = await state();
        const event = { ...base, requestContext: { ...base.requestContext, authorizer: auth } } as unknown as APIGatewayProxyEventV2;
        const r = await callApi<any>(handler, env.captured, event);
        expectAnswerOrRefusal(r, `${route} with ${JSON.stringify(auth)}`);
        if (r.status >= 400) expect(await state()).toEqual(before);
      }),
      fcParams(60),
    );
  });
});
