import { lastUserText, parseChatRequest, type RequestLimits } from '../../lambdas/core/chat-request';
import { HttpError } from '../../lambdas/core/errors';

const LIMITS: RequestLimits = { maxRequestBytes: 32_768, maxMessages: 5, tierIds: ['small', 'medium', 'large'] };

/** Parses `body` and returns the HttpError it throws; fails the test when nothing (or something else) is thrown. */
function rejectionOf(body: string | undefined, limits: RequestLimits = LIMITS): HttpError {
  let caught: unknown;
  try {
    parseChatRequest(body, limits);
  } catch (err) {
    caught = err;
  }
  if (caught === undefined) throw new Error(`expected ${JSON.stringify(body)?.slice(0, 120)} to be rejected, but it was accepted`);
  expect(caught).toBeInstanceOf(HttpError);
  return caught as HttpError;
}

function json(value: unknown): string {
  return JSON.stringify(value);
}

const user = (content: unknown) => ({ role: 'user', content });
const assistant = (content: unknown) => ({ role: 'assistant', content });

describe('parseChatRequest: valid requests', () => {
  test('string content becomes the message text', () => {
    const req = parseChatRequest(json({ messages: [user('What are your opening hours?')] }), LIMITS);
    expect(req.messages).toEqual([{ role: 'user', text: 'What are your opening hours?' }]);
    expect(req.system).toBeUndefined();
    expect(req.maxTokens).toBeUndefined();
    expect(req.temperature).toBeUndefined();
    expect(req.tierHint).toBeUndefined();
  });

  test('block content is reduced to the text of its blocks, in order', () => {
    const req = parseChatRequest(json({ messages: [user([{ text: 'first block' }, { text: 'second block' }])] }), LIMITS);
    expect(req.messages).toHaveLength(1);
    expect(req.messages[0].role).toBe('user');
    // Both blocks survive, in order, separated by whitespace (never glued into "blocksecond").
    expect(req.messages[0].text).toMatch(/^first block\s+second block$/);
  });

  test('optional fields are carried over; `tier` becomes the tier hint', () => {
    const req = parseChatRequest(
      json({
        messages: [user('hi'), assistant([{ text: 'hello' }]), user('compare plans')],
        system: 'You are a shop assistant.',
        maxTokens: 256,
        temperature: 0.2,
        tier: 'medium',
      }),
      LIMITS,
    );
    expect(req.messages.map((m) => [m.role, m.text])).toEqual([
      ['user', 'hi'],
      ['assistant', 'hello'],
      ['user', 'compare plans'],
    ]);
    expect(req.system).toBe('You are a shop assistant.');
    expect(req.maxTokens).toBe(256);
    expect(req.temperature).toBe(0.2);
    expect(req.tierHint).toBe('medium');
    expect(lastUserText(req)).toBe('compare plans');
  });

  test.each([0, 1])('temperature %p (a bound of [0, 1]) is accepted', (temperature) => {
    expect(parseChatRequest(json({ messages: [user('hi')], temperature }), LIMITS).temperature).toBe(temperature);
  });

  test('maxTokens 1 (the smallest allowed) is accepted', () => {
    expect(parseChatRequest(json({ messages: [user('hi')], maxTokens: 1 }), LIMITS).maxTokens).toBe(1);
  });

  test('exactly maxMessages messages are accepted', () => {
    const messages = [user('a'), assistant('b'), user('c'), assistant('d'), user('e')];
    expect(messages).toHaveLength(LIMITS.maxMessages);
    expect(parseChatRequest(json({ messages }), LIMITS).messages).toHaveLength(LIMITS.maxMessages);
  });
});

describe('parseChatRequest: 400 with a message that names the field', () => {
  test.each([
    ['undefined body', undefined],
    ['empty body', ''],
  ])('%s', (_name, body) => {
    const err = rejectionOf(body);
    expect(err.statusCode).toBe(400);
    expect(err.reason).toBe('invalid');
    expect(err.message).toMatch(/body/i);
  });

  test('invalid JSON', () => {
    const err = rejectionOf('{"messages": [');
    expect(err.statusCode).toBe(400);
    expect(err.reason).toBe('invalid');
    expect(err.message).toMatch(/JSON/);
  });

  const cases: Array<[string, unknown, RegExp]> = [
    ['messages missing', {}, /messages/],
    ['messages not an array', { messages: 'hello' }, /messages/],
    ['messages an object', { messages: { role: 'user', content: 'hi' } }, /messages/],
    ['messages empty', { messages: [] }, /messages.*empty|empty.*messages/],
    ['unknown role', { messages: [{ role: 'system', content: 'hi' }] }, /messages\.0\.role/],
    ['empty string content', { messages: [user('')] }, /messages\.0\.content/],
    ['blank string content', { messages: [user(' \n\t ')] }, /messages\.0\.content/],
    ['empty block list', { messages: [user([])] }, /messages\.0\.content/],
    ['blocks with only blank text', { messages: [user([{ text: '' }, { text: '  ' }])] }, /messages\.0\.content/],
    ['content of the wrong type', { messages: [user(42)] }, /messages\.0\.content/],
    ['empty content in a later turn', { messages: [user('hi'), assistant(''), user('again')] }, /messages\.1\.content/],
    ['two user turns in a row', { messages: [user('a'), user('b')] }, /messages\.1\.role/],
    ['starting with the assistant', { messages: [assistant('a'), user('b')] }, /messages\.0\.role/],
    ['last turn from the assistant', { messages: [user('a'), assistant('b')] }, /last message.*user/],
    ['unknown top-level property', { messages: [user('hi')], stream: true }, /"stream"/],
    ['unknown property in a message', { messages: [{ role: 'user', content: 'hi', name: 'bob' }] }, /messages\.0\b.*"name"/],
    ['unknown property in a content block', { messages: [user([{ text: 'hi', image: 'x' }])] }, /messages\.0\.content\b.*"image"/],
    ['maxTokens not an integer', { messages: [user('hi')], maxTokens: 1.5 }, /maxTokens/],
    ['maxTokens zero', { messages: [user('hi')], maxTokens: 0 }, /maxTokens/],
    ['maxTokens negative', { messages: [user('hi')], maxTokens: -5 }, /maxTokens/],
    ['maxTokens a string', { messages: [user('hi')], maxTokens: '100' }, /maxTokens/],
    ['temperature below 0', { messages: [user('hi')], temperature: -0.1 }, /temperature/],
    ['temperature above 1', { messages: [user('hi')], temperature: 1.01 }, /temperature/],
    ['system not a string', { messages: [user('hi')], system: ['a'] }, /system/],
    ['unknown tier hint', { messages: [user('hi')], tier: 'huge' }, /tier.*huge/],
  ];

  test.each(cases)('%s', (_name, body, field) => {
    const err = rejectionOf(json(body));
    expect(err.statusCode).toBe(400);
    expect(err.reason).toBe('invalid');
    expect(err.message).toMatch(field);
  });

  test('the unknown-tier message lists the known tiers', () => {
    const err = rejectionOf(json({ messages: [user('hi')], tier: 'huge' }));
    for (const id of LIMITS.tierIds) expect(err.message).toContain(id);
  });

  test('a JSON value that is not an object', () => {
    for (const body of ['null', '[]', '"hi"', '42']) {
      const err = rejectionOf(body);
      expect(err.statusCode).toBe(400);
      expect(err.reason).toBe('invalid');
    }
  });

  test('more than maxMessages messages', () => {
    const messages = [user('a'), assistant('b'), user('c'), assistant('d'), user('e'), assistant('f'), user('g')];
    const err = rejectionOf(json({ messages }));
    expect(err.statusCode).toBe(400);
    expect(err.reason).toBe('invalid');
    expect(err.message).toMatch(/messages/);
    expect(err.message).toContain(String(LIMITS.maxMessages));
  });
});

describe('parseChatRequest: 413 on the UTF-8 byte length', () => {
  // "€" is one UTF-16 code unit but three UTF-8 bytes.
  const body = (euros: number) => json({ messages: [user('€'.repeat(euros))] });
  const limits: RequestLimits = { ...LIMITS, maxRequestBytes: Buffer.byteLength(body(10), 'utf8') };

  test('a body of exactly the limit is accepted', () => {
    expect(parseChatRequest(body(10), limits).messages[0].text).toBe('€'.repeat(10));
  });

  test('bytes, not characters, are counted', () => {
    const tooLarge = body(11);
    // Premise: counted in characters, this body would fit.
    expect(tooLarge.length).toBeLessThanOrEqual(limits.maxRequestBytes);
    const err = rejectionOf(tooLarge, limits);
    expect(err.statusCode).toBe(413);
    expect(err.reason).toBe('too-large');
    expect(err.message).toContain(String(limits.maxRequestBytes));
    expect(err.message).toContain(String(Buffer.byteLength(tooLarge, 'utf8')));
  });

  test('the size limit applies before JSON parsing', () => {
    const err = rejectionOf('x'.repeat(limits.maxRequestBytes + 1), limits);
    expect(err.statusCode).toBe(413);
  });
});

describe('parseChatRequest: session', () => {
  test.each(['s', 'session-1', 'a.b_c:d-1', 'ABC123', 's'.repeat(128)])('%p is accepted and carried over', (session) => {
    expect(parseChatRequest(json({ messages: [user('hi')], session }), LIMITS).session).toBe(session);
  });

  test('no session: undefined', () => {
    expect(parseChatRequest(json({ messages: [user('hi')] }), LIMITS).session).toBeUndefined();
  });

  test('a session works with a conversation too', () => {
    const req = parseChatRequest(json({ messages: [user('a'), assistant('b'), user('c')], session: 's-1' }), LIMITS);
    expect(req.session).toBe('s-1');
    expect(req.messages).toHaveLength(3);
  });

  test.each<[string, unknown]>([
    ['empty', ''],
    ['longer than 128 characters', 's'.repeat(129)],
    ['with a space', 'my session'],
    ['with a slash', 'a/b'],
    ['with a newline', 'a\nb'],
    ['with non-ASCII letters', 'sitzung-ä'],
    ['a number', 42],
    ['null', null],
    ['an object', { id: 's' }],
  ])('a session %s is rejected with a message naming the field', (_name, session) => {
    const err = rejectionOf(json({ messages: [user('hi')], session }));
    expect(err.statusCode).toBe(400);
    expect(err.reason).toBe('invalid');
    expect(err.message).toMatch(/^Invalid request: session: /);
  });

  test('the rule is spelled out for a malformed session id', () => {
    const err = rejectionOf(json({ messages: [user('hi')], session: 'a/b' }));
    expect(err.message).toMatch(/1-128/);
  });
});
