/**
 * Property-based tests of the router's other routes (`GET /v1/static-answers`, `PUT
 * /v1/context/preferences`, `DELETE /v1/context`, `GET`/`PUT /v1/profile`, `POST /v1/feedback`),
 * in-process against the real local servers (router-fixture.ts): whatever the body, query or
 * user, every answer is 2xx or a 4xx with an error message, never a 5xx, and a refusal writes
 * (and evicts) nothing and calls no model.
 */
import fc from 'fast-check';
import { fcParams, hostileId, hostileQuestion, hostileText, NASTY_CHARS, oneWrongField, POLLUTING_KEYS, rawBodies, wrongValue } from './hostile';
import { answeredIds, event, invoke, refusedWritesNothing, useRouterFixture } from './router-fixture';
import { ACCOUNT } from '../support/lambda-harness';

useRouterFixture('router-user-routes-fuzz-test');

describe('GET /v1/static-answers', () => {
  test('any question: 200, 404 or 400; nothing written, no model called', async () => {
    const question = fc.oneof(hostileText, hostileQuestion, fc.constantFrom('What is your return policy?', ' how do I return an item ', 'x'.repeat(1_025), '\u0000'), fc.string({ minLength: 1_000, maxLength: 1_100 }));
    await fc.assert(
      fc.asyncProperty(question, async (q) => {
        const e = { ...event('GET /v1/static-answers', undefined), queryStringParameters: { q } };
        const reply = await refusedWritesNothing(`static ${JSON.stringify(q.slice(0, 100))}`, () => invoke(e));
        expect([200, 400, 404]).toContain(reply.status);
        if (reply.status === 200) expect(reply.body.output.text).toBe('Returns are free within 30 days.');
      }),
      fcParams(100),
    );
  });
});

describe('PUT /v1/context/preferences and DELETE /v1/context', () => {
  const validPreferences = fc.record({
    preferences: fc.dictionary(fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/), fc.oneof(hostileText, fc.string({ maxLength: 256 })), { maxKeys: 32 }),
  });
  test('any body: 204 or a 4xx; a refused one writes nothing', async () => {
    const anyNames = fc.dictionary(fc.oneof(hostileText, fc.constantFrom(...POLLUTING_KEYS)), hostileText)
      .map((p) => JSON.stringify({ preferences: p }));
    const bodies = fc.oneof(rawBodies(validPreferences), anyNames);
    await fc.assert(
      fc.asyncProperty(bodies, fc.constantFrom('PUT /v1/context/preferences', 'DELETE /v1/context'), async (raw, route) => {
        const reply = await refusedWritesNothing(`${route} ${JSON.stringify(raw.slice(0, 200))}`, () => invoke(event(route, raw)));
        if (route === 'DELETE /v1/context') expect(reply.status).toBe(204);
      }),
      fcParams(100),
    );
  });
});

describe('GET and PUT /v1/profile', () => {
  const validProfile = fc.record(
    {
      displayName: fc.oneof(hostileText, fc.string({ minLength: 1, maxLength: 100 })).filter((s) => s.length > 0 && s.length <= 100),
      locale: fc.constantFrom('en-GB', 'de', 'zh-Hant-TW'),
      segment: fc.oneof(hostileText, fc.constantFrom('premium', ':u:', '\u0000')).filter((s) => s.length > 0 && s.length <= 100),
      attributes: fc.dictionary(fc.stringMatching(/^[A-Za-z0-9_.-]{1,40}$/), fc.oneof(hostileText, fc.string({ maxLength: 200 })), { maxKeys: 20 }),
    },
    { requiredKeys: [] },
  );
  test('any body from any user: 200/204/404 or a 4xx; a refused one writes nothing', async () => {
    const user = fc.oneof(fc.constantFrom('user-1', 'user-2'), hostileId.filter((s) => s.length > 0));
    await fc.assert(
      fc.asyncProperty(fc.oneof(rawBodies(validProfile), oneWrongField(validProfile).map((b) => JSON.stringify(b) ?? 'null')), user, fc.constantFrom('PUT /v1/profile', 'GET /v1/profile'), async (raw, u, route) => {
        const reply = await refusedWritesNothing(`${route} ${JSON.stringify(raw.slice(0, 200))} by ${JSON.stringify(u.slice(0, 50))}`, () =>
          invoke(event(route, route === 'GET /v1/profile' ? undefined : raw, `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/${u}`)));
        if (reply.status === 200) expect(reply.headers['cache-control']).toContain('no-store');
      }),
      fcParams(100),
    );
  });
});

describe('POST /v1/feedback', () => {
  test('any body: 2xx or a 4xx; a refused one writes (and evicts) nothing', async () => {
    // Some answers to give feedback on.
    for (const q of ['What are your opening hours?', 'Do you ship to Canada?']) {
      expect((await invoke(event('POST /v1/chat', JSON.stringify({ messages: [{ role: 'user', content: q }] })))).status).toBe(200);
    }
    const answered = fc.constantFrom(...answeredIds);
    const requestId = fc.oneof(answered, fc.uuid(), hostileId, wrongValue, answered.map((id) => id.toUpperCase()));
    const verdict = fc.oneof(fc.constantFrom('right', 'wrong', 'WRONG', 'wrong '), wrongValue);
    const valid = fc.record({ requestId, verdict });
    const bodies = fc.oneof(valid.map((b) => JSON.stringify(b)), rawBodies(valid), fc.constantFrom(...NASTY_CHARS));
    await fc.assert(
      fc.asyncProperty(bodies, async (raw) => {
        await refusedWritesNothing(`feedback ${JSON.stringify(raw.slice(0, 200))}`, () => invoke(event('POST /v1/feedback', raw)));
      }),
      fcParams(100),
    );
  });
});

