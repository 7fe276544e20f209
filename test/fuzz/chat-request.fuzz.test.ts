/**
 * Property-based tests of the request parser (`parseChatRequest`, `validateChatRequest`,
 * `parseJsonBody`, `jsonDepth`): whatever the body, the parser answers a request or an
 * HttpError 400/413 with a message, never anything else; and it accepts exactly what it should.
 */
import fc from 'fast-check';
import { deepBody, fcParams, hostileQuestion, hostileText, nearLimitBody, oneWrongField, POLLUTING_KEYS, prototypeIsClean, rawBodies, validChat, withValueAt, wrongValue } from './hostile';
import { parseChatRequest, validateChatRequest, type ChatRequest, type RequestLimits } from '../../lambdas/core/chat-request';
import { HttpError } from '../../lambdas/core/errors';
import { jsonDepth, MAX_JSON_DEPTH, parseJsonBody } from '../../lambdas/core/json-body';

const LIMITS: RequestLimits = { maxRequestBytes: 8_192, maxMessages: 20, tierIds: ['small', 'large'] };

/** The parser's verdict: the request, or the HttpError; anything else thrown fails the property. */
function verdict(body: string | undefined, limits: RequestLimits = LIMITS): ChatRequest | HttpError {
  try {
    return parseChatRequest(body, limits);
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw new Error(`parseChatRequest threw ${String(err)} (not an HttpError) for ${JSON.stringify(body?.slice(0, 200))}`);
  }
}

function expectRefusal(v: ChatRequest | HttpError, status?: number): asserts v is HttpError {
  expect(v).toBeInstanceOf(HttpError);
  const err = v as HttpError;
  expect([400, 413]).toContain(err.statusCode);
  if (status !== undefined) expect(err.statusCode).toBe(status);
  expect(err.message.length).toBeGreaterThan(0);
  expect(['invalid', 'too-large']).toContain(err.reason);
}

/** What an accepted request always is, whatever the input: alternating non-empty turns ending with the user. */
function expectWellFormed(req: ChatRequest): void {
  expect(req.messages.length).toBeGreaterThan(0);
  expect(req.messages.length).toBeLessThanOrEqual(LIMITS.maxMessages);
  req.messages.forEach((m, i) => {
    expect(m.role).toBe(i % 2 === 0 ? 'user' : 'assistant');
    expect(typeof m.text).toBe('string');
    expect(m.text.trim().length).toBeGreaterThan(0);
  });
  expect(req.messages[req.messages.length - 1].role).toBe('user');
  if (req.tierHint !== undefined) expect(LIMITS.tierIds).toContain(req.tierHint);
  if (req.session !== undefined) expect(req.session).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  if (req.maxTokens !== undefined) expect(Number.isInteger(req.maxTokens) && req.maxTokens >= 1).toBe(true);
  if (req.temperature !== undefined) expect(req.temperature >= 0 && req.temperature <= 1).toBe(true);
}

/** How deeply a parsed value nests arrays and objects. */
function depthOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  return 1 + Math.max(0, ...Object.values(value).map(depthOf));
}

afterEach(() => expect(prototypeIsClean()).toBe(true));

describe('parseChatRequest on any body', () => {
  test('answers a well-formed request or a 400/413 HttpError with a message; never throws anything else', () => {
    fc.assert(
      fc.property(rawBodies(validChat), (body) => {
        const v = verdict(body);
        if (v instanceof HttpError) expectRefusal(v);
        else expectWellFormed(v);
      }),
      fcParams(2_000),
    );
  });

  test('a valid request is accepted, its text carried over exactly (lone surrogates, NUL and controls included)', () => {
    fc.assert(
      fc.property(validChat, (body) => {
        const v = verdict(JSON.stringify(body));
        if (v instanceof HttpError) throw new Error(`refused: ${v.message}`);
        const messages = body.messages as Array<{ role: string; content: string | Array<{ text: string }> }>;
        expect(v.messages).toEqual(messages.map((m) => ({ role: m.role, text: typeof m.content === 'string' ? m.content : m.content.map((b) => b.text).join('\n') })));
        expect(v.system).toBe(body.system);
        expect(v.session).toBe(body.session);
        expect(v.maxTokens).toBe(body.maxTokens);
        expect(v.temperature).toBe(body.temperature);
      }),
      fcParams(1_000),
    );
  });

  test('a body of the right shape with one field wrong is refused with a 400 naming the request, or is still a well-formed request', () => {
    fc.assert(
      fc.property(oneWrongField(validChat), (body) => {
        const v = verdict(JSON.stringify(body) ?? 'null');
        if (v instanceof HttpError) {
          expectRefusal(v);
          if (v.statusCode === 400) expect(v.message).toMatch(/^(Invalid request: |Request body )/);
        } else {
          expectWellFormed(v);
        }
      }),
      fcParams(1_500),
    );
  });

  test('an unknown or prototype-polluting key in any object of the request is refused, naming where it is', () => {
    const messageObject = fc.constantFrom<(string | number)[]>([], ['messages', 0], ['messages', 0, 'content', 0]);
    fc.assert(
      fc.property(
        hostileQuestion,
        messageObject,
        fc.oneof(fc.constantFrom(...POLLUTING_KEYS), hostileText.filter((k) => !['messages', 'system', 'maxTokens', 'temperature', 'tier', 'session', 'role', 'content', 'text'].includes(k))),
        wrongValue,
        (question, at, key, value) => {
          const body = withValueAt({ messages: [{ role: 'user', content: [{ text: question }] }] }, [...at, key], value);
          const v = verdict(JSON.stringify(body));
          expectRefusal(v, 400);
          expect(v.message).toContain(`Invalid request: ${at.length > 0 ? `${at.join('.')}: ` : ''}`);
        },
      ),
      fcParams(1_000),
    );
  });

  test('a field of the wrong type is refused with a 400 naming that field', () => {
    const fields: Array<{ path: (string | number)[]; ok: (v: unknown) => boolean }> = [
      { path: ['messages'], ok: () => false },
      { path: ['messages', 0], ok: () => false },
      { path: ['messages', 0, 'role'], ok: (v) => v === 'user' },
      { path: ['messages', 0, 'content'], ok: (v) => typeof v === 'string' && v.trim().length > 0 },
      { path: ['system'], ok: (v) => typeof v === 'string' && v.length <= 16_384 },
      { path: ['maxTokens'], ok: (v) => Number.isInteger(v) && (v as number) >= 1 },
      { path: ['temperature'], ok: (v) => typeof v === 'number' && v >= 0 && v <= 1 },
      { path: ['tier'], ok: (v) => LIMITS.tierIds.includes(v as string) },
      { path: ['session'], ok: (v) => typeof v === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(v) },
    ];
    fc.assert(
      fc.property(fc.constantFrom(...fields), wrongValue, (field, value) => {
        fc.pre(!field.ok(value) && value !== undefined);
        const body = withValueAt({ messages: [{ role: 'user', content: 'What are your opening hours?' }] }, field.path, value);
        const v = verdict(JSON.stringify(body));
        expectRefusal(v, 400);
        expect(v.message).toContain(`Invalid request: ${field.path.join('.')}`);
      }),
      fcParams(1_500),
    );
  });
});

describe('limits', () => {
  test('a body over maxRequestBytes (counted in UTF-8 bytes) is 413; one within it never is', () => {
    fc.assert(
      fc.property(nearLimitBody(LIMITS.maxRequestBytes), (body) => {
        const v = verdict(body);
        const bytes = Buffer.byteLength(body, 'utf8');
        if (bytes > LIMITS.maxRequestBytes) {
          expectRefusal(v, 413);
          expect(v.message).toContain(`${bytes} bytes`);
        } else if (v instanceof HttpError) {
          expect(v.statusCode).not.toBe(413);
        }
      }),
      fcParams(500),
    );
  });

  test(`nesting deeper than ${MAX_JSON_DEPTH} levels is a 400 that names the limit, anywhere in the body, before parsing`, () => {
    const limits = { ...LIMITS, maxRequestBytes: 1_000_000 };
    fc.assert(
      fc.property(deepBody, (body) => {
        const v = verdict(body, limits);
        const parsed = (() => {
          try {
            return { value: JSON.parse(body) as unknown };
          } catch {
            return undefined;
          }
        })();
        if (parsed && depthOf(parsed.value) > MAX_JSON_DEPTH) {
          expectRefusal(v, 400);
          expect(v.message).toContain(`more than ${MAX_JSON_DEPTH} levels`);
        } else if (v instanceof HttpError) {
          expectRefusal(v, 400);
        }
      }),
      fcParams(500),
    );
  });

  test('jsonDepth of any JSON text is the depth of its value (capped at the limit + 1), whatever the strings hold', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 40 }), fc.integer({ min: 0, max: 40 }), (value, limit) => {
        const depth = depthOf(value);
        expect(jsonDepth(JSON.stringify(value), limit)).toBe(depth > limit ? limit + 1 : depth);
      }),
      fcParams(1_000),
    );
  });

  test('parseJsonBody parses any JSON within the depth limit as JSON.parse does, and refuses anything else with a 400', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 8 }).map((v) => JSON.stringify(v)), hostileText, deepBody), (text) => {
        let expected: { value: unknown } | undefined;
        try {
          expected = { value: JSON.parse(text) };
        } catch {
          expected = undefined;
        }
        let got: { value: unknown } | HttpError;
        try {
          got = { value: parseJsonBody(text) };
        } catch (err) {
          if (!(err instanceof HttpError)) throw err;
          got = err;
        }
        if (expected && depthOf(expected.value) <= MAX_JSON_DEPTH) expect(got).toEqual(expected);
        else expectRefusal(got as HttpError, 400);
      }),
      fcParams(1_000),
    );
  });
});

describe('validateChatRequest (the requests of a job)', () => {
  test('any value is a request or a 400 whose message starts with the request\'s place in the job', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 5 }), validChat, oneWrongField(validChat)), fc.nat(99), (value, i) => {
        try {
          expectWellFormed(validateChatRequest(value, LIMITS, `requests.${i}`));
        } catch (err) {
          if (!(err instanceof HttpError)) throw err;
          expectRefusal(err, 400);
          expect(err.message).toMatch(new RegExp(`^Invalid request: requests\\.${i}(\\.|: )`));
        }
      }),
      fcParams(1_500),
    );
  });
});
