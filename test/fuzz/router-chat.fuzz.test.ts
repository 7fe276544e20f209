/**
 * Property-based tests of `POST /v1/chat` and of hostile events on every route of the router
 * handler, in-process against the real local servers (router-fixture.ts).
 *
 * Properties, for random and adversarial input (any JSON, the right shape with one field wrong,
 * huge and deep bodies, control characters, NUL, lone surrogates, polluting keys, hostile route
 * keys, headers, query strings, authorizer contexts and ids):
 * - every answer is 2xx, or 4xx with `{ "error": { "code", "message" } }`: never a crash, never a 5xx;
 * - a refused request (4xx) writes nothing (no Redis key or value, no pgvector or profile row
 *   changes) and calls no model and no embedding model; no input makes a cache level fail;
 * - an answered chat writes only under its own tenant's key prefix, and tenants whose ids differ
 *   (even only by Unicode normalisation, case, a lone surrogate or a key separator) never share an answer.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import fc from 'fast-check';
import { fcParams, hostileId, hostileText, KEY_FRAGMENTS, POLLUTING_KEYS, rawBodies, validChat, withValueAt, wrongValue } from './hostile';
import { admin, event, invoke, MAX_REQUEST_BYTES, refusedWritesNothing, TENANT_A_USER_1, useRouterFixture, type Reply } from './router-fixture';
import { idHash } from '../../lambdas/core/hashing';
import { ROUTER_ROUTES } from '../../lambdas/core/router-dispatch';
import { KEY_PREFIX } from '../handlers/cache-hierarchy-config';
import { ACCOUNT, httpApiEvent } from '../support/lambda-harness';

useRouterFixture('router-chat-fuzz-test');

describe('POST /v1/chat', () => {
  test('any body: an answer or a 4xx with a message; a refused one writes nothing and calls no model', async () => {
    const bodies = fc.oneof(rawBodies(validChat), validChat.map((b) => JSON.stringify(b)));
    await fc.assert(
      fc.asyncProperty(bodies, fc.boolean(), async (raw, base64) => {
        const e = event('POST /v1/chat', raw);
        const sent = base64 ? { ...e, body: Buffer.from(raw, 'utf8').toString('base64'), isBase64Encoded: true } : e;
        const reply = await refusedWritesNothing(`chat ${JSON.stringify(raw.slice(0, 200))}`, () => invoke(sent));
        if (reply.status === 200) expect(typeof reply.body.output.text).toBe('string');
      }),
      fcParams(120),
    );
  });

  test('bodies near, at and over maxRequestBytes: 413 over it, with nothing written', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('a', 'é', '€', '\ud83d\ude00', '\u0000', '\ud800'), fc.integer({ min: -40, max: 40 }), async (ch, delta) => {
        const envelope = (s: string): string => JSON.stringify({ messages: [{ role: 'user', content: s }] });
        const per = Buffer.byteLength(envelope(ch), 'utf8') - Buffer.byteLength(envelope(''), 'utf8');
        const raw = envelope(ch.repeat(Math.max(1, Math.floor((MAX_REQUEST_BYTES - Buffer.byteLength(envelope(''), 'utf8') + delta) / per))));
        const reply = await refusedWritesNothing('near the limit', () => invoke(event('POST /v1/chat', raw)));
        if (Buffer.byteLength(raw, 'utf8') > MAX_REQUEST_BYTES) expect(reply.status).toBe(413);
        else expect(reply.status).not.toBe(413);
      }),
      fcParams(30),
    );
  });

  test('a chat from any tenant id writes only under that tenant\'s key prefix; ids that differ never share an answer', async () => {
    // Role names cannot hold "/" (the ARN's separator); everything else may be hostile.
    const role = hostileId.filter((r) => r.length > 0 && !r.includes('/'));
    const variant = (r: string): fc.Arbitrary<string> => fc.constantFrom(
      r.normalize('NFD'), r.normalize('NFKC'), r.toUpperCase(), r.toLowerCase(), `${r} `, `${r}:`, `${r}\u0000`, r.replace(/[\ud800-\udfff]/g, '\ufffd'), `${r}x`,
    ).filter((v) => v !== r && !v.includes('/'));
    await fc.assert(
      fc.asyncProperty(role.chain((r) => fc.tuple(fc.constant(r), variant(r))), fc.constantFrom('alice', 'u:1', 'exact:', '\u0000'), async ([r1, r2], session) => {
        const question = `Which plans do you offer? ${randomUUID()}`;
        const body = JSON.stringify({ messages: [{ role: 'user', content: question }] });
        const tenants = [r1, r2].map((r) => `arn:aws:iam::${ACCOUNT}:role/${r}`);
        const replies: Reply[] = [];
        for (const [i, r] of [r1, r2].entries()) {
          const before = new Set(await admin.keys(`${KEY_PREFIX}exact:*`));
          const reply = await refusedWritesNothing(`tenant ${JSON.stringify(r)}`, () => invoke(event('POST /v1/chat', body, `arn:aws:sts::${ACCOUNT}:assumed-role/${r}/${session}`)));
          replies.push(reply);
          const added = (await admin.keys(`${KEY_PREFIX}exact:*`)).filter((k) => !before.has(k));
          const ids = `${r}/${session}`;
          const valid = !/[\ud800-\udfff]/.test(ids.replace(/[\ud800-\udbff][\udc00-\udfff]/g, '')) && !ids.includes('\u0000');
          if (!valid) {
            // An id that is not well-formed Unicode would hash like its U+FFFD twin, and PostgreSQL
            // cannot hold one with NUL: no caller.
            expect(reply.status).toBe(401);
            continue;
          }
          expect(reply.status).toBe(200);
          for (const k of added) expect(k.startsWith(`${KEY_PREFIX}exact:${idHash(tenants[i])}:`)).toBe(true);
        }
        // The second tenant asked the same question: never answered from the first one's entry.
        if (replies.length === 2 && replies[1].status === 200) expect(replies[1].headers['x-cache']).toBe('miss');
      }),
      fcParams(40),
    );
  });
});

describe('hostile events', () => {
  const authorizer = fc.oneof(
    fc.constant(undefined),
    fc.jsonValue({ maxDepth: 3 }),
    fc.record({ iam: fc.record({ userArn: fc.oneof(hostileText, wrongValue, hostileId.map((id) => `arn:aws:sts::${ACCOUNT}:assumed-role/${id}`)), cognitoIdentity: fc.oneof(wrongValue, fc.record({ identityId: fc.oneof(hostileId, wrongValue) })) }, { requiredKeys: [] }) }),
    fc.record({ jwt: fc.record({ claims: fc.oneof(wrongValue, fc.dictionary(fc.oneof(fc.constantFrom('sub', 'tenant_id', ...POLLUTING_KEYS), hostileText), fc.oneof(hostileId, wrongValue))) }) }),
    fc.dictionary(fc.constantFrom(...POLLUTING_KEYS, 'iam', 'jwt', 'lambda'), wrongValue),
  );
  const headers = fc.oneof(
    fc.constant(undefined),
    wrongValue,
    fc.dictionary(fc.oneof(fc.constantFrom('x-origin-verify', 'x-edge-tenant', 'content-type', 'idempotency-key', 'authorization', ...POLLUTING_KEYS), hostileText), fc.oneof(hostileText, wrongValue)),
  );
  const routeKey = fc.oneof(fc.constantFrom(...ROUTER_ROUTES, 'GET /v1/health'), hostileText, wrongValue, fc.constantFrom(...KEY_FRAGMENTS, 'POST /v1/chat ', 'post /v1/chat', 'POST /v1/chat/'));
  const body = fc.oneof(rawBodies(validChat), wrongValue);

  test('any route key, headers, authorizer context, body and query: never a 5xx; a refusal writes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(routeKey, headers, authorizer, body, fc.oneof(wrongValue, fc.dictionary(fc.oneof(fc.constant('q'), hostileText), hostileText)), fc.oneof(fc.boolean(), wrongValue), async (key, hdrs, auth, b, query, base64) => {
        const base = httpApiEvent(undefined, TENANT_A_USER_1, {});
        const hostile = {
          ...base,
          routeKey: key,
          headers: hdrs,
          body: b,
          isBase64Encoded: base64,
          queryStringParameters: query,
          requestContext: { ...base.requestContext, authorizer: auth },
        } as unknown as APIGatewayProxyEventV2;
        await refusedWritesNothing(`event ${JSON.stringify({ key, auth })?.slice(0, 300)}`, () => invoke(hostile));
      }),
      fcParams(120),
    );
  });
});


test('the properties\' shapes', () => {
  // withValueAt keeps "__proto__" an own key, as JSON.parse does: the polluting cases reach the handler.
  expect(JSON.stringify(withValueAt({ a: 1 }, ['__proto__'], { x: 1 }))).toBe('{"a":1,"__proto__":{"x":1}}');
});
